package org.secorder.tests;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.training.loss.Loss;
import java.util.function.DoubleSupplier;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianDiagonal.Method;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * {@link Method#STRUCTURED} and {@link Method#GGN} through the public API: wiring, options,
 * strictness and the fallback of {@link Method#AUTO}, on every engine.
 */
public class StructuredMethodTest {

    private static final int SAMPLES = 6;
    private static final int FEATURES = 4;

    private static SequentialBlock mlp(NDManager manager, Block activation) {
        Engine.getInstance().setRandomSeed(5);
        SequentialBlock model =
                new SequentialBlock()
                        .add(Linear.builder().setUnits(5).build())
                        .add(activation)
                        .add(Linear.builder().setUnits(3).build());
        model.setInitializer(new NormalInitializer(0.8f), Parameter.Type.WEIGHT);
        model.setInitializer(new NormalInitializer(0.3f), Parameter.Type.BIAS);
        model.initialize(manager, DataType.FLOAT64, new Shape(SAMPLES, FEATURES));
        return model;
    }

    private static NDArray inputs(NDManager manager) {
        return manager.randomNormal(new Shape(SAMPLES, FEATURES)).toType(DataType.FLOAT64, false);
    }

    private static NDArray labels(NDManager manager) {
        return manager.randomInteger(0, 3, new Shape(SAMPLES), DataType.INT32);
    }

    private static NDList diagonal(
            HessianDiagonal.Builder builder, Block model, NDArray x, NDArray y) {
        return builder.build()
                .compute(model, Loss.softmaxCrossEntropyLoss(), new NDList(x), new NDList(y));
    }

    private static void assertSameDiagonals(NDList actual, NDList expected, double tolerance) {
        Assert.assertEquals(actual.size(), expected.size(), "number of diagonals");
        for (int i = 0; i < actual.size(); i++) {
            Assert.assertEquals(actual.get(i).getShape(), expected.get(i).getShape());
            Assertions.assertClose(actual.get(i), Assertions.values(expected.get(i)), tolerance);
        }
    }

    @Test
    public void structuredMatchesSecondDifferencesOfTheLoss() {
        try (NDManager manager = NDManager.newBaseManager()) {
            SequentialBlock model = mlp(manager, Activation.tanhBlock());
            NDArray x = inputs(manager);
            NDArray y = labels(manager);
            Loss loss = Loss.softmaxCrossEntropyLoss();
            NDList diagonal =
                    diagonal(HessianDiagonal.builder().optMethod(Method.STRUCTURED), model, x, y);
            DoubleSupplier value =
                    () -> {
                        try (NDManager scope = manager.newSubManager()) {
                            NDList predictions =
                                    model.forward(
                                            new ParameterStore(scope, false), new NDList(x), false);
                            NDArray l = loss.evaluate(new NDList(y), predictions);
                            double result = l.getDouble();
                            predictions.close();
                            l.close();
                            return result;
                        }
                    };
            for (int i = 0; i < diagonal.size(); i++) {
                NDArray parameter = model.getParameters().valueAt(i).getArray();
                double[] expected = GroundTruth.secondDifferences(value, parameter, 1e-4);
                Assertions.assertClose(diagonal.get(i), expected, 1e-5);
            }
        }
    }

    @Test
    public void ggnEqualsStructuredOnPiecewiseLinearNetworks() {
        try (NDManager manager = NDManager.newBaseManager()) {
            SequentialBlock model = mlp(manager, Activation.reluBlock());
            NDArray x = inputs(manager);
            NDArray y = labels(manager);
            NDList exact =
                    diagonal(HessianDiagonal.builder().optMethod(Method.STRUCTURED), model, x, y);
            NDList ggn = diagonal(HessianDiagonal.builder().optMethod(Method.GGN), model, x, y);
            assertSameDiagonals(ggn, exact, 1e-12);
        }
    }

    @Test
    public void perSampleDiagonalsSumToTheBatchDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            SequentialBlock model = mlp(manager, Activation.tanhBlock());
            NDArray x = inputs(manager);
            NDArray y = labels(manager);
            NDList batch =
                    diagonal(HessianDiagonal.builder().optMethod(Method.STRUCTURED), model, x, y);
            NDList perSample =
                    diagonal(
                            HessianDiagonal.builder()
                                    .optMethod(Method.STRUCTURED)
                                    .optPerSample(true),
                            model,
                            x,
                            y);
            for (int i = 0; i < batch.size(); i++) {
                Shape shape = batch.get(i).getShape();
                Assert.assertEquals(perSample.get(i).getShape(), new Shape(SAMPLES).addAll(shape));
                Assertions.assertClose(
                        perSample.get(i).sum(new int[] {0}),
                        Assertions.values(batch.get(i)),
                        1e-12);
            }
        }
    }

    @Test
    public void aSmallMemoryBudgetGivesTheSameDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            SequentialBlock model = mlp(manager, Activation.tanhBlock());
            NDArray x = inputs(manager);
            NDArray y = labels(manager);
            NDList roomy =
                    diagonal(HessianDiagonal.builder().optMethod(Method.STRUCTURED), model, x, y);
            NDList tight =
                    diagonal(
                            HessianDiagonal.builder()
                                    .optMethod(Method.STRUCTURED)
                                    .optMemoryBudget(64),
                            model,
                            x,
                            y);
            assertSameDiagonals(tight, roomy, 1e-12);
        }
    }

    @Test
    public void frozenParametersGetZerosAndTheOthersTheirDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            SequentialBlock model = mlp(manager, Activation.tanhBlock());
            NDArray x = inputs(manager);
            NDArray y = labels(manager);
            HessianDiagonal.Builder structured =
                    HessianDiagonal.builder().optMethod(Method.STRUCTURED);
            NDList all = diagonal(structured, model, x, y);
            Parameter frozen = model.getParameters().valueAt(0);
            frozen.freeze(true);
            try {
                NDList some = diagonal(structured, model, x, y);
                Assertions.assertClose(some.get(0), new double[(int) frozen.getArray().size()], 0);
                for (int i = 1; i < all.size(); i++) {
                    Assertions.assertClose(some.get(i), Assertions.values(all.get(i)), 0);
                }
                IllegalArgumentException e =
                        Assert.expectThrows(
                                IllegalArgumentException.class,
                                () -> diagonal(structured.optStrict(true), model, x, y));
                Assert.assertTrue(e.getMessage().contains("parameter 0 ("), e.getMessage());
            } finally {
                frozen.freeze(false);
            }
        }
    }

    @Test
    public void genericRuleTakesOverWhereTheDataRulesTheExplicitRuleOut() {
        EngineSupport.requireSecondDerivatives();
        try (NDManager manager = NDManager.newBaseManager()) {
            Engine.getInstance().setRandomSeed(3);
            // a Linear layer on a rank-3 input, which its explicit rule refuses: on PyTorch the
            // generic rule takes it over, for the Hessian too
            Block model = Linear.builder().setUnits(2).build();
            model.initialize(manager, DataType.FLOAT64, new Shape(2, 3, 4));
            NDArray x = manager.randomNormal(new Shape(2, 3, 4)).toType(DataType.FLOAT64, false);
            NDArray y = manager.randomNormal(new Shape(2, 3, 2)).toType(DataType.FLOAT64, false);
            Loss loss = Loss.l2Loss();
            NDList auto =
                    HessianDiagonal.builder()
                            .optMethod(Method.STRUCTURED)
                            .build()
                            .compute(model, loss, new NDList(x), new NDList(y));
            // L2Loss mean(0.5 (pred - y)^2) over 2*3*2 elements: H of W_ki is sum x_i^2 / 12
            double[] squares = Assertions.values(x.square().sum(new int[] {0, 1}).div(12));
            double[] expected = new double[8];
            for (int k = 0; k < 2; k++) {
                System.arraycopy(squares, 0, expected, k * 4, 4);
            }
            Assertions.assertClose(auto.get(0), expected, 1e-12);
            Assertions.assertClose(auto.get(1), new double[] {0.5, 0.5}, 1e-12);
        }
    }

    @Test
    public void structuredMethodsRefuseALossWithoutAModel() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray p = manager.create(new double[] {1, 2});
            p.setRequiresGradient(true);
            for (Method method : new Method[] {Method.STRUCTURED, Method.GGN}) {
                IllegalArgumentException e =
                        Assert.expectThrows(
                                IllegalArgumentException.class,
                                () ->
                                        HessianDiagonal.builder()
                                                .optMethod(method)
                                                .build()
                                                .compute(() -> p.square().sum(), new NDList(p)));
                Assert.assertTrue(e.getMessage().contains("compute(Block"), e.getMessage());
            }
        }
    }

    @Test
    public void builderRejectsOptionsTheStructuredMethodsCannotHonour() {
        for (Method method : new Method[] {Method.STRUCTURED, Method.GGN}) {
            IllegalArgumentException e =
                    Assert.expectThrows(
                            IllegalArgumentException.class,
                            () ->
                                    HessianDiagonal.builder()
                                            .optMethod(method)
                                            .optCreateGraph(true)
                                            .build());
            Assert.assertTrue(e.getMessage().startsWith("createGraph"), e.getMessage());
        }
        IllegalArgumentException perSample =
                Assert.expectThrows(
                        IllegalArgumentException.class,
                        () -> HessianDiagonal.builder().optPerSample(true).build());
        Assert.assertTrue(perSample.getMessage().startsWith("perSample"), perSample.getMessage());
        IllegalArgumentException budget =
                Assert.expectThrows(
                        IllegalArgumentException.class,
                        () -> HessianDiagonal.builder().optMemoryBudget(0).build());
        Assert.assertTrue(budget.getMessage().startsWith("memoryBudget"), budget.getMessage());
    }
}
