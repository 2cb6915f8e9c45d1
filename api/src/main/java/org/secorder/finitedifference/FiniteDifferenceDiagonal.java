package org.secorder.finitedifference;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngine;
import org.secorder.evaluation.Evaluation;
import org.secorder.evaluation.HostArrays;
import org.secorder.evaluation.LossFunction;
import org.secorder.evaluation.ParameterSnapshot;

/**
 * An approximate Hessian diagonal from central differences of first derivatives, for engines (or
 * losses) without second derivatives.
 *
 * <p>For element {@code i} of a parameter with value {@code x}, the parameter is set to {@code x +
 * h} and {@code x - h} in turn and {@code H_ii ~ (g_i(x + h) - g_i(x - h)) / (2h)}, with {@code g}
 * the gradient. The truncation error is {@code h^2 / 6} times the fourth derivative of the loss
 * along that element, and rounding adds about {@code eps * |g| / h}; the default step {@code h =
 * eps^(1/3) * max(1, |x|)} balances the two ({@code eps} being the machine epsilon of the
 * parameter's data type). The cost is two gradient evaluations (forward and backward) per parameter
 * element.
 *
 * <p>Parameters are changed in place while it runs and restored bit for bit from a copy afterwards,
 * also when it fails.
 */
public final class FiniteDifferenceDiagonal {

    private FiniteDifferenceDiagonal() {}

    /**
     * Returns the default relative step for a data type: the cube root of its machine epsilon.
     *
     * @param dataType the parameter's data type
     * @return the relative step
     */
    public static double defaultRelativeStep(DataType dataType) {
        return Math.cbrt(machineEpsilon(dataType));
    }

    /**
     * Computes the approximate diagonal of each variable's own block of the Hessian.
     *
     * @param loss the loss to differentiate
     * @param variables arrays that require gradients
     * @param relativeStep the step relative to {@code max(1, |x|)}, or {@code NaN} for each data
     *     type's default
     * @param results the manager the diagonals are attached to
     * @return one diagonal per variable, or {@code null} for a variable the loss does not depend on
     */
    public static NDArray[] compute(
            LossFunction loss, NDArray[] variables, double relativeStep, NDManager results) {
        SecondOrderEngine engine = loss.getEngine();
        NDArray[] diagonals = new NDArray[variables.length];
        try (ParameterSnapshot snapshot = new ParameterSnapshot(engine, variables, results)) {
            try {
                for (int i = 0; i < variables.length; i++) {
                    double step =
                            Double.isNaN(relativeStep)
                                    ? defaultRelativeStep(variables[i].getDataType())
                                    : relativeStep;
                    double[] values = diagonal(loss, variables, i, step);
                    if (values != null) {
                        diagonals[i] = toArray(values, variables[i], results);
                    }
                }
            } finally {
                snapshot.restore();
            }
        }
        return diagonals;
    }

    private static double[] diagonal(
            LossFunction loss, NDArray[] variables, int which, double relativeStep) {
        NDArray variable = variables[which];
        if (gradientAt(loss, variables, which, null) == null) {
            return null;
        }
        double[] x;
        try (NDArray asDouble = variable.toType(DataType.FLOAT64, true)) {
            x = asDouble.toDoubleArray();
        }
        Shape shape = variable.getShape();
        double[] diagonal = new double[x.length];
        for (int j = 0; j < x.length; j++) {
            NDIndex index = new NDIndex(unravel(j, shape));
            double step = relativeStep * Math.max(1.0, Math.abs(x[j]));
            double plus = setElement(loss.getEngine(), variable, index, x[j] + step);
            Double gradientPlus = gradientAt(loss, variables, which, index);
            double minus = setElement(loss.getEngine(), variable, index, x[j] - step);
            Double gradientMinus = gradientAt(loss, variables, which, index);
            setElement(loss.getEngine(), variable, index, x[j]);
            if (gradientPlus != null && gradientMinus != null) {
                diagonal[j] = (gradientPlus - gradientMinus) / (plus - minus);
            }
        }
        return diagonal;
    }

    /**
     * Evaluates the loss and one element of its gradient with respect to one variable.
     *
     * <p>The gradient is asked for every variable: MXNet's {@code FullyConnected} leaves the bias
     * gradient uninitialised when the weight gradient is not requested.
     *
     * @return the element, {@code 0.0} for a whole-array probe, or {@code null} if the loss does
     *     not depend on the variable
     */
    private static Double gradientAt(
            LossFunction loss, NDArray[] variables, int which, NDIndex index) {
        try (Evaluation evaluation = loss.evaluate()) {
            NDArray gradient =
                    loss.getEngine().gradient(evaluation.getLoss(), variables, false)[which];
            if (gradient == null) {
                return null;
            }
            if (index == null) {
                return 0.0;
            }
            NDArray element = index.getRank() == 0 ? gradient : gradient.get(index);
            return element.toType(DataType.FLOAT64, false).getDouble();
        }
    }

    /**
     * Writes one element of a parameter in place, with recording off.
     *
     * @return the value actually stored, after rounding to the parameter's data type
     */
    private static double setElement(
            SecondOrderEngine engine, NDArray variable, NDIndex index, double value) {
        RecordingScope recording = engine.recording(false);
        try (NDManager scope = variable.getManager().newSubManager()) {
            // whatever the indexer creates lands in the scope
            variable.tempAttach(scope);
            if (index.getRank() == 0) {
                // a 0-d array: PyTorch's indexer rejects the empty index, MXNet's ignores it
                NDArray scalar =
                        HostArrays.create(scope, new double[] {value}, new Shape())
                                .toType(variable.getDataType(), false);
                scalar.toDevice(variable.getDevice(), false).copyTo(variable);
                return variable.toType(DataType.FLOAT64, false).getDouble();
            }
            variable.set(index, value);
            return variable.get(index).toType(DataType.FLOAT64, false).getDouble();
        } finally {
            recording.close();
        }
    }

    private static long[] unravel(long flatIndex, Shape shape) {
        long[] index = new long[shape.dimension()];
        long rest = flatIndex;
        for (int axis = index.length - 1; axis >= 0; axis--) {
            long extent = shape.get(axis);
            index[axis] = rest % extent;
            rest /= extent;
        }
        return index;
    }

    private static NDArray toArray(double[] values, NDArray like, NDManager manager) {
        NDArray asDouble = HostArrays.create(manager, values, like.getShape());
        NDArray typed = asDouble.toType(like.getDataType(), false);
        if (typed != asDouble) {
            asDouble.close();
        }
        NDArray moved = typed.toDevice(like.getDevice(), false);
        if (moved != typed) {
            typed.close();
        }
        return moved;
    }

    private static double machineEpsilon(DataType dataType) {
        switch (dataType) {
            case FLOAT64:
                return Math.ulp(1.0);
            case FLOAT32:
                return Math.ulp(1.0f);
            case FLOAT16:
                return 0x1p-10;
            case BFLOAT16:
                return 0x1p-7;
            default:
                throw new IllegalArgumentException(
                        "Finite differences need floating-point parameters, got " + dataType);
        }
    }
}
