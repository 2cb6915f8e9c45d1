package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.Pair;

/**
 * An independent generalized Gauss-Newton diagonal, {@code sum_n J_n^T H_n J_n}: the Jacobian of
 * the model's outputs by fourth-order central differences of forward passes in float64, and the
 * loss Hessian with respect to the outputs derived by hand.
 */
final class GaussNewtonReference {

    private GaussNewtonReference() {}

    /**
     * Computes the diagonal for DJL's softmax cross-entropy with sparse labels and weight 1, whose
     * per-sample Hessian is {@code (diag(p) - p p^T) / N}.
     */
    static NDList softmaxCrossEntropy(Block model, NDArray input) {
        double[][] outputs = outputs(model, input);
        int batch = outputs.length;
        double[][][] hessians = new double[batch][][];
        for (int n = 0; n < batch; n++) {
            double[] z = outputs[n];
            double max = Double.NEGATIVE_INFINITY;
            for (double value : z) {
                max = Math.max(max, value);
            }
            double total = 0;
            double[] p = new double[z.length];
            for (int c = 0; c < z.length; c++) {
                p[c] = Math.exp(z[c] - max);
                total += p[c];
            }
            hessians[n] = new double[z.length][z.length];
            for (int a = 0; a < z.length; a++) {
                for (int b = 0; b < z.length; b++) {
                    double pa = p[a] / total;
                    double pb = p[b] / total;
                    hessians[n][a][b] = ((a == b ? pa : 0) - pa * pb) / batch;
                }
            }
        }
        return diagonal(model, input, hessians);
    }

    /**
     * Computes the diagonal for DJL's {@code L2Loss} with a weight, whose per-sample Hessian is
     * {@code 2 weight / (N C) I}.
     */
    static NDList squaredError(Block model, NDArray input, double weight) {
        double[][] outputs = outputs(model, input);
        int batch = outputs.length;
        int classes = outputs[0].length;
        double[][][] hessians = new double[batch][classes][classes];
        for (int n = 0; n < batch; n++) {
            for (int c = 0; c < classes; c++) {
                hessians[n][c][c] = 2 * weight / (batch * classes);
            }
        }
        return diagonal(model, input, hessians);
    }

    private static NDList diagonal(Block model, NDArray input, double[][][] hessians) {
        NDList result = new NDList();
        for (Pair<String, Parameter> entry : model.getParameters()) {
            NDArray array = entry.getValue().getArray();
            double[] values = array.toDoubleArray();
            double[] diagonal = new double[values.length];
            for (int i = 0; i < values.length; i++) {
                double[][] jacobian = jacobianColumn(model, input, array, values, i);
                diagonal[i] = quadraticForm(jacobian, hessians);
            }
            array.set(values);
            result.add(input.getManager().create(diagonal, array.getShape()));
        }
        return result;
    }

    private static double quadraticForm(double[][] jacobian, double[][][] hessians) {
        double sum = 0;
        for (int n = 0; n < jacobian.length; n++) {
            for (int a = 0; a < jacobian[n].length; a++) {
                for (int b = 0; b < jacobian[n].length; b++) {
                    sum += jacobian[n][a] * hessians[n][a][b] * jacobian[n][b];
                }
            }
        }
        return sum;
    }

    private static double[][] jacobianColumn(
            Block model, NDArray input, NDArray array, double[] values, int index) {
        double step = 1e-3 * Math.max(1, Math.abs(values[index]));
        double[][] plus = moved(model, input, array, values, index, step);
        double[][] minus = moved(model, input, array, values, index, -step);
        double[][] plus2 = moved(model, input, array, values, index, 2 * step);
        double[][] minus2 = moved(model, input, array, values, index, -2 * step);
        double[][] column = new double[plus.length][plus[0].length];
        for (int n = 0; n < plus.length; n++) {
            for (int c = 0; c < plus[n].length; c++) {
                double near = plus[n][c] - minus[n][c];
                double far = plus2[n][c] - minus2[n][c];
                column[n][c] = (8 * near - far) / (12 * step);
            }
        }
        return column;
    }

    private static double[][] moved(
            Block model, NDArray input, NDArray array, double[] values, int index, double step) {
        double[] shifted = values.clone();
        shifted[index] += step;
        array.set(shifted);
        return outputs(model, input);
    }

    private static double[][] outputs(Block model, NDArray input) {
        try (NDManager scope = input.getManager().newSubManager()) {
            scope.tempAttachAll(input);
            NDArray output =
                    model.forward(new ParameterStore(scope, false), new NDList(input), false)
                            .singletonOrThrow()
                            .toType(DataType.FLOAT64, false);
            int batch = Math.toIntExact(output.getShape().get(0));
            int width = Math.toIntExact(output.size() / batch);
            double[] flat = output.toDoubleArray();
            double[][] rows = new double[batch][width];
            for (int n = 0; n < batch; n++) {
                System.arraycopy(flat, n * width, rows[n], 0, width);
            }
            return rows;
        }
    }
}
