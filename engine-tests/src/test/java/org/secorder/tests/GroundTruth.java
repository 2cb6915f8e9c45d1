package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.function.DoubleSupplier;

/**
 * Hessian diagonals by a route that shares nothing with the library: second differences of loss
 * values alone, in float64, with no gradient anywhere.
 */
final class GroundTruth {

    private GroundTruth() {}

    /**
     * Returns {@code (f(x + h e_j) - 2 f(x) + f(x - h e_j)) / h^2} for every element j of a float64
     * parameter, restoring each element afterwards.
     *
     * @param loss evaluates the loss at the parameter's current value, without recording
     * @param parameter a float64 array, changed in place while this runs
     * @param step the step h
     * @return the diagonal, flattened
     */
    static double[] secondDifferences(DoubleSupplier loss, NDArray parameter, double step) {
        if (parameter.getDataType() != DataType.FLOAT64) {
            throw new IllegalArgumentException("ground truth needs float64 parameters");
        }
        double[] x = parameter.toDoubleArray();
        double center = loss.getAsDouble();
        double[] diagonal = new double[x.length];
        Shape shape = parameter.getShape();
        for (int j = 0; j < x.length; j++) {
            NDIndex index = new NDIndex(unravel(j, shape));
            parameter.set(index, x[j] + step);
            double plus = loss.getAsDouble();
            parameter.set(index, x[j] - step);
            double minus = loss.getAsDouble();
            parameter.set(index, x[j]);
            diagonal[j] = (plus - 2 * center + minus) / (step * step);
        }
        return diagonal;
    }

    private static long[] unravel(long flat, Shape shape) {
        long[] index = new long[shape.dimension()];
        long rest = flat;
        for (int axis = index.length - 1; axis >= 0; axis--) {
            index[axis] = rest % shape.get(axis);
            rest /= shape.get(axis);
        }
        return index;
    }
}
