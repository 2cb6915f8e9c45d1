package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.loss.Loss;
import java.util.function.Supplier;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianDiagonal.Method;
import org.testng.Assert;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

/**
 * {@code strict}: {@code false} gives zeros for a parameter that does not require a gradient or
 * that the loss does not depend on; {@code true} rejects it, naming its index and name.
 */
public class StrictModeTest {

    /**
     * The two methods; AUTOGRAD is skipped where the engine cannot differentiate twice, and {@link
     * SideEffectTest#unsupportedAutogradLeavesNoTrace} checks the clear error there instead.
     *
     * @return the methods
     */
    @DataProvider
    public Object[][] methods() {
        return new Object[][] {{Method.AUTOGRAD}, {Method.FINITE_DIFFERENCE}};
    }

    private static HessianDiagonal hessian(Method method, boolean strict) {
        if (method == Method.AUTOGRAD) {
            EngineSupport.requireSecondDerivatives();
        }
        return HessianDiagonal.builder().optMethod(method).optStrict(strict).build();
    }

    private static NDArray parameter(NDManager manager, String name, float... values) {
        return parameter(manager, name, new Shape(values.length), values);
    }

    private static NDArray parameter(NDManager manager, String name, Shape shape, float... values) {
        NDArray array = manager.create(values, shape);
        if (name != null) {
            array.setName(name);
        }
        array.setRequiresGradient(true);
        return array;
    }

    private static void assertZeros(NDArray diagonal, NDArray parameter) {
        Assert.assertEquals(diagonal.getShape(), parameter.getShape());
        Assert.assertEquals(diagonal.getDataType(), parameter.getDataType());
        Assertions.assertClose(diagonal, new double[Math.toIntExact(parameter.size())], 0);
    }

    private static IllegalArgumentException assertStrictFailure(
            HessianDiagonal hessian, Supplier<NDArray> loss, NDList params, String... fragments) {
        IllegalArgumentException e =
                Assert.expectThrows(
                        IllegalArgumentException.class, () -> hessian.compute(loss, params));
        for (String fragment : fragments) {
            Assert.assertTrue(e.getMessage().contains(fragment), e.getMessage());
        }
        return e;
    }

