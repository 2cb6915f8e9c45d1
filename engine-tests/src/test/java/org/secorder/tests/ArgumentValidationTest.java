package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.core.Linear;
import ai.djl.training.loss.Loss;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianDiagonal.Method;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * Bad input is rejected with an exception that names the argument and what was expected, and
 * changes nothing; failures of the loss reach the caller unchanged; NaN is a value, not an error.
 */
public class ArgumentValidationTest {

    private static HessianDiagonal hessian() {
        return HessianDiagonal.builder().optMethod(EngineSupport.workingMethod()).build();
    }

    private static HessianDiagonal hessian(NDList v) {
        return HessianDiagonal.builder()
                .optMethod(EngineSupport.workingMethod())
                .optVectors(v)
                .build();
    }

    private static NDArray parameter(NDManager manager, String name, float... values) {
        NDArray array = manager.create(values);
        array.setName(name);
        array.setRequiresGradient(true);
        return array;
    }

    /**
     * Asserts that a call throws {@code type} with a message holding every fragment, and that the
     * caller's arrays and manager are as they were.
     */
    private static <T extends Throwable> T assertRejected(
            Class<T> type,
            NDManager manager,
            List<NDArray> arrays,
            Assert.ThrowingRunnable call,
            String... fragments) {
        TraceSupport.Trace trace = TraceSupport.capture(manager, arrays.toArray(new NDArray[0]));
        T e = Assert.expectThrows(type, call);
        for (String fragment : fragments) {
            Assert.assertTrue(
                    e.getMessage() != null && e.getMessage().contains(fragment),
                    "message should contain '" + fragment + "': " + e.getMessage());
        }
        trace.assertUnchanged("after the rejected call");
        return e;
    }

