package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.L2Loss;
import ai.djl.training.loss.Loss;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.secorder.core.HessianDiagonal;

/**
 * Small deterministic problems with closed-form Hessian diagonals, in the two shapes the API takes:
 * a loss function of parameters, and a block with a loss.
 */
final class FixtureSupport {

    /** A tolerance for exact (double backward) diagonals in float32. */
    static final double EXACT_FLOAT32 = 1e-5;

    /** A tolerance for central-difference diagonals in float32. */
    static final double FINITE_DIFFERENCE_FLOAT32 = 2e-3;

    private static final float[] X = {0.1f, -0.7f, 1.3f, 2.1f, -1.9f, 0.35f};
    private static final float[] Y = {0.3f, -1.1f, 1.7f};
    private static final float SCALE = 0.9f;
    private static final float[] INPUTS = {
        0.5f, -1.2f, 0.8f, 1.5f, 0.3f, -0.4f, -0.9f, 2.2f, 0.1f, 1.1f, -0.6f, 0.7f
    };
    private static final float[] TARGETS = {0.2f, -0.5f, 1.0f, 0.4f, -1.3f, 0.9f, 0.6f, -0.1f};
    private static final float[] WEIGHT = {0.25f, -0.5f, 0.75f, 1.25f, 0.125f, -0.375f};
    private static final float[] BIAS = {0.1f, -0.2f};
    private static final int SAMPLES = 4;
    private static final int FEATURES = 3;
    private static final int UNITS = 2;

    private FixtureSupport() {}

    /** The two forms of the API. */
    enum Variant {
        /** {@code compute(Supplier, NDList)}. */
        FUNCTION,
        /** {@code compute(Block, Loss, NDList, NDList)}. */
        MODEL
    }

    /** Returns the tolerance for a method in float32. */
    static double tolerance(HessianDiagonal.Method method) {
        return method == HessianDiagonal.Method.FINITE_DIFFERENCE
                ? FINITE_DIFFERENCE_FLOAT32
                : EXACT_FLOAT32;
    }

    /**
     * Creates a problem in a sub-manager of its own.
     *
     * @param parent the test's manager
     * @param variant the form of the API
     * @param strictTrap whether to add what {@code strict=true} rejects: a parameter the loss does
     *     not use (function), or a frozen bias (model)
     * @return the problem
     */
    static Fixture create(NDManager parent, Variant variant, boolean strictTrap) {
        return new Fixture(parent.newSubManager(), variant, strictTrap);
    }

    /** One problem, its arrays, and a counter of loss evaluations. */
    static final class Fixture {

        final NDManager manager;
        final Variant variant;
        final NDArray[] parameters;
        final String[] names;
        final NDList inputs;
        final NDList targets;
        final Block model;
        private final NDArray scale;
        private final AtomicInteger evaluations = new AtomicInteger();
        private final byte[][] initialValues;
        private int failAt;
        private boolean failWhenDisplaced;
        private RuntimeException failure;

        Fixture(NDManager manager, Variant variant, boolean strictTrap) {
            this.manager = manager;
            this.variant = variant;
            if (variant == Variant.FUNCTION) {
                NDArray x = manager.create(X, new Shape(2, 3));
                x.setName("x");
                NDArray y = manager.create(Y);
                x.setRequiresGradient(true);
                y.setRequiresGradient(true);
                List<NDArray> list = new ArrayList<>(List.of(x, y));
                if (strictTrap) {
                    NDArray unused = manager.create(new float[] {0.5f, 0.25f});
                    unused.setName("unused");
                    unused.setRequiresGradient(true);
                    list.add(unused);
                }
                parameters = list.toArray(new NDArray[0]);
                scale = manager.create(SCALE);
                inputs = null;
                targets = null;
                model = null;
            } else {
                model = Linear.builder().setUnits(UNITS).build();
                model.setInitializer(
                        (m, shape, type) -> m.create(WEIGHT, shape), Parameter.Type.WEIGHT);
                model.setInitializer(
                        (m, shape, type) -> m.create(BIAS, shape), Parameter.Type.BIAS);
                model.initialize(manager, DataType.FLOAT32, new Shape(SAMPLES, FEATURES));
                if (strictTrap) {
                    model.getParameters().get("bias").freeze(true);
                }
                parameters = new NDArray[model.getParameters().size()];
                for (int i = 0; i < parameters.length; i++) {
                    parameters[i] = model.getParameters().get(i).getValue().getArray();
                }
                inputs = new NDList(manager.create(INPUTS, new Shape(SAMPLES, FEATURES)));
                targets = new NDList(manager.create(TARGETS, new Shape(SAMPLES, UNITS)));
                scale = null;
            }
            names = new String[parameters.length];
            initialValues = new byte[parameters.length][];
            for (int i = 0; i < parameters.length; i++) {
                names[i] = parameters[i].getName();
                initialValues[i] = parameters[i].toByteArray();
            }
        }

        /**
         * Makes evaluation number {@code evaluation} (counted from 1) throw {@code failure}.
         *
         * @param evaluation the evaluation to fail
         * @param failure what to throw
         */
        void failAt(int evaluation, RuntimeException failure) {
            this.failAt = evaluation;
            this.failure = failure;
        }

        /**
         * Makes the first evaluation that sees a parameter displaced from its initial value (as
         * finite differences displace them) throw {@code failure}.
         *
         * @param failure what to throw
         */
        void failWhenDisplaced(RuntimeException failure) {
            this.failWhenDisplaced = true;
            this.failure = failure;
        }

