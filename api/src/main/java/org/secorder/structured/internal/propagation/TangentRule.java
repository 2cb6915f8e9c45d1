package org.secorder.structured.internal.propagation;

import ai.djl.ndarray.NDArray;

/**
 * The forward-mode rules of a block, for {@link TangentLayer}: its Jacobian applied to tangents at
 * its input, the tangents of its output with respect to its parameters, and the curvature of its
 * input where it has any.
 *
 * <p>All methods take the samples {@code from .. to - 1} of the batch that the layer last ran
 * forward on.
 */
public interface TangentRule {

    /**
     * What one elementwise pass over an array takes per element (reading, multiplying, writing), in
     * multiplications of a matrix product, for the costs below.
     */
    long ELEMENT_COST = 4;

    /**
     * Returns whether the rule can push tangents for the input of the last forward pass (a pooling
     * whose windows were recognized, say).
     *
     * @return whether {@link #push} applies
     */
    boolean pushes();

    /**
     * Applies the Jacobian with respect to the input to tangents at the input.
     *
     * @param tangents the tangents at the input
     * @param from the first sample
     * @param to one past the last sample
     * @return the tangents at the output
     */
    Tangents push(Tangents tangents, long from, long to);

    /**
     * Returns the multiplications per sample that {@link #push} takes, elementwise passes counted
     * as {@link #ELEMENT_COST} each, and for a block with curvature also the tangents' quadratic
     * forms with it.
     *
     * @param groups the number of groups of the tangents
     * @param count the number of tangents per group
     * @return the multiplications
     */
    long pushCost(long groups, long count);

    /**
     * Returns whether the pushed tangents keep their groups; if not, they are one group.
     *
     * @return whether the map is channel-wise or elementwise
     */
    boolean keepsGroups();

    /**
     * Returns the number of values per sample of the block's output, for the memory the tangents
     * take.
     *
     * @return the per-sample output size
     */
    long outputFeatures();

    /**
     * Returns the multiplications per sample that one column takes through this layer in the
     * backward (column) mode: its parameter products and, if needed, its transposed Jacobian.
     *
     * @param transposing whether the columns at the input are needed
     * @return the multiplications
     */
    long columnCost(boolean transposing);

    /**
     * Returns the tangents of the output with respect to every parameter entry.
     *
     * @param from the first sample
     * @param to one past the last sample
     * @return the tangents, or {@code null} for a block without parameters
     */
    default Tangents parameterTangents(long from, long to) {
        return null;
    }

    /**
     * Returns the number of groups and of tangents per group that {@link #parameterTangents} makes.
     *
     * @return {@code {G, T}}, or {@code null} for a block without parameters
     */
    default long[] parameterTangentShape() {
        return null;
    }

    /**
     * Adds the diagonals of the parameters from the quadratic forms of their tangents.
     *
     * @param squares {@code (N, G, T)} for the tangents of {@link #parameterTangents}
     * @param accumulators where to add the diagonals
     */
    default void addTangentSquares(NDArray squares, Accumulators accumulators) {}

    /**
     * Returns the diagonal curvature at the input, {@code g * phi''(x)} for an activation.
     *
     * @return {@code (N, d)}, or {@code null} where the block adds no curvature
     */
    default NDArray curvatureDiagonal() {
        return null;
    }
}
