package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.util.Pair;
import org.secorder.tests.CurvatureReference;

/**
 * An independent generalized Gauss-Newton diagonal, {@code sum_n J_n^T H_n J_n}: the Jacobian of
 * the model's outputs by fourth-order central differences of forward passes in float64, and the
 * loss Hessian with respect to the outputs derived by hand (both from {@link CurvatureReference}).
 */
final class GaussNewtonReference {

    private GaussNewtonReference() {}

    /**
     * Computes the diagonal for DJL's softmax cross-entropy with sparse labels and weight 1, whose
     * per-sample Hessian is {@code (diag(p) - p p^T) / N}.
     */
    static NDList softmaxCrossEntropy(Block model, NDArray input) {
        return diagonal(model, input, CurvatureReference.softmaxCrossEntropyHessians(model, input));
    }

    /**
     * Computes the diagonal for DJL's {@code L2Loss} with a weight, whose per-sample Hessian is
     * {@code 2 weight / (N C) I}.
     */
    static NDList squaredError(Block model, NDArray input, double weight) {
        double[][][] jacobian = CurvatureReference.jacobian(model, input);
        int batch = jacobian.length;
        int classes = jacobian[0].length;
        double[][][] hessians = new double[batch][classes][classes];
        for (int n = 0; n < batch; n++) {
            for (int c = 0; c < classes; c++) {
                hessians[n][c][c] = 2 * weight / (batch * classes);
            }
        }
        return diagonal(model, jacobian, hessians, input);
    }

    private static NDList diagonal(Block model, NDArray input, double[][][] hessians) {
        return diagonal(model, CurvatureReference.jacobian(model, input), hessians, input);
    }

    /** {@code sum_n J_n^T H_n J_n} on the diagonal, split into one array per parameter. */
    private static NDList diagonal(
            Block model, double[][][] jacobian, double[][][] hessians, NDArray input) {
        NDList result = new NDList();
        int column = 0;
        for (Pair<String, Parameter> entry : model.getParameters()) {
            NDArray array = entry.getValue().getArray();
            double[] diagonal = new double[Math.toIntExact(array.size())];
            for (int i = 0; i < diagonal.length; i++) {
                diagonal[i] = quadraticForm(jacobian, hessians, column++);
            }
            result.add(input.getManager().create(diagonal, array.getShape()));
        }
        return result;
    }

    private static double quadraticForm(double[][][] jacobian, double[][][] hessians, int column) {
        double sum = 0;
        for (int n = 0; n < jacobian.length; n++) {
            for (int a = 0; a < jacobian[n].length; a++) {
                double[] row = hessians[n][a];
                double hj = 0;
                for (int b = 0; b < row.length; b++) {
                    hj += row[b] * jacobian[n][b][column];
                }
                sum += jacobian[n][a][column] * hj;
            }
        }
        return sum;
    }
}
