package org.secorder.structured.internal.columns;

import ai.djl.ndarray.NDArray;

/**
 * A linear map that depends on the sample, applied to {@code k} rows of every sample: the
 * transposed Jacobian of a block such as max pooling.
 */
public interface SampleMap {

    /**
     * Applies each sample's map to that sample's rows.
     *
     * @param rows {@code (N * k, outputFeatures...)}, the {@code k} rows of sample 0 first
     * @param k the number of rows per sample
     * @return {@code (N * k, inputFeatures...)} in the same order
     */
    NDArray apply(NDArray rows, long k);
}
