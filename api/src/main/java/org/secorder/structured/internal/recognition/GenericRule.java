package org.secorder.structured.internal.recognition;

import ai.djl.nn.Block;
import ai.djl.util.Pair;
import org.secorder.structured.internal.propagation.Layer;
import org.secorder.structured.internal.propagation.LeafLayer;
import org.secorder.structured.internal.rules.DerivativesLayer;
import org.secorder.structured.internal.rules.GenericDerivatives;

/**
 * The fallback for a block that has no rule in the {@link RuleTable}: the block as one leaf whose
 * products come from first-order autograd ({@link GenericDerivatives}). For the Hessian it also
 * takes the block's own curvature by double backward, so {@link Recognition} uses it there only on
 * an engine that differentiates its operators twice.
 */
final class GenericRule {

    private GenericRule() {}

    /**
     * Makes the generic layer of a block, claiming the parameters of the block and of every block
     * inside it.
     *
     * @param block the block
     * @param path its path
     * @param recognition the recognition
     * @param ownCurvature whether the block's own curvature is needed (the Hessian)
     * @return the layer
     */
    static Layer create(Block block, String path, Recognition recognition, boolean ownCurvature) {
        claimAll(block, path, recognition);
        String description = recognition.describe(block, path);
        return new DerivativesLayer(
                description,
                block,
                new GenericDerivatives(
                        description, block, "it has no explicit structured rule", ownCurvature));
    }

    /**
     * Lets a block's explicit layer hand over to the generic rule if it refuses the actual input.
     *
     * @param layer the layer an explicit rule made
     * @param block the block
     * @param ownCurvature whether the block's own curvature is needed (the Hessian)
     * @return the layer, wrapped where it is one block's
     */
    static Layer orFallback(Layer layer, Block block, boolean ownCurvature) {
        return layer instanceof LeafLayer ? new FallbackLayer(layer, block, ownCurvature) : layer;
    }

    static void claimAll(Block block, String path, Recognition recognition) {
        recognition.claim(block, path);
        for (Pair<String, Block> child : block.getChildren()) {
            claimAll(child.getValue(), path + "/" + child.getKey(), recognition);
        }
    }
}
