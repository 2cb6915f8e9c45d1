package org.secorder.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import java.util.List;

/**
 * The derivatives of one block, for one computation: what a {@link BlockRule} gives the structured
 * methods about a block class of its own.
 *
 * <p>A rule knows only its block's derivatives; the quantity (the Hessian diagonal, the generalized
 * Gauss-Newton diagonal, per-sample diagonals) is computed from them by the library. The block must
 * keep samples independent: sample {@code n} of the output depends on sample {@code n} of the input
 * only. Rows handed to the products come as {@code k} rows per sample, sample 0's first: rows
 * {@code n k .. n k + k - 1} belong to sample {@code n}.
 *
 * <p>A new object is made for every computation (see {@link BlockRule#derivatives}), so it may keep
 * what {@link #forward} computed; calls within one computation come from one thread.
 */
public interface BlockDerivatives {

    /**
     * Runs the block forward and keeps what the products need.
     *
     * @param parameterStore the store to run the block with
     * @param input the block's input, {@code (N, inputFeatures...)}
     * @param training whether the block runs in training mode
     * @return the block's output, {@code (N, outputFeatures...)}
     */
    NDArray forward(ParameterStore parameterStore, NDArray input, boolean training);

    /**
     * Applies each sample's transposed Jacobian with respect to the input to that sample's rows.
     *
     * @param rows {@code (N k, outputFeatures...)}
     * @param k the number of rows per sample
     * @return {@code (N k, inputFeatures...)} in the same order
     */
    NDArray transposedJacobian(NDArray rows, long k);

    /**
     * Returns the parameters of the block that {@link #parameterProducts} covers, in its order;
     * none by default.
     *
     * @return the parameters
     */
    default List<Parameter> getParameters() {
        return List.of();
    }

    /**
     * Applies each sample's transposed Jacobian with respect to each parameter to that sample's
     * rows: row {@code r} of the result for a parameter {@code p} is {@code J_p(n)^T row_r}.
     *
     * @param rows {@code (N k, outputFeatures...)}
     * @param k the number of rows per sample
     * @return one array per entry of {@link #getParameters()}, {@code (N k, parameterShape...)}
     */
    default NDList parameterProducts(NDArray rows, long k) {
        return new NDList();
    }

    /**
     * Returns whether the block has curvature of its own: a second derivative of its output with
     * respect to its input that is not zero. Linear and piecewise linear blocks have none (the
     * default).
     *
     * @return whether {@link #curvature} is called
     */
    default boolean hasCurvature() {
        return false;
    }

    /**
     * Returns the curvature of the block's own nonlinearity: for each sample, {@code sum_j g_j d^2
     * y_j / dx^2}, which must be a diagonal matrix (as for an elementwise function).
     *
     * @param outputGradient the loss gradient with respect to the output, {@code (N,
     *     outputFeatures...)}
     * @return its diagonal, {@code (N, inputFeatures...)}
     */
    default NDArray curvature(NDArray outputGradient) {
        throw new UnsupportedOperationException("this block has no curvature of its own");
    }
}
