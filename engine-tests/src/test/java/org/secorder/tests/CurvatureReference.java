package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import ai.djl.util.Pair;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Dense curvature matrices of small float64 models by routes that share nothing with the library:
 * the Hessian column by column from central differences of gradients that DJL's own {@link
 * GradientCollector} computes, the Jacobian of the model's output from central differences of
 * forward passes, and symmetric eigenvalues by Jacobi rotations.
 */
public final class CurvatureReference {

    private CurvatureReference() {}

    /** Gives every parameter of an initialized model seeded normal values times 0.6. */
    static void randomize(Block model, long seed) {
        Random random = new Random(seed);
        for (NDArray array : parameters(model)) {
            double[] values = new double[Math.toIntExact(array.size())];
            for (int i = 0; i < values.length; i++) {
                values[i] = 0.6 * random.nextGaussian();
            }
            array.set(values);
        }
    }

    /** Returns a float64 array of seeded normal values shaped like {@code like}. */
    static NDArray normalLike(NDArray like, long seed) {
        Random random = new Random(seed);
        double[] values = new double[Math.toIntExact(like.size())];
        for (int i = 0; i < values.length; i++) {
            values[i] = random.nextGaussian();
        }
        return like.getManager().create(values, like.getShape());
    }

    /** Returns seeded normal vectors shaped like each array. */
    static NDList normalLike(NDList likes, long seed) {
        NDList vectors = new NDList();
        for (int i = 0; i < likes.size(); i++) {
            vectors.add(normalLike(likes.get(i), seed + 7919L * i));
        }
        return vectors;
    }

    /** Returns the arrays of a model's parameters, in order. */
    static NDArray[] parameters(Block model) {
        List<NDArray> arrays = new ArrayList<>();
        for (Pair<String, Parameter> entry : model.getParameters()) {
            arrays.add(entry.getValue().getArray());
        }
        return arrays.toArray(new NDArray[0]);
    }

    /** Concatenates the values of arrays into one vector. */
    static double[] flatten(NDList arrays) {
        return flatten(arrays.toArray(new NDArray[0]));
    }

    /** Concatenates the values of arrays into one vector. */
    static double[] flatten(NDArray[] arrays) {
        List<double[]> parts = new ArrayList<>();
        int total = 0;
        for (NDArray array : arrays) {
            double[] values = Assertions.values(array);
            parts.add(values);
            total += values.length;
        }
        double[] flat = new double[total];
        int offset = 0;
        for (double[] part : parts) {
            System.arraycopy(part, 0, flat, offset, part.length);
            offset += part.length;
        }
        return flat;
    }

    /** Returns {@code m x}. */
    static double[] multiply(double[][] m, double[] x) {
        double[] y = new double[m.length];
        for (int i = 0; i < m.length; i++) {
            double sum = 0;
            for (int j = 0; j < x.length; j++) {
                sum += m[i][j] * x[j];
            }
            y[i] = sum;
        }
        return y;
    }

    /**
     * The gradient of a model's loss by DJL's {@link GradientCollector}, in inference mode,
     * flattened over all parameters.
     */
    static double[] gradient(Block model, Loss loss, NDArray input, NDArray target) {
        NDArray[] arrays = parameters(model);
        try (NDManager scope = input.getManager().newSubManager()) {
            scope.tempAttachAll(input, target);
            for (NDArray array : arrays) {
                NDArray gradient = array.getGradient();
                gradient.subi(gradient);
                gradient.close();
            }
            try (GradientCollector collector = scope.getEngine().newGradientCollector()) {
                NDList predictions =
                        model.forward(new ParameterStore(scope, false), new NDList(input), false);
                collector.backward(loss.evaluate(new NDList(target), predictions));
            }
            NDArray[] gradients = new NDArray[arrays.length];
            for (int i = 0; i < arrays.length; i++) {
                gradients[i] = arrays[i].getGradient();
            }
            try {
                return flatten(gradients);
            } finally {
                for (NDArray gradient : gradients) {
                    gradient.close();
                }
            }
        }
    }

