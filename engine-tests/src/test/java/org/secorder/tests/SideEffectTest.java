package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.BatchNorm;
import ai.djl.training.GradientCollector;
import ai.djl.training.loss.Loss;
import ai.djl.util.Pair;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianDiagonal.Method;
import org.testng.Assert;
import org.testng.SkipException;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

/**
 * Calls leave no trace, on success and on every kind of failure: parameter values and gradient
 * buffers bit for bit, gradient flags, names and managers, the recording state, and the number of
 * open arrays; a training step after the call gives exactly the gradients it gives without it.
 *
 * <p>Every test runs for both methods, both forms of the API, and both inside a {@link
 * GradientCollector} the caller has open and outside of any.
 */
public class SideEffectTest {

    /**
     * Relative difference allowed between gradients computed twice, a few units in the last place.
     */
    private static final double RECOMPUTED_TOLERANCE = 1e-6;

    /**
     * The cases: method, form of the API, and whether the caller has a collector open.
     *
     * @return the cases
     */
    @DataProvider
    public Object[][] cases() {
        Object[][] cases = new Object[8][];
        int i = 0;
        for (Method method : new Method[] {Method.AUTOGRAD, Method.FINITE_DIFFERENCE}) {
            for (FixtureSupport.Variant variant : FixtureSupport.Variant.values()) {
                for (boolean inCollector : new boolean[] {false, true}) {
                    cases[i++] = new Object[] {method, variant, inCollector};
                }
            }
        }
        return cases;
    }

    /**
     * Forms of the API, and whether the caller has a collector open.
     *
     * @return the cases
     */
    @DataProvider
    public Object[][] forms() {
        Object[][] cases = new Object[4][];
        int i = 0;
        for (FixtureSupport.Variant variant : FixtureSupport.Variant.values()) {
            for (boolean inCollector : new boolean[] {false, true}) {
                cases[i++] = new Object[] {variant, inCollector};
            }
        }
        return cases;
    }

    /**
     * Methods and forms of the API.
     *
     * @return the cases
     */
    @DataProvider
    public Object[][] methodsAndForms() {
        Object[][] cases = new Object[4][];
        int i = 0;
        for (Method method : new Method[] {Method.AUTOGRAD, Method.FINITE_DIFFERENCE}) {
            for (FixtureSupport.Variant variant : FixtureSupport.Variant.values()) {
                cases[i++] = new Object[] {method, variant};
            }
        }
        return cases;
    }

    /**
     * Methods, and whether the caller has a collector open.
     *
     * @return the cases
     */
    @DataProvider
    public Object[][] methodsAndContexts() {
        Object[][] cases = new Object[4][];
        int i = 0;
        for (Method method : new Method[] {Method.AUTOGRAD, Method.FINITE_DIFFERENCE}) {
            for (boolean inCollector : new boolean[] {false, true}) {
                cases[i++] = new Object[] {method, inCollector};
            }
        }
        return cases;
    }

    /**
     * A successful call gives the closed-form diagonal and leaves no trace.
     *
     * @param method the method
     * @param variant the form of the API
     * @param inCollector whether the caller has a collector open
     */
    @Test(dataProvider = "cases")
    public void successLeavesNoTrace(
            Method method, FixtureSupport.Variant variant, boolean inCollector) {
        requireMethod(method);
        HessianDiagonal hessian = HessianDiagonal.builder().optMethod(method).build();
        run(
                variant,
                false,
                inCollector,
                fixture -> () -> assertClosedForm(fixture, fixture.compute(hessian), method));
    }

    /**
     * An exception thrown by the loss reaches the caller unchanged and leaves no trace; with finite
     * differences it is thrown while a parameter element is displaced.
     *
     * @param method the method
     * @param variant the form of the API
     * @param inCollector whether the caller has a collector open
     */
    @Test(dataProvider = "cases")
    public void throwingLossLeavesNoTrace(
            Method method, FixtureSupport.Variant variant, boolean inCollector) {
        HessianDiagonal hessian = HessianDiagonal.builder().optMethod(method).build();
        run(
                variant,
                false,
                inCollector,
                fixture ->
                        () -> {
                            IllegalStateException failure =
                                    new IllegalStateException("loss failed");
                            if (method == Method.FINITE_DIFFERENCE) {
                                fixture.failWhenDisplaced(failure);
                            } else {
                                fixture.failAt(1, failure);
                            }
                            IllegalStateException thrown =
                                    Assert.expectThrows(
                                            IllegalStateException.class,
                                            () -> fixture.compute(hessian));
                            Assert.assertSame(thrown, failure);
                        });
    }

