package org.secorder.structured.internal.recognition;

import ai.djl.nn.Block;
import org.secorder.structured.internal.propagation.Layer;

/** An entry of the rule table: makes the layer of a block for one computation. */
@FunctionalInterface
public interface Rule {

    /**
     * Makes the layer of a block.
     *
     * @param block the block
     * @param path the block's path in the model, for messages
     * @param recognition the recognition of the whole model, for the block's children
     * @return the layer
     * @throws UnsupportedOperationException naming the block and the reason if it cannot be handled
     */
    Layer create(Block block, String path, Recognition recognition);
}
