package org.secorder.tests.structured;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import ai.djl.util.Pair;
import java.util.Random;
import org.secorder.core.HessianDiagonal;
import org.secorder.structured.MemoryMeter;
import org.secorder.structured.StructuredDiagonal;
import org.testng.Assert;

/** Models, data and ground truth for the structured tests. */
final class Fixtures {

    /** Relative tolerance against double backward on PyTorch, in float64. */
    static final double AUTOGRAD_TOLERANCE = 1e-9;

    /** Relative tolerance against float64 finite differences on MXNet. */
    static final double DIFFERENCE_TOLERANCE = 1e-6;

    private static final long BUDGET = 256L << 20;

    private Fixtures() {}

    /** Returns whether the suite runs on PyTorch, which has double backward. */
    static boolean isPyTorch() {
        String name = Engine.getInstance().getEngineName();
        String expected = System.getProperty("secorder.test.engine");
        if (expected != null) {
            Assert.assertEquals(name, expected, "the suite runs on the wrong engine");
        }
        return "PyTorch".equals(name);
    }

    /** Returns the tolerance of {@link #reference} on this engine. */
    static double tolerance() {
        return isPyTorch() ? AUTOGRAD_TOLERANCE : DIFFERENCE_TOLERANCE;
    }

    /** Returns a float64 array of normal values from a seeded generator. */
    static NDArray normal(NDManager manager, long seed, Shape shape) {
        Random random = new Random(seed);
        double[] values = new double[Math.toIntExact(shape.size())];
        for (int i = 0; i < values.length; i++) {
            values[i] = random.nextGaussian();
        }
        return manager.create(values, shape);
    }

    /** Returns a float64 array of uniform values in {@code [0, 1)} from a seeded generator. */
    static NDArray uniform(NDManager manager, long seed, Shape shape) {
        Random random = new Random(seed);
        double[] values = new double[Math.toIntExact(shape.size())];
        for (int i = 0; i < values.length; i++) {
            values[i] = random.nextDouble();
        }
        return manager.create(values, shape);
    }

    /** Returns class indices {@code i mod classes} as a float32 array. */
    static NDArray classes(NDManager manager, int batch, int classes) {
        float[] values = new float[batch];
        for (int i = 0; i < batch; i++) {
            values[i] = (i * 7 + 1) % classes;
        }
        return manager.create(values);
    }

    /**
     * Initializes a model in float64 and gives every parameter seeded random values; running
     * variances get values in {@code [0.5, 1.5)}.
     */
    static Block initialize(Block model, NDManager manager, Shape inputShape, long seed) {
        return initialize(model, manager, inputShape, seed, DataType.FLOAT64);
    }

    /** Initializes a model in a data type and gives every parameter seeded random values. */
    static Block initialize(
            Block model, NDManager manager, Shape inputShape, long seed, DataType type) {
        model.initialize(manager, type, inputShape);
        // DJL 0.36.0 initializes some parameters in float32 whatever the type asked for
        toType(model, type);
        Random random = new Random(seed);
        for (Pair<String, Parameter> entry : model.getParameters()) {
            NDArray array = entry.getValue().getArray();
            boolean variance = entry.getKey().endsWith("runningVar");
            double[] values = new double[Math.toIntExact(array.size())];
            for (int i = 0; i < values.length; i++) {
                values[i] = variance ? 0.5 + random.nextDouble() : 0.6 * random.nextGaussian();
            }
            manager.create(values, array.getShape()).toType(type, false).copyTo(array);
        }
        return model;
    }

    /** Computes the structured diagonal with the default budget, summed over the batch. */
    static NDArray[] structured(
            Block model, Loss loss, NDArray input, NDArray target, boolean ggn) {
        return structured(model, loss, input, target, ggn, new MemoryMeter(BUDGET));
    }

    /** Computes the structured diagonal under a memory meter, summed over the batch. */
    static NDArray[] structured(
            Block model, Loss loss, NDArray input, NDArray target, boolean ggn, MemoryMeter meter) {
        return StructuredDiagonal.compute(
                model,
                loss,
                new NDList(input),
                new NDList(target),
                ggn,
                false,
                false,
                meter,
                input.getManager());
    }

    /**
     * Computes the reference Hessian diagonal: double backward on PyTorch, central differences of
     * float64 gradients on MXNet.
     */
    static NDList reference(Block model, Loss loss, NDArray input, NDArray target) {
        HessianDiagonal.Method method =
                isPyTorch()
                        ? HessianDiagonal.Method.AUTOGRAD
                        : HessianDiagonal.Method.FINITE_DIFFERENCE;
        return HessianDiagonal.builder()
                .optMethod(method)
                .build()
                .compute(model, loss, new NDList(input), new NDList(target));
    }

    /**
     * Computes the reference Hessian diagonal by central differences of float64 gradients with a
     * given relative step, on any engine.
     */
    static NDList gradientDifferences(
            Block model, Loss loss, NDArray input, NDArray target, double step) {
        return HessianDiagonal.builder()
                .optMethod(HessianDiagonal.Method.FINITE_DIFFERENCE)
                .optFiniteDifferenceStep(step)
                .build()
                .compute(model, loss, new NDList(input), new NDList(target));
    }

    /**
     * Computes the Hessian diagonal from loss values only: second central differences with steps
     * {@code h} and {@code 2h}, combined by Richardson extrapolation, in float64. It needs no
     * gradient from the engine at all. Parameters that take no gradient get zeros.
     */
    static NDList valueDifferences(Block model, Loss loss, NDArray input, NDArray target) {
        return valueDifferences(model, loss, input, target, 1e-3);
    }

