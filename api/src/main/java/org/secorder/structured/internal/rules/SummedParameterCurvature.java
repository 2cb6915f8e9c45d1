package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;

/**
 * Derivatives that give the curvature of a block's output with respect to its own parameters summed
 * over the batch at a fraction of the cost of the per-sample diagonals: one double backward of the
 * whole batch instead of one per sample. {@link DerivativesLayer} asks for the sum where no
 * per-sample diagonal is wanted.
 */
public interface SummedParameterCurvature {

    /**
     * Returns {@code sum_n} of {@link org.secorder.structured.BlockDerivatives#parameterCurvature}:
     * for each parameter the diagonal of {@code sum_n sum_j g_nj d^2 y_nj / d theta^2}.
     *
     * @param outputGradient the loss gradient with respect to the output, {@code (N,
     *     outputFeatures...)}
     * @return an empty list, or one array per parameter, shaped like it
     */
    NDList summedParameterCurvature(NDArray outputGradient);
}
