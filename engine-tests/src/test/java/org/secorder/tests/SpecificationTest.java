package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.core.Linear;
import ai.djl.training.GradientCollector;
import ai.djl.training.loss.Loss;
import java.util.function.Supplier;
import org.secorder.core.HessianDiagonal;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * The specification's tests (quadratic, model shapes, custom {@code v}, {@code createGraph}, the
 * four {@code strict} cases), on every engine, with what each engine can do.
 */
public class SpecificationTest {

    private static NDList quadraticDiagonal(NDManager manager, NDList v) {
        NDArray a = manager.create(new float[] {2, 1, 1, 3}, new Shape(2, 2));
        NDArray x = manager.create(new float[] {1, 2});
        x.setRequiresGradient(true);
        return HessianDiagonal.builder()
                .optMethod(EngineSupport.workingMethod())
                .optVectors(v)
                .build()
                .compute(() -> x.matMul(a).matMul(x), new NDList(x));
    }

    @Test
    public void quadraticGivesDiagonalOfTwoA() {
        try (NDManager manager = NDManager.newBaseManager()) {
            // d^2/dx_i^2 of x^T A x is 2 A_ii
            NDArray diagonal = quadraticDiagonal(manager, null).singletonOrThrow();
            Assert.assertEquals(diagonal.getShape(), new Shape(2));
            Assert.assertEquals(diagonal.getDataType(), DataType.FLOAT32);
            Assertions.assertClose(diagonal, new double[] {4, 6}, EngineSupport.float32Tolerance());
        }
    }