    /** A loss that is not a scalar is rejected, naming func and the shape it returned. */
    @Test
    public void nonScalarLossIsRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, "x", 1, 2);
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x),
                    () -> hessian().compute(() -> x.mul(2), new NDList(x)),
                    "func",
                    "scalar",
                    "(2)");
        }
    }

    /** A model loss that is not a scalar is rejected, naming the shape it returned. */
    @Test
    public void nonScalarModelLossIsRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Linear.builder().setUnits(2).build();
            model.initialize(manager, DataType.FLOAT32, new Shape(4, 3));
            NDArray x = manager.ones(new Shape(4, 3));
            NDArray y = manager.zeros(new Shape(4, 2));
            Loss residual =
                    new Loss("residual") {
                        @Override
                        public NDArray evaluate(NDList labels, NDList predictions) {
                            return predictions.head().sub(labels.head());
                        }
                    };
            List<NDArray> arrays = new ArrayList<>(List.of(x, y));
            model.getParameters().forEach(p -> arrays.add(p.getValue().getArray()));
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    arrays,
                    () -> hessian().compute(model, residual, new NDList(x), new NDList(y)),
                    "scalar",
                    "(4, 2)");
        }
    }

    /** A loss that is not floating point is rejected. */
    @Test
    public void integerLossIsRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, "x", 1, 2);
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x),
                    () ->
                            hessian()
                                    .compute(
                                            () -> x.sum().toType(DataType.INT32, false),
                                            new NDList(x)),
                    "func",
                    "floating-point",
                    "int32");
        }
    }

    /** A func that returns null, or a closed array, is rejected. */
    @Test
    public void nullOrClosedLossIsRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, "x", 1, 2);
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x),
                    () -> hessian().compute(() -> null, new NDList(x)),
                    "func",
                    "null");
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x),
                    () ->
                            hessian()
                                    .compute(
                                            () -> {
                                                NDArray loss = x.sum();
                                                loss.close();
                                                return loss;
                                            },
                                            new NDList(x)),
                    "func",
                    "closed");
        }
    }

    /** A null func is rejected. */
    @Test
    public void nullFuncIsRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, "x", 1, 2);
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x),
                    () -> hessian().compute((Supplier<NDArray>) null, new NDList(x)),
                    "func",
                    "null");
        }
    }

    /** Null params are rejected. */
    @Test
    public void nullParamsAreRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, "x", 1, 2);
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x),
                    () -> hessian().compute(() -> x.square().sum(), null),
                    "params",
                    "null");
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x),
                    () -> HessianDiagonal.hessianDiagonal(() -> x.square().sum(), null),
                    "params",
                    "null");
        }
    }

    /** Empty params are rejected. */
    @Test
    public void emptyParamsAreRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, "x", 1, 2);
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x),
                    () -> hessian().compute(() -> x.square().sum(), new NDList()),
                    "params",
                    "at least one");
        }
    }

    /** A null entry of params is rejected, naming its index. */
    @Test
    public void nullParamEntryIsRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, "x", 1, 2);
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x),
                    () -> hessian().compute(() -> x.square().sum(), new NDList(x, null)),
                    "params",
                    "entry 1",
                    "null");
        }
    }

    /** A closed parameter is rejected, naming its index and name. */
    @Test
    public void closedParamIsRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, "x", 1, 2);
            NDArray y = parameter(manager, "y", 3);
            y.close();
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x, y),
                    () -> hessian().compute(() -> x.square().sum(), new NDList(x, y)),
                    "params",
                    "1 (y)",
                    "closed");
        }
    }

    /** An integer parameter is rejected, naming it and its data type. */
    @Test
    public void integerParamIsRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, "x", 1, 2);
            NDArray counts = manager.create(new int[] {1, 2});
            counts.setName("counts");
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x, counts),
                    () -> hessian().compute(() -> x.square().sum(), new NDList(x, counts)),
                    "params",
                    "1 (counts)",
                    "floating-point",
                    "int32");
        }
    }

    /** Vectors v of the wrong number are rejected, with both numbers. */
    @Test
    public void vectorsOfWrongLengthAreRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, "x", 1, 2);
            NDArray y = parameter(manager, "y", 3);
            NDArray v = manager.ones(new Shape(2));
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x, y, v),
                    () ->
                            hessian(new NDList(v))
                                    .compute(() -> x.square().sum().add(y.sum()), new NDList(x, y)),
                    "v",
                    "expected 2",
                    "got 1");
        }
    }

    /** A vector of the wrong shape is rejected, naming its index and both shapes. */
    @Test
    public void vectorOfWrongShapeIsRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, "x", 1, 2);
            NDArray y = parameter(manager, "y", 3);
            NDArray vx = manager.ones(new Shape(2));
            NDArray vy = manager.ones(new Shape(1, 1));
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x, y, vx, vy),
                    () ->
                            hessian(new NDList(vx, vy))
                                    .compute(() -> x.square().sum().add(y.sum()), new NDList(x, y)),
                    "v: entry 1",
                    "shape",
                    "(1)",
                    "(1, 1)");
        }
    }

    /** A vector of the wrong data type is rejected, naming its index and both types. */
    @Test
    public void vectorOfWrongDataTypeIsRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, "x", 1, 2);
            NDArray v = manager.ones(new Shape(2), DataType.FLOAT64);
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x, v),
                    () -> hessian(new NDList(v)).compute(() -> x.square().sum(), new NDList(x)),
                    "v: entry 0",
                    "data type",
                    "float32",
                    "float64");
        }
    }

    /** A null or closed vector is rejected, naming v and its index. */
    @Test
    public void nullOrClosedVectorIsRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, "x", 1, 2);
            NDArray y = parameter(manager, "y", 3);
            NDArray vx = manager.ones(new Shape(2));
            NDArray vy = manager.ones(new Shape(1));
            Supplier<NDArray> loss = () -> x.square().sum().add(y.sum());
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x, y, vx),
                    () -> hessian(new NDList(vx, null)).compute(loss, new NDList(x, y)),
                    "v",
                    "entry 1",
                    "null");
            vy.close();
            assertRejected(
                    IllegalArgumentException.class,
                    manager,
                    List.of(x, y, vx, vy),
                    () -> hessian(new NDList(vx, vy)).compute(loss, new NDList(x, y)),
                    "v",
                    "entry 1",
                    "closed");
        }
    }

    /** An uninitialized block is an illegal state, and the message says what to do. */
    @Test
    public void uninitializedBlockIsRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Linear.builder().setUnits(1).build();
            NDArray x = manager.ones(new Shape(4, 3));
            NDArray y = manager.zeros(new Shape(4, 1));
            assertRejected(
                    IllegalStateException.class,
                    manager,
                    List.of(x, y),
                    () -> hessian().compute(model, Loss.l2Loss(), new NDList(x), new NDList(y)),
                    "model",
                    "initialize");
        }
    }

    /** Null model arguments, and empty or closed inputs and targets, are rejected by name. */
    @Test
    public void badModelArgumentsAreRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Linear.builder().setUnits(1).build();
            model.initialize(manager, DataType.FLOAT32, new Shape(4, 3));
            NDArray x = manager.ones(new Shape(4, 3));
            NDArray y = manager.zeros(new Shape(4, 1));
            NDArray closed = manager.zeros(new Shape(4, 1));
            closed.close();
            List<NDArray> arrays = new ArrayList<>(List.of(x, y));
            model.getParameters().forEach(p -> arrays.add(p.getValue().getArray()));
            Loss l2 = Loss.l2Loss();
            NDList in = new NDList(x);
            NDList out = new NDList(y);
            Class<IllegalArgumentException> iae = IllegalArgumentException.class;
            assertRejected(
                    iae, manager, arrays, () -> hessian().compute(null, l2, in, out), "model");
            assertRejected(
                    iae, manager, arrays, () -> hessian().compute(model, null, in, out), "loss");
            assertRejected(
                    iae, manager, arrays, () -> hessian().compute(model, l2, null, out), "inputs");
            assertRejected(
                    iae, manager, arrays, () -> hessian().compute(model, l2, in, null), "targets");
            assertRejected(
                    iae,
                    manager,
                    arrays,
                    () -> hessian().compute(model, l2, new NDList(), out),
                    "inputs",
                    "at least one");
            assertRejected(
                    iae,
                    manager,
                    arrays,
                    () -> hessian().compute(model, l2, in, new NDList(closed)),
                    "targets",
                    "entry 0",
                    "closed");
        }
    }

    /** createGraph with finite differences is rejected when the configuration is built. */
    @Test
    public void createGraphWithFiniteDifferencesIsRejected() {
        IllegalArgumentException e =
                Assert.expectThrows(
                        IllegalArgumentException.class,
                        () ->
                                HessianDiagonal.builder()
                                        .optCreateGraph(true)
                                        .optMethod(Method.FINITE_DIFFERENCE)
                                        .build());
        Assert.assertTrue(e.getMessage().contains("createGraph"), e.getMessage());
        Assert.assertTrue(e.getMessage().contains("AUTOGRAD"), e.getMessage());
    }

    /** A zero, negative or non-finite finite-difference step is rejected, with the value. */
    @Test
    public void nonPositiveFiniteDifferenceStepIsRejected() {
        for (double step : new double[] {0, -0.0, -1e-3, Double.NaN, Double.POSITIVE_INFINITY}) {
            IllegalArgumentException e =
                    Assert.expectThrows(
                            IllegalArgumentException.class,
                            () ->
                                    HessianDiagonal.builder()
                                            .optMethod(Method.FINITE_DIFFERENCE)
                                            .optFiniteDifferenceStep(step)
                                            .build());
            Assert.assertTrue(e.getMessage().contains("finiteDifferenceStep"), e.getMessage());
            Assert.assertTrue(e.getMessage().contains("positive"), e.getMessage());
            Assert.assertTrue(e.getMessage().contains(String.valueOf(step)), e.getMessage());
        }
    }

    /** A null method is rejected by name. */
    @Test
    public void nullMethodIsRejected() {
        IllegalArgumentException e =
                Assert.expectThrows(
                        IllegalArgumentException.class,
                        () -> HessianDiagonal.builder().optMethod(null).build());
        Assert.assertTrue(e.getMessage().contains("method"), e.getMessage());
    }

    /** An exception thrown inside func reaches the caller as the same instance; the next works. */
    @Test
    public void exceptionInFuncReachesCallerUnchangedAndNextCallWorks() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, "x", 1, -2);
            ArithmeticException failure = new ArithmeticException("from func");
            AtomicInteger calls = new AtomicInteger();
            Supplier<NDArray> failing =
                    () -> {
                        NDArray partial = x.pow(3);
                        if (calls.incrementAndGet() == 1) {
                            throw failure;
                        }
                        return partial.sum();
                    };
            ArithmeticException thrown =
                    assertRejected(
                            ArithmeticException.class,
                            manager,
                            List.of(x),
                            () -> hessian().compute(failing, new NDList(x)),
                            "from func");
            Assert.assertSame(thrown, failure);
            // d2/dx2 of x^3 is 6x
            try (NDList diagonal = hessian().compute(() -> x.pow(3).sum(), new NDList(x))) {
                Assertions.assertClose(
                        diagonal.get(0), new double[] {6, -12}, EngineSupport.float32Tolerance());
            }
        }
    }

    /** A checked exception thrown through func by a JVM language without checked exceptions. */
    @Test
    public void checkedExceptionFromFuncReachesCallerUnchanged() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, "x", 1, -2);
            IOException failure = new IOException("checked, from func");
            Supplier<NDArray> failing =
                    () -> {
                        x.square();
                        throw ArgumentValidationTest.<RuntimeException>sneaky(failure);
                    };
            IOException thrown =
                    assertRejected(
                            IOException.class,
                            manager,
                            List.of(x),
                            () -> hessian().compute(failing, new NDList(x)),
                            "checked");
            Assert.assertSame(thrown, failure);
        }
    }

    /** The methods this engine has: double backward where it differentiates twice, and FD. */
    private static List<Method> methods() {
        return EngineSupport.hasSecondDerivatives()
                ? List.of(Method.AUTOGRAD, Method.FINITE_DIFFERENCE)
                : List.of(Method.FINITE_DIFFERENCE);
    }

    /** A 0-d parameter (shape ()) is valid input and gets its diagonal, of shape (). */
    @Test
    public void zeroDimensionalParameterGetsItsDiagonal() {
        for (Method method : methods()) {
            try (NDManager manager = NDManager.newBaseManager()) {
                NDArray x = manager.create(1.5f);
                x.setName("x");
                x.setRequiresGradient(true);
                NDArray y = parameter(manager, "y", 1, -2);
                TraceSupport.Trace trace = TraceSupport.capture(manager, x, y);
                HessianDiagonal hessian = HessianDiagonal.builder().optMethod(method).build();
                // f = x^3 + sum(x y^2): d2f/dx2 = 6x, d2f/dy2 = 2x
                try (NDList diagonal =
                        hessian.compute(
                                () -> x.pow(3).add(y.square().mul(x).sum()), new NDList(x, y))) {
                    Assert.assertEquals(diagonal.get(0).getShape(), new Shape(), method.name());
                    double tolerance = FixtureSupport.tolerance(method);
                    Assertions.assertClose(diagonal.get(0), new double[] {9}, tolerance);
                    Assertions.assertClose(diagonal.get(1), new double[] {3, 3}, tolerance);
                }
                trace.assertUnchanged(method + ": after a call with a 0-d parameter");
            }
        }
    }

    /** NaN in the loss propagates into the diagonal as NaN, where the math says so. */
    @Test
    public void nanInLossPropagatesAsNaN() {
        for (Method method : methods()) {
            try (NDManager manager = NDManager.newBaseManager()) {
                NDArray x = parameter(manager, "x", 1, 2);
                NDArray c = manager.create(new float[] {3, Float.NaN});
                HessianDiagonal hessian = HessianDiagonal.builder().optMethod(method).build();
                // f = sum(c x^2) is NaN; d2f/dx_i2 = 2 c_i: 6, and NaN
                try (NDList diagonal =
                        hessian.compute(() -> x.square().mul(c).sum(), new NDList(x))) {
                    double[] values = Assertions.values(diagonal.get(0));
                    double tolerance = 6 * FixtureSupport.tolerance(method);
                    Assert.assertEquals(values[0], 6, tolerance, method + ": element 0");
                    Assert.assertTrue(Double.isNaN(values[1]), method + ": element 1 " + values[1]);
                }
            }
        }
    }

    @SuppressWarnings("unchecked")
    private static <E extends Throwable> E sneaky(Throwable e) throws E {
        throw (E) e;
    }
}
