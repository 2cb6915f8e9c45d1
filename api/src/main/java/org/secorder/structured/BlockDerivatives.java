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
     * respect to its input, or with respect to its own parameters, that is not zero. Linear and
     * piecewise linear blocks have none (the default).
     *
     * <p>When it is {@code true}, the Hessian (not the generalized Gauss-Newton matrix, which
     * leaves out every block's own curvature) calls {@link #curvature} or {@link
     * #curvatureColumns}, as {@link #hasDiagonalCurvature()} says, and {@link #parameterCurvature}.
     *
     * @return whether the block's own curvature is asked for
     */
    default boolean hasCurvature() {
        return false;
    }

    /**
     * Returns whether the block's own curvature with respect to its input is a diagonal matrix for
     * every sample (as for an elementwise function): {@code true} (the default) makes the library
     * call {@link #curvature}, {@code false} makes it call {@link #curvatureColumns}. Only asked
     * when {@link #hasCurvature()} is {@code true}.
     *
     * @return whether the input curvature is diagonal
     */
    default boolean hasDiagonalCurvature() {
        return true;
    }

    /**
     * Returns the curvature of the block's own nonlinearity with respect to its input: for each
     * sample, {@code sum_j g_j d^2 y_j / dx^2}, which must be a diagonal matrix (as for an
     * elementwise function). Called when {@link #hasCurvature()} and {@link
     * #hasDiagonalCurvature()} are {@code true}.
     *
     * @param outputGradient the loss gradient with respect to the output, {@code (N,
     *     outputFeatures...)}
     * @return its diagonal, {@code (N, inputFeatures...)}
     */
    default NDArray curvature(NDArray outputGradient) {
        throw new UnsupportedOperationException("this block has no curvature of its own");
    }

    /**
     * Returns the curvature of the block's own nonlinearity with respect to its input, any
     * symmetric matrix per sample, as signed factor columns: for each sample {@code n}, {@code
     * sum_j g_j d^2 y_j / dx^2 = sum_c signs[n, c] v[n, c] v[n, c]^T}. Called when {@link
     * #hasCurvature()} is {@code true} and {@link #hasDiagonalCurvature()} is {@code false}.
     *
     * <p>A symmetric matrix {@code A} of rank {@code r} takes {@code r} columns, for instance its
     * eigenvectors scaled by the square roots of the absolute eigenvalues, with their signs; a term
     * {@code a b^T + b a^T} takes two, {@code (a + b) / sqrt 2} with sign {@code +1} and {@code (a
     * - b) / sqrt 2} with sign {@code -1}. Every column is carried through the blocks below, so the
     * cost grows with {@code K}.
     *
     * @param outputGradient the loss gradient with respect to the output, {@code (N,
     *     outputFeatures...)}
     * @return two arrays: the columns {@code v}, {@code (N, K, inputFeatures...)}, and their signs,
     *     {@code (N, K)}, each {@code +1} or {@code -1} (or {@code 0} for a column that is zero),
     *     in the data type of the columns
     */
    default NDList curvatureColumns(NDArray outputGradient) {
        throw new UnsupportedOperationException(
                "this block declares no non-diagonal curvature of its own: override"
                        + " curvatureColumns where hasDiagonalCurvature() is false");
    }

    /**
     * Returns the curvature of the block's output with respect to its own parameters: for each
     * entry of {@link #getParameters()} and each sample, the diagonal of {@code sum_j g_j d^2 y_j /
     * d theta^2}, the block's own second derivative with respect to that parameter weighted by the
     * loss gradient. The library adds it to the parameters' Hessian diagonals (per sample where
     * asked); the generalized Gauss-Newton matrix leaves it out. Called when {@link
     * #hasCurvature()} is {@code true}.
     *
     * <p>Parameters that enter the output linearly (the weight and bias of an affine map, the
     * {@code gamma} and {@code beta} of a normalization) have none: return an empty list (the
     * default) when no parameter has any.
     *
     * @param outputGradient the loss gradient with respect to the output, {@code (N,
     *     outputFeatures...)}
     * @return an empty list, or one array per entry of {@link #getParameters()}, in its order,
     *     {@code (N, parameterShape...)}
     */
    default NDList parameterCurvature(NDArray outputGradient) {
        return new NDList();
    }
}