    /** Computes the Hessian diagonal from loss values only, with a given relative step. */
    static NDList valueDifferences(
            Block model, Loss loss, NDArray input, NDArray target, double relativeStep) {
        NDManager manager = input.getManager();
        NDList result = new NDList();
        double center = lossValue(model, loss, input, target);
        for (Pair<String, Parameter> entry : model.getParameters()) {
            NDArray array = entry.getValue().getArray();
            double[] values = array.toDoubleArray();
            double[] diagonal = new double[values.length];
            // like Method.AUTOGRAD, a parameter without gradient (a running statistic) gets zeros
            int count = entry.getValue().requiresGradient() ? values.length : 0;
            for (int i = 0; i < count; i++) {
                double step = relativeStep * Math.max(1, Math.abs(values[i]));
                Probe probe = new Probe(model, loss, input, target, array, values, center);
                diagonal[i] = (4 * probe.second(i, step) - probe.second(i, 2 * step)) / 3;
            }
            array.set(values);
            result.add(manager.create(diagonal, array.getShape()));
        }
        return result;
    }

    /** Evaluates the loss of a model in inference mode, in float64. */
    static double lossValue(Block model, Loss loss, NDArray input, NDArray target) {
        try (NDManager scope = input.getManager().newSubManager()) {
            scope.tempAttachAll(input, target);
            NDList predictions =
                    model.forward(new ParameterStore(scope, false), new NDList(input), false);
            NDArray value = loss.evaluate(new NDList(target), predictions);
            return value.toType(DataType.FLOAT64, false).getDouble();
        }
    }

    /**
     * Asserts that each actual diagonal equals the expected one to a tolerance relative to the
     * largest magnitude in that parameter's expected diagonal, or 1e-4 of that in all of them where
     * that is larger.
     */
    static void assertMatches(NDArray[] actual, NDList expected, double tolerance) {
        Assert.assertEquals(actual.length, expected.size(), "number of diagonals");
        double overall = 0;
        for (NDArray array : expected) {
            overall =
                    Math.max(
                            overall,
                            largest(array.toType(DataType.FLOAT64, false).toDoubleArray()));
        }
        for (int p = 0; p < actual.length; p++) {
            Assert.assertEquals(
                    actual[p].getShape(), expected.get(p).getShape(), "shape of diagonal " + p);
            double[] a = actual[p].toType(DataType.FLOAT64, false).toDoubleArray();
            double[] e = expected.get(p).toType(DataType.FLOAT64, false).toDoubleArray();
            // a diagonal that is zero in truth (the key bias of attention: softmax ignores a
            // shift of all scores) is only the reference's rounding or truncation error, so a
            // parameter is measured against at least 1e-4 of the model's largest diagonal
            double scale = Math.max(largest(e), 1e-4 * overall);
            if (!(scale > 0)) {
                scale = overall;
            }
            for (int i = 0; i < a.length; i++) {
                double error = Math.abs(a[i] - e[i]);
                if (!(error <= tolerance * scale)) {
                    Assert.fail(
                            "diagonal "
                                    + p
                                    + ", element "
                                    + i
                                    + ": expected "
                                    + e[i]
                                    + " but got "
                                    + a[i]
                                    + " (relative error "
                                    + error / scale
                                    + ", tolerance "
                                    + tolerance
                                    + ")");
                }
            }
        }
    }

    /** Asserts that two sets of diagonals are equal to a relative tolerance. */
    static void assertMatches(NDArray[] actual, NDArray[] expected, double tolerance) {
        assertMatches(actual, new NDList(expected), tolerance);
    }

    /** Moves one parameter element and evaluates the loss. */
    private static final class Probe {

        private final Block model;
        private final Loss loss;
        private final NDArray input;
        private final NDArray target;
        private final NDArray array;
        private final double[] values;
        private final double center;

        Probe(
                Block model,
                Loss loss,
                NDArray input,
                NDArray target,
                NDArray array,
                double[] values,
                double center) {
            this.model = model;
            this.loss = loss;
            this.input = input;
            this.target = target;
            this.array = array;
            this.values = values;
            this.center = center;
        }

        double second(int index, double step) {
            double[] moved = values.clone();
            moved[index] = values[index] + step;
            array.set(moved);
            double plus = lossValue(model, loss, input, target);
            moved[index] = values[index] - step;
            array.set(moved);
            double minus = lossValue(model, loss, input, target);
            array.set(values);
            return (plus - 2 * center + minus) / (step * step);
        }
    }

    private static double largest(double[] values) {
        double max = 0;
        for (double value : values) {
            max = Math.max(max, Math.abs(value));
        }
        return max;
    }

    /**
     * Gives float64 arrays to the parameters that DJL 0.36.0 initialized in float32 whatever the
     * model's type: {@code ScaledDotProductAttentionBlock} initializes its projections in float32,
     * and {@code Block.cast} is not implemented for {@code SequentialBlock}.
     */
    static void toFloat64(Block model) {
        toType(model, DataType.FLOAT64);
    }

    /** Gives every parameter of a model an array of a data type, converting those of another. */
    static void toType(Block model, DataType type) {
        for (Pair<String, Parameter> entry : model.getParameters()) {
            Parameter parameter = entry.getValue();
            NDArray array = parameter.getArray();
            if (array.getDataType() != type) {
                NDArray copy = array.toType(type, true);
                copy.attach(array.getManager());
                parameter.close();
                parameter.setShape(null);
                parameter.setArray(copy);
                // as Parameter.initialize does: the gradient of the loss reaches it
                copy.setRequiresGradient(parameter.requiresGradient());
            }
        }
    }
}