    /**
     * The Hessian of a model's loss, column {@code j} the central difference {@code (g(x + h e_j) -
     * g(x - h e_j)) / 2h} of gradients, {@code h = step * max(1, |x_j|)}; symmetrized.
     */
    static double[][] hessian(Block model, Loss loss, NDArray input, NDArray target, double step) {
        NDArray[] arrays = parameters(model);
        int size = 0;
        for (NDArray array : arrays) {
            size += Math.toIntExact(array.size());
        }
        double[][] columns = new double[size][];
        int column = 0;
        for (NDArray array : arrays) {
            double[] values = array.toDoubleArray();
            for (int i = 0; i < values.length; i++) {
                double h = step * Math.max(1, Math.abs(values[i]));
                double[] plus = displacedGradient(model, loss, input, target, array, values, i, h);
                double[] minus =
                        displacedGradient(model, loss, input, target, array, values, i, -h);
                double[] plus2 =
                        displacedGradient(model, loss, input, target, array, values, i, 2 * h);
                double[] minus2 =
                        displacedGradient(model, loss, input, target, array, values, i, -2 * h);
                array.set(values);
                columns[column] = new double[size];
                for (int r = 0; r < size; r++) {
                    double near = plus[r] - minus[r];
                    double far = plus2[r] - minus2[r];
                    columns[column][r] = (8 * near - far) / (12 * h);
                }
                column++;
            }
        }
        double[][] hessian = new double[size][size];
        for (int r = 0; r < size; r++) {
            for (int c = 0; c < size; c++) {
                hessian[r][c] = (columns[c][r] + columns[r][c]) / 2;
            }
        }
        return hessian;
    }

    /**
     * The Jacobian of a model's output, flattened per sample, with respect to all parameters, from
     * fourth-order central differences of float64 forward passes in inference mode.
     *
     * @param model an initialized float64 model with one output
     * @param input the batch
     * @return {@code [n][o][j]}: sample {@code n}, output element {@code o}, parameter element
     *     {@code j} in the order of {@code model.getParameters()}
     */
    public static double[][][] jacobian(Block model, NDArray input) {
        NDArray[] arrays = parameters(model);
        double[][] center = outputs(model, input);
        int size = 0;
        for (NDArray array : arrays) {
            size += Math.toIntExact(array.size());
        }
        double[][][] jacobian = new double[center.length][center[0].length][size];
        int column = 0;
        for (NDArray array : arrays) {
            double[] values = array.toDoubleArray();
            for (int i = 0; i < values.length; i++) {
                double h = 1e-3 * Math.max(1, Math.abs(values[i]));
                double[][] plus = moved(model, input, array, values, i, h);
                double[][] minus = moved(model, input, array, values, i, -h);
                double[][] plus2 = moved(model, input, array, values, i, 2 * h);
                double[][] minus2 = moved(model, input, array, values, i, -2 * h);
                array.set(values);
                for (int n = 0; n < center.length; n++) {
                    jacobian[n] =
                            withColumn(
                                    jacobian[n], column, h, plus[n], minus[n], plus2[n], minus2[n]);
                }
                column++;
            }
        }
        return jacobian;
    }

    /** Sets one column of one sample's Jacobian from the four displaced outputs. */
    private static double[][] withColumn(
            double[][] rows,
            int column,
            double h,
            double[] plus,
            double[] minus,
            double[] plus2,
            double[] minus2) {
        for (int o = 0; o < rows.length; o++) {
            double near = plus[o] - minus[o];
            double far = plus2[o] - minus2[o];
            rows[o][column] = (8 * near - far) / (12 * h);
        }
        return rows;
    }

