package org.secorder.structured;

import ai.djl.nn.Block;

/**
 * The structured rule of a block class: makes the {@link BlockDerivatives} of one block for one
 * computation. Register it with {@link BlockRules#register}.
 *
 * @param <B> the block class
 */
@FunctionalInterface
public interface BlockRule<B extends Block> {

    /**
     * Returns the derivatives of a block for one computation.
     *
     * @param block the block
     * @return a new object for this computation
     * @throws UnsupportedOperationException if this block is not one the rule can handle (say, a
     *     setting it does not support); the message says why
     */
    BlockDerivatives derivatives(B block);
}