    /**
     * A strict failure leaves no trace: for a function, a parameter the loss does not use, found
     * after the diagonal was computed; for a model, a frozen parameter, found before.
     *
     * @param method the method
     * @param variant the form of the API
     * @param inCollector whether the caller has a collector open
     */
    @Test(dataProvider = "cases")
    public void strictFailureLeavesNoTrace(
            Method method, FixtureSupport.Variant variant, boolean inCollector) {
        if (variant == FixtureSupport.Variant.FUNCTION) {
            // the unused parameter is only found after a successful computation
            requireMethod(method);
        }
        HessianDiagonal hessian =
                HessianDiagonal.builder().optMethod(method).optStrict(true).build();
        String culprit =
                variant == FixtureSupport.Variant.FUNCTION ? "parameter 2 (unused)" : "1 (bias)";
        run(
                variant,
                true,
                inCollector,
                fixture ->
                        () -> {
                            IllegalArgumentException e =
                                    Assert.expectThrows(
                                            IllegalArgumentException.class,
                                            () -> fixture.compute(hessian));
                            Assert.assertTrue(e.getMessage().contains(culprit), e.getMessage());
                        });
    }

    /**
     * Vectors {@code v} of the wrong data type are rejected without a trace.
     *
     * @param method the method
     * @param variant the form of the API
     * @param inCollector whether the caller has a collector open
     */
    @Test(dataProvider = "cases")
    public void badVectorsLeaveNoTrace(
            Method method, FixtureSupport.Variant variant, boolean inCollector) {
        run(
                variant,
                false,
                inCollector,
                fixture -> {
                    // created before the trace is taken: the right shapes, the second in float64
                    NDArray[] parameters = fixture.parameters;
                    NDList v =
                            new NDList(
                                    fixture.manager.ones(parameters[0].getShape()),
                                    fixture.manager.ones(
                                            parameters[1].getShape(), DataType.FLOAT64));
                    return () -> {
                        HessianDiagonal hessian =
                                HessianDiagonal.builder().optMethod(method).optVectors(v).build();
                        IllegalArgumentException e =
                                Assert.expectThrows(
                                        IllegalArgumentException.class,
                                        () -> fixture.compute(hessian));
                        Assert.assertTrue(e.getMessage().contains("v: entry 1"), e.getMessage());
                    };
                });
    }

    /**
     * Where the engine cannot differentiate twice, the clear error leaves no trace.
     *
     * @param variant the form of the API
     * @param inCollector whether the caller has a collector open
     */
    @Test(dataProvider = "forms")
    public void unsupportedAutogradLeavesNoTrace(
            FixtureSupport.Variant variant, boolean inCollector) {
        if (EngineSupport.hasSecondDerivatives()) {
            throw new SkipException(
                    EngineSupport.name()
                            + " differentiates twice; successLeavesNoTrace covers AUTOGRAD");
        }
        HessianDiagonal hessian = HessianDiagonal.builder().optMethod(Method.AUTOGRAD).build();
        run(
                variant,
                false,
                inCollector,
                fixture ->
                        () -> {
                            UnsupportedOperationException e =
                                    Assert.expectThrows(
                                            UnsupportedOperationException.class,
                                            () -> fixture.compute(hessian));
                            Assert.assertTrue(
                                    e.getMessage().contains("_backward_"), e.getMessage());
                            Assert.assertTrue(
                                    e.getMessage().contains("FINITE_DIFFERENCE"), e.getMessage());
                        });
    }

    /**
     * A parameter whose gradient buffer was never written (PyTorch's {@code .grad} undefined) keeps
     * it that way, and its first training step gives the gradient it gives without the call.
     *
     * @param method the method
     * @param variant the form of the API
     * @param inCollector whether the caller has a collector open
     */
    @Test(dataProvider = "cases")
    public void untouchedGradientBuffersStayUntouched(
            Method method, FixtureSupport.Variant variant, boolean inCollector) {
        requireMethod(method);
        HessianDiagonal hessian = HessianDiagonal.builder().optMethod(method).build();
        runScenario(
                variant,
                false,
                false,
                inCollector,
                fixture -> () -> fixture.compute(hessian).close());
    }