    /**
     * Non-strict: a parameter without gradient gets zeros of its shape and type.
     *
     * @param method the method
     */
    @Test(dataProvider = "methods")
    public void nonStrictGivesZerosForParameterWithoutGradient(Method method) {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianDiagonal hessian = hessian(method, false);
            NDArray x = parameter(manager, "x", 1, 2);
            NDArray frozen = manager.create(new double[] {3, 4, 5}, new Shape(3, 1));
            // f = sum(x^2) sum(frozen): d2f/dx2 = 2 * 12
            NDList diagonal =
                    hessian.compute(
                            () ->
                                    x.square()
                                            .sum()
                                            .mul(frozen.sum().toType(DataType.FLOAT32, false)),
                            new NDList(x, frozen));
            Assertions.assertClose(
                    diagonal.get(0), new double[] {24, 24}, FixtureSupport.tolerance(method));
            assertZeros(diagonal.get(1), frozen);
        }
    }

    /**
     * Non-strict: a parameter the loss does not depend on gets zeros of its shape and type.
     *
     * @param method the method
     */
    @Test(dataProvider = "methods")
    public void nonStrictGivesZerosForParameterTheLossDoesNotDependOn(Method method) {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianDiagonal hessian = hessian(method, false);
            NDArray unused = parameter(manager, "unused", new Shape(2, 2), 7, 8, 9, 10);
            NDArray x = parameter(manager, "x", 1, -2);
            NDList diagonal = hessian.compute(() -> x.pow(3).sum(), new NDList(unused, x));
            assertZeros(diagonal.get(0), unused);
            Assertions.assertClose(
                    diagonal.get(1), new double[] {6, -12}, FixtureSupport.tolerance(method));
        }
    }

    /**
     * Non-strict: a frozen model parameter gets zeros, the others their diagonal.
     *
     * @param method the method
     */
    @Test(dataProvider = "methods")
    public void nonStrictGivesZerosForFrozenModelParameter(Method method) {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianDiagonal hessian = hessian(method, false);
            FixtureSupport.Fixture fixture =
                    FixtureSupport.create(manager, FixtureSupport.Variant.MODEL, true);
            NDList diagonal = fixture.compute(hessian);
            double[][] expected = fixture.expected();
            Assertions.assertClose(diagonal.get(0), expected[0], FixtureSupport.tolerance(method));
            assertZeros(diagonal.get(1), fixture.parameters[1]);
        }
    }

    /**
     * Strict: a parameter without gradient is rejected by index and name.
     *
     * @param method the method
     */
    @Test(dataProvider = "methods")
    public void strictNamesParameterWithoutGradient(Method method) {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianDiagonal hessian = hessian(method, true);
            NDArray x = parameter(manager, "x", 1, 2);
            NDArray frozen = manager.create(new float[] {3, 4, 5});
            frozen.setName("frozen");
            assertStrictFailure(
                    hessian,
                    () -> x.square().sum().mul(frozen.sum()),
                    new NDList(x, frozen),
                    "strict",
                    "parameter 1 (frozen)",
                    "does not require a gradient");
        }
    }

    /**
     * Strict: a parameter without name is rejected by its index alone.
     *
     * @param method the method
     */
    @Test(dataProvider = "methods")
    public void strictNamesUnnamedParameterByIndex(Method method) {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianDiagonal hessian = hessian(method, true);
            NDArray x = parameter(manager, null, 1, 2);
            NDArray frozen = manager.create(new float[] {3, 4, 5});
            assertStrictFailure(
                    hessian,
                    () -> x.square().sum().mul(frozen.sum()),
                    new NDList(x, frozen),
                    "parameter 1 does not require a gradient");
        }
    }

    /**
     * Strict: a parameter the loss does not depend on is rejected by index and name.
     *
     * @param method the method
     */
    @Test(dataProvider = "methods")
    public void strictNamesParameterTheLossDoesNotDependOn(Method method) {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianDiagonal hessian = hessian(method, true);
            NDArray x = parameter(manager, "x", 1, 2);
            NDArray y = parameter(manager, "y", 3);
            NDArray unused = parameter(manager, "unused", 7, 8);
            assertStrictFailure(
                    hessian,
                    () -> x.square().sum().add(y.pow(3).sum()),
                    new NDList(x, y, unused),
                    "strict",
                    "parameter 2 (unused)",
                    "does not depend");
        }
    }

    /**
     * Strict: a frozen model parameter is rejected by index and its key in the block.
     *
     * @param method the method
     */
    @Test(dataProvider = "methods")
    public void strictNamesModelParameterByItsKey(Method method) {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianDiagonal hessian = hessian(method, true);
            Block model =
                    new SequentialBlock()
                            .add(Linear.builder().setUnits(2).build())
                            .add(Linear.builder().setUnits(1).build());
            model.initialize(manager, DataType.FLOAT32, new Shape(4, 3));
            String key = model.getParameters().get(3).getKey();
            model.getParameters().get(3).getValue().freeze(true);
            NDArray x = manager.ones(new Shape(4, 3));
            NDArray y = manager.zeros(new Shape(4, 1));
            IllegalArgumentException e =
                    Assert.expectThrows(
                            IllegalArgumentException.class,
                            () ->
                                    hessian.compute(
                                            model, Loss.l2Loss(), new NDList(x), new NDList(y)));
            Assert.assertTrue(e.getMessage().contains("parameter 3 (" + key + ")"), e.getMessage());
        }
    }

    /**
     * Strict: a parameter the loss is linear in is used, and gets zeros without an error.
     *
     * @param method the method
     */
    @Test(dataProvider = "methods")
    public void strictAcceptsParameterTheLossIsLinearIn(Method method) {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianDiagonal hessian = hessian(method, true);
            NDArray x = parameter(manager, "x", 1, 2);
            NDArray y = parameter(manager, "y", 3, 4, 5);
            NDArray c = manager.create(new float[] {0.5f, -1, 2});
            NDList diagonal =
                    hessian.compute(() -> x.square().sum().add(y.mul(c).sum()), new NDList(x, y));
            Assertions.assertClose(
                    diagonal.get(0), new double[] {2, 2}, FixtureSupport.tolerance(method));
            assertZeros(diagonal.get(1), y);
        }
    }

    /**
     * Strict: a loss that is a parameter itself depends on it (linearly): zeros, no error, and the
     * parameter keeps its name.
     *
     * @param method the method
     */
    @Test(dataProvider = "methods")
    public void strictAcceptsLossThatIsAParameterItself(Method method) {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianDiagonal hessian = hessian(method, true);
            NDArray x = parameter(manager, "x", new Shape(), 2);
            TraceSupport.Trace trace = TraceSupport.capture(manager, x);
            try (NDList diagonal = hessian.compute(() -> x, new NDList(x))) {
                assertZeros(diagonal.get(0), x);
            }
            trace.assertUnchanged("after a loss that is the parameter itself");
        }
    }

    /**
     * Strict with every parameter used gives exactly the non-strict diagonal.
     *
     * @param method the method
     */
    @Test(dataProvider = "methods")
    public void strictWithEveryParameterUsedMatchesNonStrict(Method method) {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianDiagonal strict = hessian(method, true);
            FixtureSupport.Fixture fixture =
                    FixtureSupport.create(manager, FixtureSupport.Variant.FUNCTION, false);
            NDList expected = fixture.compute(hessian(method, false));
            NDList diagonal = fixture.compute(strict);
            double[][] closedForm = fixture.expected();
            for (int i = 0; i < closedForm.length; i++) {
                Assert.assertEquals(diagonal.get(i).toByteArray(), expected.get(i).toByteArray());
                Assertions.assertClose(
                        diagonal.get(i), closedForm[i], FixtureSupport.tolerance(method));
            }
        }
    }

    /**
     * Zeros for an unused parameter next to a linear layer leave the layer's bias diagonal right
     * (MXNet's MKL-DNN FullyConnected leaves the bias gradient uninitialised when its weight
     * gradient is not asked for in the same backward pass).
     *
     * @param method the method
     */
    @Test(dataProvider = "methods")
    public void unusedParameterNextToLinearLayerLeavesBiasRight(Method method) {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianDiagonal hessian = hessian(method, false);
            NDArray x = manager.create(new float[] {1, 2, 3, 4, 5, 6}, new Shape(2, 3));
            NDArray w = parameter(manager, "w", new Shape(1, 3), 0.1f, 0.2f, 0.3f);
            NDArray b = parameter(manager, "b", 0.5f);
            NDArray unused = parameter(manager, "unused", 7);
            // f = mean_n p_n^2 with p = x w^T + b: d2f/dw_k2 = 2 mean_n x_nk^2, d2f/db2 = 2
            NDList diagonal =
                    hessian.compute(
                            () -> Linear.linear(x, w, b).head().square().mean(),
                            new NDList(unused, w, b));
            assertZeros(diagonal.get(0), unused);
            double tolerance = FixtureSupport.tolerance(method);
            Assertions.assertClose(diagonal.get(1), new double[] {17, 29, 45}, tolerance);
            Assertions.assertClose(diagonal.get(2), new double[] {2}, tolerance);
        }
    }
}
