package org.secorder.structured.internal.columns;

import ai.djl.ndarray.NDArray;

/**
 * The transposed Jacobian of a block that reads its output from windows of its input, as a map of
 * patches: output position {@code o} along a spatial axis depends on the input positions {@code o *
 * stride - padding .. o * stride - padding + extent - 1} only. Convolutions and non-overlapping
 * pooling offer it, so that {@link LocalColumns} stay as small as their receptive fields.
 */
public interface LocalMap {

    /**
     * Returns the step between the windows of neighbouring output positions, per spatial axis.
     *
     * @return the strides
     */
    long[] getLocalStride();

    /**
     * Returns the offset of the first window before the input's first position, per spatial axis.
     *
     * @return the paddings
     */
    long[] getLocalPadding();

    /**
     * Returns the size of the window one output position reads, per spatial axis.
     *
     * @return the extents
     */
    long[] getLocalExtent();

    /**
     * Maps patches at the output to patches at the input: a patch of size {@code R} (per axis) that
     * starts at output position {@code o} becomes one of size {@code (R - 1) * stride + extent}
     * that starts at input position {@code o * stride - padding}. Input positions outside the input
     * are included; the factor of {@link #getLocalFactor()} (or the columns) clears them.
     *
     * @param patches {@code (rows, outputChannels, R...)}
     * @return {@code (rows, inputChannels, R'...)}
     */
    NDArray applyToPatches(NDArray patches);

    /**
     * Returns a map multiplied into the patches at the input after {@link #applyToPatches}, such as
     * the selection of max pooling, or {@code null} for none.
     *
     * @return {@code (N or 1, inputChannels or 1, inputSpatial...)}, or {@code null}
     */
    NDArray getLocalFactor();

    /**
     * Returns whether a pending elementwise factor at the output can move to the input as a factor
     * of the same kind: true where the map repeats every output element over its window.
     *
     * @return whether {@link #mapFactor(NDArray)} is available
     */
    boolean carriesFactor();

    /**
     * Moves a pending elementwise factor at the output to the input, times the block's own factor.
     *
     * @param factor {@code (N or 1, C or 1, outputSpatial...)}, or {@code null} for ones
     * @return {@code (N or 1, C or 1, inputSpatial...)}
     */
    NDArray mapFactor(NDArray factor);
}
