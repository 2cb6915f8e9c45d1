package org.secorder.structured.internal.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

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
 * <p>The columns are built on the engine's device, with one-hot rows selecting the classes other
 * than each sample's pivot, so that no values travel to the host and back.
 */
public final class SoftmaxRoot {

    private SoftmaxRoot() {}

    /**
     * Computes the columns.
     *
     * @param probabilities {@code (N, C)}, {@code C >= 2}
     * @param scale a factor for every column
     * @return {@code (N, C - 1, C)} in the data type of the probabilities
     */
    public static NDArray of(NDArray probabilities, double scale) {
        NDManager manager = probabilities.getManager();
        DataType type = probabilities.getDataType();
        int classes = Math.toIntExact(probabilities.getShape().get(1));
        NDArray pivot = probabilities.argMin(1).toType(DataType.INT64, false).expandDims(1);
        NDArray positions = manager.arange(classes - 1).toType(DataType.INT64, false).expandDims(0);
        // the classes other than the pivot, in order: position i holds class i, or i + 1 past r
        NDArray kept = positions.add(positions.gte(pivot).toType(DataType.INT64, false));
        NDArray selected = kept.oneHot(classes, type);
        NDArray pivotRow = pivot.oneHot(classes, type);
        NDArray rows = probabilities.expandDims(1);
        NDArray pivotRoot = rows.mul(pivotRow).sum(new int[] {2}, true).sqrt();
        NDArray g = pivotRoot.div(pivotRoot.neg().add(1));
        NDArray roots = selected.mul(rows).sum(new int[] {2}, true).sqrt().mul(scale);
        NDArray directions = selected.add(pivotRow.mul(g)).sub(rows.mul(g.add(1)));
        return directions.mul(roots);
    }
}