        /** The caller's arrays: parameters, and the model's inputs and targets. */
        NDArray[] callerArrays() {
            List<NDArray> arrays = new ArrayList<>(Arrays.asList(parameters));
            if (variant == Variant.MODEL) {
                arrays.addAll(inputs);
                arrays.addAll(targets);
            }
            return arrays.toArray(new NDArray[0]);
        }

        /** Computes the diagonal through the API form of this fixture. */
        NDList compute(HessianDiagonal hessian) {
            if (variant == Variant.FUNCTION) {
                return hessian.compute(this::countedLoss, new NDList(parameters));
            }
            return hessian.compute(model, new CountedLoss(), inputs, targets);
        }

        /** One training step's forward and backward in an open collector. */
        void trainingStep(GradientCollector collector) {
            collector.backward(trainingLoss());
        }

        /** A training step in a collector of its own, so that gradient buffers are defined. */
        void warmUp() {
            try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                trainingStep(collector);
            }
        }

        /** The gradient buffers of the parameters that have one, bit for bit. */
        byte[][] gradients() {
            byte[][] gradients = new byte[parameters.length][];
            for (int i = 0; i < parameters.length; i++) {
                if (parameters[i].hasGradient()) {
                    gradients[i] = EngineStateSupport.gradientBytes(parameters[i]);
                }
            }
            return gradients;
        }

        /** The closed-form diagonal of each parameter, zeros for one that is frozen or unused. */
        double[][] expected() {
            double[][] expected = new double[parameters.length][];
            if (variant == Variant.FUNCTION) {
                // f = sum(tanh(s x)) + sum(y^3): d2/dx2 = s^2 tanh''(s x), d2/dy2 = 6 y
                expected[0] = new double[X.length];
                for (int i = 0; i < X.length; i++) {
                    double t = Math.tanh((double) SCALE * X[i]);
                    expected[0][i] = (double) SCALE * SCALE * -2 * t * (1 - t * t);
                }
                expected[1] = new double[Y.length];
                for (int i = 0; i < Y.length; i++) {
                    expected[1][i] = 6.0 * Y[i];
                }
                if (parameters.length > 2) {
                    expected[2] = new double[2];
                }
                return expected;
            }
            // L = mean over N*U of (p - t)^2 / 2: d2/dW_ok2 = sum_n x_nk^2 / (N U), d2/db_o2 = 1/U
            expected[0] = new double[UNITS * FEATURES];
            for (int o = 0; o < UNITS; o++) {
                for (int k = 0; k < FEATURES; k++) {
                    double sum = 0;
                    for (int n = 0; n < SAMPLES; n++) {
                        double x = INPUTS[n * FEATURES + k];
                        sum += x * x;
                    }
                    expected[0][o * FEATURES + k] = sum / (SAMPLES * UNITS);
                }
            }
            expected[1] = new double[UNITS];
            if (parameters[1].hasGradient()) {
                Arrays.fill(expected[1], 1.0 / UNITS);
            }
            return expected;
        }

        /** The closed-form gradient of one training step's loss, for a fixture without trap. */
        double[][] expectedGradient() {
            if (variant == Variant.FUNCTION) {
                // df/dx = s (1 - tanh^2(s x)), df/dy = 3 y^2
                double[][] expected = {new double[X.length], new double[Y.length]};
                for (int i = 0; i < X.length; i++) {
                    double t = Math.tanh((double) SCALE * X[i]);
                    expected[0][i] = SCALE * (1 - t * t);
                }
                for (int i = 0; i < Y.length; i++) {
                    expected[1][i] = 3.0 * Y[i] * Y[i];
                }
                return expected;
            }
            // dL/dW_ok = sum_n r_no x_nk / (N U), dL/db_o = sum_n r_no / (N U), r = x W^T + b - t
            double[][] expected = {new double[UNITS * FEATURES], new double[UNITS]};
            for (int n = 0; n < SAMPLES; n++) {
                for (int o = 0; o < UNITS; o++) {
                    double residual = (double) BIAS[o] - TARGETS[n * UNITS + o];
                    for (int k = 0; k < FEATURES; k++) {
                        residual += (double) INPUTS[n * FEATURES + k] * WEIGHT[o * FEATURES + k];
                    }
                    residual /= SAMPLES * UNITS;
                    for (int k = 0; k < FEATURES; k++) {
                        expected[0][o * FEATURES + k] += residual * INPUTS[n * FEATURES + k];
                    }
                    expected[1][o] += residual;
                }
            }
            return expected;
        }

        private NDArray trainingLoss() {
            if (variant == Variant.FUNCTION) {
                return functionLoss();
            }
            NDList predictions = model.forward(new ParameterStore(manager, false), inputs, true);
            return new L2Loss().evaluate(targets, predictions);
        }

        private NDArray functionLoss() {
            NDArray x = parameters[0];
            NDArray y = parameters[1];
            return x.mul(scale).tanh().sum().add(y.pow(3).sum());
        }

        private void countDown() {
            if (evaluations.incrementAndGet() == failAt || failWhenDisplaced && isDisplaced()) {
                throw failure;
            }
        }

        private boolean isDisplaced() {
            for (int i = 0; i < parameters.length; i++) {
                if (!Arrays.equals(parameters[i].toByteArray(), initialValues[i])) {
                    return true;
                }
            }
            return false;
        }

        private NDArray countedLoss() {
            countDown();
            return functionLoss();
        }

        /** DJL's L2 loss, counting (and failing) like the function form. */
        private final class CountedLoss extends Loss {

            private final L2Loss l2 = new L2Loss();

            CountedLoss() {
                super("CountedL2Loss");
            }

            /** {@inheritDoc} */
            @Override
            public NDArray evaluate(NDList labels, NDList predictions) {
                countDown();
                return l2.evaluate(labels, predictions);
            }
        }
    }
}
