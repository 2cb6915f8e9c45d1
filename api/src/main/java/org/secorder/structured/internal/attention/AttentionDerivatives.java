package org.secorder.structured.internal.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Parameter;
import ai.djl.nn.transformer.ScaledDotProductAttentionBlock;
import java.util.Map;

/**
 * The derivatives of DJL's {@link ScaledDotProductAttentionBlock} as self-attention: one input
 * {@code (N, T, E)}, no mask, its dropout the identity (inference mode, or a rate of zero). The
 * equations and their backpropagation are {@link SelfAttention}'s.
 */
public final class AttentionDerivatives extends TokenDerivatives {

    private final SelfAttention attention;

    /**
     * Creates the derivatives of an attention block for one computation.
     *
     * @param description the block's path and kind, for messages
     * @param block the block
     * @param ownCurvature whether the block's own curvature is needed (the Hessian)
     */
    public AttentionDerivatives(
            String description, ScaledDotProductAttentionBlock block, boolean ownCurvature) {
        super(description, block, ownCurvature);
        attention = new SelfAttention(this, block);
    }

    /** {@inheritDoc} */
    @Override
    NDArray compute(Values values, NDArray x) {
        return attention.forward(values, x);
    }

    /** {@inheritDoc} */
    @Override
    NDArray backward(NDArray rows, Map<Parameter, NDArray> products, boolean inputNeeded) {
        return attention.backward(rows, products, inputNeeded);
    }
}
