package org.secorder.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * A square root of the softmax Jacobian {@code diag(p) - p p^T} of every sample, with {@code C - 1}
 * columns since the matrix has rank {@code C - 1}.
 *
 * <p>The {@code C} columns {@code s_j = sqrt(p_j) (e_j - p)} are linearly dependent ({@code sum_j
 * sqrt(p_j) s_j = 0}). The Householder reflection that swaps {@code sqrt(p)} and {@code e_r} keeps
 * the sum of their outer products and turns them into {@code sqrt(p_j) (e_j + g e_r - (1 + g) p)}
 * for {@code j != r}, with {@code g = sqrt(p_r) / (1 - sqrt(p_r))}, and a zero column, dropped. The
 * pivot {@code r} is each sample's least likely class, so that {@code 1 - sqrt(p_r) >= 1 -
 * 1/sqrt(C)}.
 *
 * <p>The columns are few and small ({@code N (C - 1) C} values), so they are computed on the host
 * in double precision, a block of samples at a time.
 */
final class SoftmaxRoot {

    private static final int BLOCK_ELEMENTS = 1 << 20;

    private SoftmaxRoot() {}

    /**
     * Computes the columns.
     *
     * @param probabilities {@code (N, C)}, {@code C >= 2}
     * @param scale a factor for every column
     * @return {@code (N, C - 1, C)} in the data type of the probabilities
     */
    static NDArray of(NDArray probabilities, double scale) {
        NDManager manager = probabilities.getManager();
        DataType type = probabilities.getDataType();
        int batch = Math.toIntExact(probabilities.getShape().get(0));
        int classes = Math.toIntExact(probabilities.getShape().get(1));
        double[] p = probabilities.toType(DataType.FLOAT64, false).toDoubleArray();
        int perSample = (classes - 1) * classes;
        int samplesPerBlock = Math.max(1, BLOCK_ELEMENTS / perSample);
        NDList blocks = new NDList();
        for (int start = 0; start < batch; start += samplesPerBlock) {
            int count = Math.min(samplesPerBlock, batch - start);
            double[] values = new double[count * perSample];
            for (int n = 0; n < count; n++) {
                fill(p, (start + n) * classes, classes, scale, values, n * perSample);
            }
            Shape shape = new Shape(count, classes - 1, classes);
            blocks.add(create(manager, values, shape, type));
        }
        return blocks.size() == 1 ? blocks.head() : NDArrays.concat(blocks, 0);
    }

    private static void fill(
            double[] p, int from, int classes, double scale, double[] out, int to) {
        int pivot = from;
        for (int i = from + 1; i < from + classes; i++) {
            if (p[i] < p[pivot]) {
                pivot = i;
            }
        }
        double pivotRoot = Math.sqrt(p[pivot]);
        double g = pivotRoot / (1 - pivotRoot);
        int row = 0;
        for (int j = from; j < from + classes; j++) {
            if (j == pivot) {
                continue;
            }
            double root = Math.sqrt(p[j]) * scale;
            int base = to + row * classes;
            for (int i = 0; i < classes; i++) {
                out[base + i] = -root * (1 + g) * p[from + i];
            }
            out[base + j - from] += root;
            out[base + pivot - from] += root * g;
            row++;
        }
    }

    private static NDArray create(NDManager manager, double[] values, Shape shape, DataType type) {
        if (type == DataType.FLOAT32) {
            float[] single = new float[values.length];
            for (int i = 0; i < values.length; i++) {
                single[i] = (float) values[i];
            }
            return manager.create(single, shape);
        }
        return manager.create(values, shape).toType(type, false);
    }
}