    @Test
    public void quadraticWithStaticDefaultsIsExactOrExplainsWhyNot() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray a = manager.create(new float[] {2, 1, 1, 3}, new Shape(2, 2));
            NDArray x = manager.create(new float[] {1, 2});
            x.setRequiresGradient(true);
            Supplier<NDArray> quadratic = () -> x.matMul(a).matMul(x);
            if (EngineSupport.hasSecondDerivatives()) {
                NDList diagonal = HessianDiagonal.hessianDiagonal(quadratic, new NDList(x));
                Assertions.assertClose(diagonal.get(0), new double[] {4, 6}, 0);
            } else {
                UnsupportedOperationException e =
                        Assert.expectThrows(
                                UnsupportedOperationException.class,
                                () -> HessianDiagonal.hessianDiagonal(quadratic, new NDList(x)));
                Assert.assertTrue(e.getMessage().contains("_backward_"), e.getMessage());
                Assert.assertTrue(e.getMessage().contains("FINITE_DIFFERENCE"), e.getMessage());
            }
        }
    }

    @Test
    public void modelDiagonalHasOneArrayPerParameterShapedLikeIt() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Linear.builder().setUnits(1).build();
            model.initialize(manager, DataType.FLOAT32, new Shape(5, 10));
            NDArray x = manager.randomNormal(new Shape(5, 10));
            NDArray y = manager.randomNormal(new Shape(5, 1));
            NDList diagonal =
                    HessianDiagonal.builder()
                            .optMethod(EngineSupport.workingMethod())
                            .build()
                            .compute(model, Loss.l2Loss(), new NDList(x), new NDList(y));
            Assert.assertEquals(diagonal.size(), 2);
            Assert.assertEquals(diagonal.get(0).getShape(), new Shape(1, 10));
            Assert.assertEquals(diagonal.get(1).getShape(), new Shape(1));
            // DJL's L2Loss is mean(0.5 (pred - y)^2): H of weight i is mean_n x_ni^2, bias 1
            double[] x2 =
                    x.square().mean(new int[] {0}).toType(DataType.FLOAT64, false).toDoubleArray();
            Assertions.assertClose(diagonal.get(0), x2, EngineSupport.float32Tolerance());
            Assertions.assertClose(
                    diagonal.get(1), new double[] {1}, EngineSupport.float32Tolerance());
        }
    }

    @Test
    public void customVectorsScaleTheDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray v = manager.create(new float[] {0.5f, -2});
            NDArray diagonal = quadraticDiagonal(manager, new NDList(v)).singletonOrThrow();
            Assertions.assertClose(
                    diagonal, new double[] {2, -12}, EngineSupport.float32Tolerance());
        }
    }

    @Test
    public void createGraphGivesThirdDerivatives() {
        EngineSupport.requireSecondDerivatives();
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = manager.create(new float[] {1, -2, 3});
            x.setRequiresGradient(true);
            try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                NDList diagonal =
                        HessianDiagonal.hessianDiagonal(
                                () -> x.pow(3).sum(), new NDList(x), null, true, false);
                // d^2/dx^2 x^3 = 6x, and d/dx of the sum of those is 6
                Assertions.assertClose(diagonal.get(0), new double[] {6, -12, 18}, 1e-6);
                collector.backward(diagonal.get(0).sum());
            }
            Assertions.assertClose(x.getGradient(), new double[] {6, 6, 6}, 1e-6);
        }
    }

    @Test
    public void createGraphWithoutSecondDerivativesNamesTheOperator() {
        if (EngineSupport.hasSecondDerivatives()) {
            throw new org.testng.SkipException(
                    EngineSupport.name() + " has second derivatives; see createGraphGivesThird");
        }
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = manager.create(new float[] {1, -2, 3});
            x.setRequiresGradient(true);
            UnsupportedOperationException e =
                    Assert.expectThrows(
                            UnsupportedOperationException.class,
                            () ->
                                    HessianDiagonal.hessianDiagonal(
                                            () -> x.pow(3).sum(),
                                            new NDList(x),
                                            null,
                                            true,
                                            false));
            Assert.assertTrue(e.getMessage().contains("_backward_"), e.getMessage());
        }
    }

    @Test
    public void nonStrictGivesZerosForParameterWithoutGradient() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = manager.create(new float[] {1, 2});
            x.setRequiresGradient(true);
            NDArray frozen = manager.create(new float[] {3, 4, 5});
            NDList diagonal =
                    HessianDiagonal.builder()
                            .optMethod(EngineSupport.workingMethod())
                            .build()
                            .compute(
                                    () -> x.square().sum().mul(frozen.sum()),
                                    new NDList(x, frozen));
            Assertions.assertClose(
                    diagonal.get(0), new double[] {24, 24}, EngineSupport.float32Tolerance());
            Assertions.assertClose(diagonal.get(1), new double[] {0, 0, 0}, 0);
        }
    }

    @Test
    public void strictRejectsParameterWithoutGradient() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = manager.create(new float[] {1, 2});
            x.setRequiresGradient(true);
            NDArray frozen = manager.create(new float[] {3, 4, 5});
            frozen.setName("frozen");
            IllegalArgumentException e =
                    Assert.expectThrows(
                            IllegalArgumentException.class,
                            () ->
                                    HessianDiagonal.builder()
                                            .optMethod(EngineSupport.workingMethod())
                                            .optStrict(true)
                                            .build()
                                            .compute(
                                                    () -> x.square().sum().mul(frozen.sum()),
                                                    new NDList(x, frozen)));
            Assert.assertTrue(e.getMessage().contains("1 (frozen)"), e.getMessage());
            Assert.assertTrue(e.getMessage().contains("does not require a gradient"));
        }
    }

    @Test
    public void nonStrictGivesZerosForParameterTheLossDoesNotUse() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = manager.create(new float[] {1, 2});
            x.setRequiresGradient(true);
            NDArray unused = manager.create(new float[] {3, 4, 5});
            unused.setRequiresGradient(true);
            NDList diagonal =
                    HessianDiagonal.builder()
                            .optMethod(EngineSupport.workingMethod())
                            .build()
                            .compute(() -> x.square().sum(), new NDList(x, unused));
            Assertions.assertClose(
                    diagonal.get(0), new double[] {2, 2}, EngineSupport.float32Tolerance());
            Assertions.assertClose(diagonal.get(1), new double[] {0, 0, 0}, 0);
        }
    }

    @Test
    public void strictRejectsParameterTheLossDoesNotUse() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = manager.create(new float[] {1, 2});
            x.setRequiresGradient(true);
            NDArray unused = manager.create(new float[] {3, 4, 5});
            unused.setRequiresGradient(true);
            IllegalArgumentException e =
                    Assert.expectThrows(
                            IllegalArgumentException.class,
                            () ->
                                    HessianDiagonal.builder()
                                            .optMethod(EngineSupport.workingMethod())
                                            .optStrict(true)
                                            .build()
                                            .compute(
                                                    () -> x.square().sum(), new NDList(x, unused)));
            Assert.assertTrue(e.getMessage().contains("does not depend on parameter 1"));
        }
    }
}
