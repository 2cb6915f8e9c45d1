package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.secorder.core.HessianDiagonal;
import org.testng.annotations.Test;

/**
 * A garbage collection between recording a loss and differentiating it leaves the result exact,
 * although DJL 0.36.0's PyTorch engine closes the scalar of {@code x.pow(3)} at once while
 * libtorch's graph still reads its memory (the cause of wrong diagonals from several threads).
 */
public class GarbageCollectionTest {

    private static final int CALLS = 20;
    private static final float[] X = {1, 2, 3};

    /**
     * A loss function that asks for a collection, and reuses freed memory, after {@code x.pow(3)}
     * still gets the diagonal {@code 6 x} in every call.
     */
    @Test
    public void aCollectionWhileTheLossIsRecordedLeavesTheDiagonalExact() {
        HessianDiagonal hessian =
                HessianDiagonal.builder().optMethod(EngineSupport.workingMethod()).build();
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = manager.create(X);
            x.setRequiresGradient(true);
            for (int call = 0; call < CALLS; call++) {
                try (NDList diagonal =
                        hessian.compute(
                                () -> {
                                    NDArray loss = x.pow(3).sum();
                                    collectAndReuseMemory();
                                    return loss;
                                },
                                new NDList(x))) {
                    Assertions.assertClose(
                            Assertions.values(diagonal.get(0)),
                            sixTimes(X),
                            EngineSupport.float32Tolerance(),
                            "call " + call);
                }
            }
        }
    }

    /**
     * A differentiable diagonal ({@code createGraph=true}) keeps its graph, and the scalar of
     * {@code x.mul(2f)} in it, after the call; a collection before its backward pass still gives
     * the third derivative of {@code sum((2 x)^3)}, {@code 6 * 2^3 = 48}.
     */
    @Test
    public void aCollectionBeforeTheBackwardPassOfADifferentiableDiagonalLeavesItExact() {
        EngineSupport.requireSecondDerivatives();
        try (NDManager manager = NDManager.newBaseManager()) {
            for (int call = 0; call < CALLS; call++) {
                try (NDManager scope = manager.newSubManager()) {
                    NDArray x = scope.create(X);
                    x.setRequiresGradient(true);
                    try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                        NDList diagonal =
                                HessianDiagonal.hessianDiagonal(
                                        () -> x.mul(2f).pow(3).sum(),
                                        new NDList(x),
                                        null,
                                        true,
                                        false);
                        collectAndReuseMemory();
                        collector.backward(diagonal.get(0).sum());
                    }
                    Assertions.assertClose(
                            Assertions.values(x.getGradient()),
                            new double[] {48, 48, 48},
                            EngineSupport.float32Tolerance(),
                            "call " + call);
                }
            }
        }
    }

    private static double[] sixTimes(float[] values) {
        double[] result = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            result[i] = 6.0 * values[i];
        }
        return result;
    }

    /**
     * Asks for a collection, then allocates small direct buffers, as the next arrays of a busy
     * program would, so that memory freed by the collection is written again.
     */
    private static void collectAndReuseMemory() {
        System.gc();
        List<ByteBuffer> buffers = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            buffers.add(ByteBuffer.allocateDirect(Float.BYTES).putFloat(0, 1e30f));
        }
        buffers.clear();
    }
}