    /**
     * Inside a collector the caller has open, a call never opens a second one (which both engines
     * refuse), gives the closed-form diagonal, and the caller's backward then gives the closed-form
     * gradient.
     *
     * @param method the method
     * @param variant the form of the API
     */
    @Test(dataProvider = "methodsAndForms")
    public void worksInsideAnOpenCollectorWithoutOpeningAnother(
            Method method, FixtureSupport.Variant variant) {
        requireMethod(method);
        HessianDiagonal hessian = HessianDiagonal.builder().optMethod(method).build();
        try (NDManager manager = NDManager.newBaseManager()) {
            FixtureSupport.Fixture fixture = FixtureSupport.create(manager, variant, false);
            try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                assertClosedForm(fixture, fixture.compute(hessian), method);
                fixture.trainingStep(collector);
            }
            assertClosedFormGradient(fixture);
        }
    }

    /**
     * Outside any collector, a call gives the closed-form diagonal and leaves none open: the caller
     * can open one afterwards, and its backward gives the closed-form gradient.
     *
     * @param method the method
     * @param variant the form of the API
     */
    @Test(dataProvider = "methodsAndForms")
    public void worksOutsideAnyCollectorAndLeavesNoneOpen(
            Method method, FixtureSupport.Variant variant) {
        requireMethod(method);
        HessianDiagonal hessian = HessianDiagonal.builder().optMethod(method).build();
        try (NDManager manager = NDManager.newBaseManager()) {
            FixtureSupport.Fixture fixture = FixtureSupport.create(manager, variant, false);
            assertClosedForm(fixture, fixture.compute(hessian), method);
            try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                fixture.trainingStep(collector);
            }
            assertClosedFormGradient(fixture);
        }
    }

    /**
     * A model run in training mode updates BatchNorm's running statistics in every forward pass; a
     * call puts them back bit for bit and leaves no other trace.
     *
     * @param method the method
     * @param inCollector whether the caller has a collector open
     */
    @Test(dataProvider = "methodsAndContexts")
    public void trainingModeLeavesRunningStatisticsUnchanged(Method method, boolean inCollector) {
        requireMethod(method);
        HessianDiagonal hessian =
                HessianDiagonal.builder().optMethod(method).optTraining(true).build();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model =
                    new SequentialBlock()
                            .add(Linear.builder().setUnits(2).build())
                            .add(BatchNorm.builder().build());
            model.initialize(manager, DataType.FLOAT32, new Shape(4, 3));
            float[] x = {1, -2, 3, 0.5f, 4, -1, 2, 2, -3, 1, 0, 5};
            NDList inputs = new NDList(manager.create(x, new Shape(4, 3)));
            float[] y = {1, 0, -1, 2, 0, 1, 1, -2};
            NDList targets = new NDList(manager.create(y, new Shape(4, 2)));
            List<NDArray> arrays = new ArrayList<>();
            for (Pair<String, Parameter> parameter : model.getParameters()) {
                arrays.add(parameter.getValue().getArray());
            }
            // running statistics away from their initial values
            arrays.get(4).set(new float[] {0.25f, -0.5f});
            arrays.get(5).set(new float[] {1.5f, 0.75f});
            arrays.addAll(inputs);
            arrays.addAll(targets);
            Runnable call = () -> hessian.compute(model, Loss.l2Loss(), inputs, targets).close();
            if (inCollector) {
                try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                    assertNoTrace(manager, arrays, call, "after a training-mode call inside");
                }
            } else {
                assertNoTrace(manager, arrays, call, "after a training-mode call");
            }
        }
    }

    /**
     * Inside a collector the caller has open (which puts MXNet in training mode), a model with
     * BatchNorm in the default inference mode gives the closed-form diagonal: MXNet's BatchNorm
     * refuses a forward pass whose mode differs from the engine's, so the call must switch it.
     *
     * @param method the method
     * @param inCollector whether the caller has a collector open
     */
    @Test(dataProvider = "methodsAndContexts")
    public void batchNormModelInInferenceModeWorksInsideAndOutsideCollector(
            Method method, boolean inCollector) {
        requireMethod(method);
        HessianDiagonal hessian = HessianDiagonal.builder().optMethod(method).build();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = BatchNorm.builder().build();
            model.initialize(manager, DataType.FLOAT32, new Shape(4, 2));
            float[] mean = {0.5f, -1};
            float[] variance = {4, 0.25f};
            model.getParameters().get("runningMean").getArray().set(mean);
            model.getParameters().get("runningVar").getArray().set(variance);
            float[] x = {1, -2, 3, 0.5f, 4, -1, 2, 2};
            NDList inputs = new NDList(manager.create(x, new Shape(4, 2)));
            NDList targets = new NDList(manager.zeros(new Shape(4, 2)));
            // inference: y = gamma (x - mean) / sqrt(var + 1e-5) + beta, L = mean(y - t)^2 / 2
            // d2L/dgamma_c2 = sum_n xhat_nc^2 / (N C), d2L/dbeta_c2 = 1 / C
            double[] gamma = new double[2];
            for (int n = 0; n < 4; n++) {
                for (int c = 0; c < 2; c++) {
                    double xhat = (x[n * 2 + c] - mean[c]) / Math.sqrt(variance[c] + 1e-5);
                    gamma[c] += xhat * xhat / 8;
                }
            }
            NDList diagonal;
            if (inCollector) {
                try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                    diagonal = hessian.compute(model, Loss.l2Loss(), inputs, targets);
                }
            } else {
                diagonal = hessian.compute(model, Loss.l2Loss(), inputs, targets);
            }
            double tolerance = FixtureSupport.tolerance(method);
            Assertions.assertClose(diagonal.get(0), gamma, tolerance);
            Assertions.assertClose(diagonal.get(1), new double[] {0.5, 0.5}, tolerance);
            Assertions.assertClose(diagonal.get(2), new double[2], 0);
            Assertions.assertClose(diagonal.get(3), new double[2], 0);
        }
    }

    private static void assertNoTrace(
            NDManager manager, List<NDArray> arrays, Runnable call, String when) {
        TraceSupport.Trace trace = TraceSupport.capture(manager, arrays.toArray(new NDArray[0]));
        call.run();
        trace.assertUnchanged(when);
    }

    private static void assertClosedForm(
            FixtureSupport.Fixture fixture, NDList diagonal, Method method) {
        double[][] expected = fixture.expected();
        Assert.assertEquals(diagonal.size(), expected.length);
        for (int i = 0; i < expected.length; i++) {
            Assert.assertEquals(diagonal.get(i).getShape(), fixture.parameters[i].getShape());
            Assertions.assertClose(diagonal.get(i), expected[i], FixtureSupport.tolerance(method));
        }
        diagonal.close();
    }

    private static void assertClosedFormGradient(FixtureSupport.Fixture fixture) {
        double[][] expected = fixture.expectedGradient();
        for (int i = 0; i < expected.length; i++) {
            try (NDArray gradient = fixture.parameters[i].getGradient()) {
                Assertions.assertClose(gradient, expected[i], FixtureSupport.EXACT_FLOAT32);
            }
        }
    }

    private static void requireMethod(Method method) {
        if (method == Method.AUTOGRAD) {
            EngineSupport.requireSecondDerivatives();
        }
    }

    private static void run(
            FixtureSupport.Variant variant,
            boolean strictTrap,
            boolean inCollector,
            Function<FixtureSupport.Fixture, Runnable> prepare) {
        runScenario(variant, strictTrap, true, inCollector, prepare);
    }

    /**
     * Runs a call on one fixture and nothing on an identical twin, then a training step on both,
     * and compares everything.
     *
     * @param prepare makes whatever arrays the call needs, before the trace is taken, and returns
     *     the call
     */
    private static void runScenario(
            FixtureSupport.Variant variant,
            boolean strictTrap,
            boolean warmUp,
            boolean inCollector,
            Function<FixtureSupport.Fixture, Runnable> prepare) {
        try (NDManager manager = NDManager.newBaseManager()) {
            String recordingAtStart = EngineStateSupport.recordingState();
            FixtureSupport.Fixture called = FixtureSupport.create(manager, variant, strictTrap);
            FixtureSupport.Fixture twin = FixtureSupport.create(manager, variant, strictTrap);
            if (warmUp) {
                called.warmUp();
                twin.warmUp();
            }
            String when = "after the call" + (inCollector ? " inside a collector" : "");
            if (inCollector) {
                try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                    act(called, prepare, when);
                    called.trainingStep(collector);
                }
            } else {
                act(called, prepare, when);
                try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                    called.trainingStep(collector);
                }
            }
            try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                twin.trainingStep(collector);
            }
            Assert.assertEquals(
                    EngineStateSupport.recordingState(),
                    recordingAtStart,
                    "recording state after the collectors closed");
            byte[][] gradients = called.gradients();
            byte[][] expected = twin.gradients();
            for (int i = 0; i < gradients.length; i++) {
                String what = "gradient of parameter " + i + " after the training step";
                Assert.assertEquals(gradients[i] == null, expected[i] == null, what + " exists");
                if (gradients[i] != null) {
                    DataType type = called.parameters[i].getDataType();
                    // recomputed on the twin: BLAS may round two identical products differently
                    // (seen once, one unit in the last place), while a leak is far larger
                    Assertions.assertClose(
                            decode(gradients[i], type),
                            decode(expected[i], type),
                            RECOMPUTED_TOLERANCE,
                            what);
                }
                Assert.assertEquals(
                        called.parameters[i].toByteArray(),
                        twin.parameters[i].toByteArray(),
                        "values of parameter " + i);
            }
        }
    }

    private static double[] decode(byte[] bytes, DataType type) {
        ByteBuffer buffer = ByteBuffer.wrap(bytes).order(ByteOrder.nativeOrder());
        int count = bytes.length / type.getNumOfBytes();
        double[] values = new double[count];
        for (int i = 0; i < count; i++) {
            values[i] = type == DataType.FLOAT64 ? buffer.getDouble() : buffer.getFloat();
        }
        return values;
    }

    private static void act(
            FixtureSupport.Fixture fixture,
            Function<FixtureSupport.Fixture, Runnable> prepare,
            String when) {
        Runnable call = prepare.apply(fixture);
        TraceSupport.Trace trace = TraceSupport.capture(fixture.manager, fixture.callerArrays());
        call.run();
        trace.assertUnchanged(when);
    }
}
