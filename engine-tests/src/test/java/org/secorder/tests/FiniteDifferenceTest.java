package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicInteger;
import org.secorder.core.HessianDiagonal;
import org.testng.Assert;
import org.testng.annotations.Test;

/** The opt-in central-difference method, on every engine. */
public class FiniteDifferenceTest {

    private static HessianDiagonal finiteDifferences(double relativeStep) {
        return HessianDiagonal.builder()
                .optMethod(HessianDiagonal.Method.FINITE_DIFFERENCE)
                .optFiniteDifferenceStep(relativeStep)
                .build();
    }

    @Test
    public void exactToRoundingWhenTheGradientIsQuadratic() {
        try (NDManager manager = NDManager.newBaseManager()) {
            double[] values = {-1.5, 0, 0.25, 2};
            NDArray x = manager.create(values);
            x.setRequiresGradient(true);
            // f = sum(x^3 / 6 + x^2): H_ii = x_i + 2, and central differences of a quadratic
            // gradient have no truncation error
            NDList diagonal =
                    HessianDiagonal.builder()
                            .optMethod(HessianDiagonal.Method.FINITE_DIFFERENCE)
                            .build()
                            .compute(() -> x.pow(3).div(6).add(x.square()).sum(), new NDList(x));
            double[] expected = new double[values.length];
            for (int i = 0; i < values.length; i++) {
                expected[i] = values[i] + 2;
            }
            Assert.assertEquals(diagonal.get(0).getDataType(), DataType.FLOAT64);
            Assertions.assertClose(diagonal.get(0), expected, 1e-8);
        }
    }

    @Test
    public void errorIsTheDocumentedStepSquaredTerm() {
        try (NDManager manager = NDManager.newBaseManager()) {
            double[] values = {-0.5, 0.1, 0.75};
            NDArray x = manager.create(values);
            x.setRequiresGradient(true);
            double step = 1e-2;
            // f = sum(x^4 / 12): g = x^3 / 3, and ((x+h)^3 - (x-h)^3) / (6h) = x^2 + h^2 / 3
            NDList diagonal =
                    finiteDifferences(step).compute(() -> x.pow(4).div(12).sum(), new NDList(x));
            double[] expected = new double[values.length];
            for (int i = 0; i < values.length; i++) {
                expected[i] = values[i] * values[i] + step * step / 3;
            }
            Assertions.assertClose(diagonal.get(0), expected, 1e-10);
        }
    }

    @Test
    public void parametersAreRestoredBitForBit() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = manager.randomNormal(new ai.djl.ndarray.types.Shape(3, 4));
            x.setRequiresGradient(true);
            ByteBuffer before = x.toByteBuffer();
            finiteDifferences(0.1).compute(() -> x.exp().sum(), new NDList(x));
            Assert.assertEquals(x.toByteBuffer(), before);
        }
    }

    @Test
    public void parametersAreRestoredBitForBitWhenTheLossThrowsMidway() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = manager.randomNormal(new ai.djl.ndarray.types.Shape(3, 4));
            x.setRequiresGradient(true);
            ByteBuffer before = x.toByteBuffer();
            AtomicInteger calls = new AtomicInteger();
            IllegalStateException failure = new IllegalStateException("loss failed");
            IllegalStateException thrown =
                    Assert.expectThrows(
                            IllegalStateException.class,
                            () ->
                                    finiteDifferences(0.1)
                                            .compute(
                                                    () -> {
                                                        if (calls.incrementAndGet() == 6) {
                                                            throw failure;
                                                        }
                                                        return x.exp().sum();
                                                    },
                                                    new NDList(x)));
            Assert.assertSame(thrown, failure);
            Assert.assertEquals(x.toByteBuffer(), before);
        }
    }

    @Test
    public void agreesWithAutogradOnFloat64() {
        EngineSupport.requireSecondDerivatives();
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray w =
                    manager.randomNormal(new ai.djl.ndarray.types.Shape(3, 2))
                            .toType(DataType.FLOAT64, false);
            w.setRequiresGradient(true);
            NDArray x =
                    manager.randomNormal(new ai.djl.ndarray.types.Shape(5, 3))
                            .toType(DataType.FLOAT64, false);
            java.util.function.Supplier<NDArray> loss =
                    () -> x.matMul(w).tanh().logSoftmax(1).get(":, 0").mean().neg();
            NDArray exact = HessianDiagonal.hessianDiagonal(loss, new NDList(w)).singletonOrThrow();
            NDArray approximate =
                    HessianDiagonal.builder()
                            .optMethod(HessianDiagonal.Method.FINITE_DIFFERENCE)
                            .build()
                            .compute(loss, new NDList(w))
                            .singletonOrThrow();
            Assertions.assertClose(approximate, Assertions.values(exact), 1e-7);
        }
    }
}
