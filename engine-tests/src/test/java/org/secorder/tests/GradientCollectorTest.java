package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.function.Supplier;
import org.secorder.core.HessianDiagonal;
import org.testng.annotations.Test;

/** Calls made while the caller has a {@link GradientCollector} open. */
public class GradientCollectorTest {

    private static NDList diagonal(Supplier<NDArray> loss, NDArray x) {
        return HessianDiagonal.builder()
                .optMethod(EngineSupport.workingMethod())
                .build()
                .compute(loss, new NDList(x));
    }

    @Test
    public void insideAnOpenCollectorGivesTheSameDiagonalAsOutside() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = manager.create(new float[] {0.5f, -1, 2});
            x.setRequiresGradient(true);
            Supplier<NDArray> loss = () -> x.sin().mul(x).sum();
            double[] outside = Assertions.values(diagonal(loss, x).get(0));
            double[] inside;
            try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                inside = Assertions.values(diagonal(loss, x).get(0));
                collector.backward(loss.get());
            }
            // d^2/dx^2 of x sin x = 2 cos x - x sin x
            double[] expected = new double[3];
            float[] xs = x.toFloatArray();
            for (int i = 0; i < 3; i++) {
                expected[i] = 2 * Math.cos(xs[i]) - xs[i] * Math.sin(xs[i]);
            }
            Assertions.assertClose(
                    manager.create(outside), expected, EngineSupport.float32Tolerance());
            Assertions.assertClose(inside, outside, 0);
        }
    }

    @Test
    public void theCollectorStillProducesTheTrainingGradient() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = manager.create(new float[] {0.5f, -1, 2});
            x.setRequiresGradient(true);
            Supplier<NDArray> loss = () -> x.sin().mul(x).sum();
            try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                NDArray value = loss.get();
                diagonal(loss, x);
                collector.backward(value);
            }
            // d/dx of x sin x = sin x + x cos x
            float[] xs = x.toFloatArray();
            double[] expected = new double[3];
            for (int i = 0; i < 3; i++) {
                expected[i] = Math.sin(xs[i]) + xs[i] * Math.cos(xs[i]);
            }
            Assertions.assertClose(x.getGradient(), expected, 1e-6);
            Shape shape = x.getGradient().getShape();
            org.testng.Assert.assertEquals(shape, new Shape(3));
        }
    }
}