    /**
     * The Hessian of DJL's {@code SoftmaxCrossEntropyLoss} (sparse labels, weight 1, mean over the
     * batch) with respect to the logits of each sample, {@code (diag(p) - p p^T) / N}, derived by
     * hand.
     *
     * @param model an initialized float64 model whose one output is the logits
     * @param input the batch
     * @return {@code [n][a][b]}: the Hessian of sample {@code n}
     */
    public static double[][][] softmaxCrossEntropyHessians(Block model, NDArray input) {
        double[][] logits = outputs(model, input);
        int batch = logits.length;
        double[][][] hessians = new double[batch][][];
        for (int n = 0; n < batch; n++) {
            double[] z = logits[n];
            double max = Arrays.stream(z).max().orElse(0);
            double[] p = new double[z.length];
            double total = 0;
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
        return hessians;
    }

    /** The dense GGN {@code sum_n J_n^T H_n J_n}. */
    static double[][] gaussNewton(double[][][] jacobian, double[][][] hessians) {
        int size = jacobian[0][0].length;
        double[][] ggn = new double[size][size];
        for (int n = 0; n < jacobian.length; n++) {
            double[][] term = product(transpose(jacobian[n]), product(hessians[n], jacobian[n]));
            for (int r = 0; r < size; r++) {
                for (int c = 0; c < size; c++) {
                    ggn[r][c] += term[r][c];
                }
            }
        }
        return ggn;
    }

    /** Returns {@code a b}. */
    static double[][] product(double[][] a, double[][] b) {
        double[][] result = new double[a.length][];
        double[][] columns = transpose(b);
        for (int i = 0; i < a.length; i++) {
            result[i] = multiply(columns, a[i]);
        }
        return result;
    }

    /** Returns the transpose of a matrix. */
    static double[][] transpose(double[][] a) {
        double[][] t = new double[a[0].length][a.length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[i].length; j++) {
                t[j][i] = a[i][j];
            }
        }
        return t;
    }

    /**
     * The eigenvalues of a symmetric matrix by cyclic Jacobi rotations, largest magnitude first.
     */
    static double[] eigenvalues(double[][] matrix) {
        int n = matrix.length;
        double[][] a = new double[n][];
        for (int i = 0; i < n; i++) {
            a[i] = matrix[i].clone();
        }
        for (int i = 0; i < 100; i++) {
            if (sweep(a) <= 1e-30) {
                break;
            }
        }
        Double[] values = new Double[n];
        for (int i = 0; i < n; i++) {
            values[i] = a[i][i];
        }
        Arrays.sort(values, (x, y) -> Double.compare(Math.abs(y), Math.abs(x)));
        double[] sorted = new double[n];
        for (int i = 0; i < n; i++) {
            sorted[i] = values[i];
        }
        return sorted;
    }

    /** One cyclic Jacobi sweep; returns the squared off-diagonal norm before it. */
    private static double sweep(double[][] a) {
        int n = a.length;
        double off = 0;
        for (int p = 0; p < n; p++) {
            for (int q = p + 1; q < n; q++) {
                off += a[p][q] * a[p][q];
            }
        }
        if (off <= 1e-30) {
            return off;
        }
        for (int p = 0; p < n; p++) {
            for (int q = p + 1; q < n; q++) {
                rotate(a, p, q);
            }
        }
        return off;
    }

    /** Zeros {@code a[p][q]} by a Jacobi rotation. */
    private static void rotate(double[][] a, int p, int q) {
        if (a[p][q] == 0) {
            return;
        }
        int n = a.length;
        double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        double t =
                Math.signum(theta == 0 ? 1 : theta)
                        / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        double c = 1 / Math.sqrt(t * t + 1);
        double s = t * c;
        for (int k = 0; k < n; k++) {
            double akp = a[k][p];
            double akq = a[k][q];
            a[k][p] = c * akp - s * akq;
            a[k][q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; k++) {
            double apk = a[p][k];
            double aqk = a[q][k];
            a[p][k] = c * apk - s * aqk;
            a[q][k] = s * apk + c * aqk;
        }
    }

    private static double[] displacedGradient(
            Block model,
            Loss loss,
            NDArray input,
            NDArray target,
            NDArray array,
            double[] values,
            int index,
            double step) {
        double[] moved = values.clone();
        moved[index] += step;
        array.set(moved);
        return gradient(model, loss, input, target);
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
