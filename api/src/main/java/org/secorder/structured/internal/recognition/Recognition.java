package org.secorder.structured.internal.recognition;

import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.util.Pair;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import org.secorder.engine.SecondOrderEngines;
import org.secorder.structured.internal.propagation.Layer;
import org.secorder.structured.internal.propagation.SequenceLayer;
import org.secorder.structured.internal.propagation.TangentLayer;

/**
 * Recognizes the blocks of a model through the {@link RuleTable} and builds their layers.
 *
 * <p>It either stops at the first block without a rule, with an {@link
 * UnsupportedOperationException} naming it, or (for {@link #unsupported}) collects every such
 * block.
 */
public final class Recognition {

    /** Why a block without a rule is refused for the Hessian. */
    static final String GENERIC_ONLY =
            "this kind of block has no structured rule (Curvature.GGN covers it through the generic"
                    + " rule, from first-order autograd; the Hessian also needs the block's own"
                    + " curvature, which without an explicit rule takes double backward, and this"
                    + " engine differentiates only some operators twice)";

    private final NDManager manager;
    private final boolean training;
    private final Set<Parameter> seen = Collections.newSetFromMap(new IdentityHashMap<>());
    private final List<String> failures;
    private final boolean ggn;
    private final boolean generic;

    private Recognition(NDManager manager, boolean training, List<String> failures, boolean ggn) {
        this.manager = manager;
        this.training = training;
        this.failures = failures;
        this.ggn = ggn;
        this.generic =
                ggn || SecondOrderEngines.forEngine(manager.getEngine()).differentiatesTwice();
    }

    /**
     * Builds the layers of a model.
     *
     * @param model the model
     * @param manager a manager for probe arrays, closed by the caller
     * @param training whether the model runs in training mode
     * @return the root layer
     * @throws UnsupportedOperationException naming the first block that is not supported
     */
    public static Layer build(Block model, NDManager manager, boolean training) {
        return build(model, manager, training, false);
    }

    /**
     * Builds the layers of a model for a curvature: a block without a rule falls back to the
     * generic rule ({@link GenericRule}) for the generalized Gauss-Newton matrix, and for the
     * Hessian on an engine that differentiates its operators twice.
     *
     * @param model the model
     * @param manager a manager for probe arrays, closed by the caller
     * @param training whether the model runs in training mode
     * @param ggn whether the curvature is the generalized Gauss-Newton matrix
     * @return the root layer
     * @throws UnsupportedOperationException naming the first block that is not supported
     */
    public static Layer build(Block model, NDManager manager, boolean training, boolean ggn) {
        Layer root = new Recognition(manager, training, null, ggn).create(model, "model");
        return ggn ? root : withTangents(root);
    }

    /**
     * Wraps the leading layers of a sequential model in a {@link TangentLayer} where they have
     * forward-mode rules, parameters and activation curvature.
     */
    private static Layer withTangents(Layer root) {
        if (!(root instanceof SequenceLayer)) {
            return root;
        }
        List<Layer> children = ((SequenceLayer) root).getChildren();
        int leading = TangentLayer.leadingLayers(children);
        if (leading == 0) {
            return root;
        }
        List<Layer> layers = new ArrayList<>();
        layers.add(
                new TangentLayer(
                        root.getDescription() + " (first " + leading + " blocks)",
                        children.subList(0, leading)));
        layers.addAll(children.subList(leading, children.size()));
        return new SequenceLayer(root.getDescription(), layers);
    }

    /**
     * Returns every block of a model that has no rule, with the reason; the children of such a
     * block are not looked at.
     *
     * @param model the model
     * @param manager a manager for probe arrays, closed by the caller
     * @param training whether the model runs in training mode
     * @return one message per unsupported block, in the order of the model; empty if none
     */
    public static List<String> unsupported(Block model, NDManager manager, boolean training) {
        return unsupported(model, manager, training, false);
    }

    /**
     * Returns every block of a model that is not supported for a curvature, with the reason: blocks
     * without a rule are covered by the generic rule for the generalized Gauss-Newton matrix, and
     * for the Hessian on an engine that differentiates its operators twice.
     *
     * @param model the model
     * @param manager a manager for probe arrays, closed by the caller
     * @param training whether the model runs in training mode
     * @param ggn whether the curvature is the generalized Gauss-Newton matrix
     * @return one message per unsupported block, in the order of the model; empty if none
     */
    public static List<String> unsupported(
            Block model, NDManager manager, boolean training, boolean ggn) {
        List<String> failures = new ArrayList<>();
        new Recognition(manager, training, failures, ggn).create(model, "model");
        return failures;
    }

    /**
     * Returns the manager for probe arrays.
     *
     * @return the manager
     */
    public NDManager getManager() {
        return manager;
    }

    /**
     * Returns whether blocks without a rule fall back to the generic rule: for the generalized
     * Gauss-Newton curvature, and for the Hessian on an engine that differentiates twice.
     *
     * @return whether the generic rule is allowed
     */
    boolean isGeneric() {
        return generic;
    }

    /**
     * Returns whether the curvature is the Hessian, so that a block's own curvature is needed.
     *
     * @return whether blocks must give their own curvature
     */
    boolean needsOwnCurvature() {
        return !ggn;
    }

    /**
     * Returns whether the model runs in training mode.
     *
     * @return the mode
     */
    public boolean isTraining() {
        return training;
    }

    /**
     * Makes the layer of a block from its rule.
     *
     * @param block the block
     * @param path its path
     * @return the layer, or {@code null} when collecting failures and this block failed
     */
    public Layer create(Block block, String path) {
        RuleTable.Entry entry = RuleTable.find(block.getClass());
        int before = failures == null ? 0 : failures.size();
        try {
            if (entry == null && generic) {
                return GenericRule.create(block, path, this, needsOwnCurvature());
            }
            if (entry == null) {
                throw unsupported(block, path, GENERIC_ONLY);
            }
            Layer layer = entry.getRule().create(block, path, this);
            return generic ? GenericRule.orFallback(layer, block, needsOwnCurvature()) : layer;
        } catch (UnsupportedOperationException e) {
            if (failures == null) {
                throw e;
            }
            if (failures.size() == before) {
                failures.add(e.getMessage());
            }
            return null;
        }
    }

    /**
     * Returns the path and kind of a block, for messages.
     *
     * @param block the block
     * @param path its path
     * @return the description
     */
    public String describe(Block block, String path) {
        return path + " (" + block.getClass().getSimpleName() + ")";
    }

    /**
     * Makes the layers of a block's children.
     *
     * @param block the block
     * @param path its path
     * @return the layers, in order
     * @throws UnsupportedOperationException if a child is not supported
     */
    public List<Layer> children(Block block, String path) {
        List<Layer> layers = new ArrayList<>();
        boolean failed = false;
        for (Pair<String, Block> child : block.getChildren()) {
            Layer layer = create(child.getValue(), path + "/" + child.getKey());
            failed |= layer == null;
            layers.add(layer);
        }
        if (failed) {
            // only when collecting: the failure of the child is recorded already
            throw new UnsupportedOperationException("a child is not supported");
        }
        return layers;
    }

    /**
     * Claims the direct parameters of a block, refusing parameters shared with another block.
     *
     * @param block the block
     * @param path its path
     * @param <B> the block's type
     * @return the block
     */
    public <B extends Block> B claim(B block, String path) {
        for (Pair<String, Parameter> entry : block.getDirectParameters()) {
            if (!seen.add(entry.getValue())) {
                throw unsupported(
                        block,
                        path,
                        "its parameter '"
                                + entry.getKey()
                                + "' is shared with another block, whose cross terms the"
                                + " structured method does not compute");
            }
        }
        return block;
    }

    /**
     * Refuses training mode for a block.
     *
     * @param block the block
     * @param path its path
     * @param reason why training mode is not supported
     */
    public void requireInference(Block block, String path, String reason) {
        if (training) {
            throw unsupported(
                    block, path, "it " + reason + " in training mode; use inference mode");
        }
    }

    /**
     * Returns the exception for an unsupported block.
     *
     * @param block the block
     * @param path its path
     * @param reason why
     * @return the exception
     */
    public UnsupportedOperationException unsupported(Block block, String path, String reason) {
        return unsupported(describe(block, path), reason);
    }

    /**
     * Returns the exception for an unsupported block.
     *
     * @param description the block's path and kind
     * @param reason why
     * @return the exception
     */
    public static UnsupportedOperationException unsupported(String description, String reason) {
        return new UnsupportedOperationException(
                "The structured Hessian diagonal does not support the block "
                        + description
                        + ": "
                        + reason
                        + ". Supported blocks: "
                        + RuleTable.supportedText()
                        + ". Register a rule with BlockRules.register, or use Method.AUTOGRAD or"
                        + " Method.FINITE_DIFFERENCE.");
    }

    /**
     * The rule of a {@code SequentialBlock}.
     *
     * @param block the block
     * @param path its path
     * @param recognition the recognition
     * @return the layer
     */
    static Layer sequence(Block block, String path, Recognition recognition) {
        if (((SequentialBlock) block).isReturnIntermediate()) {
            throw recognition.unsupported(block, path, "it returns its intermediate outputs");
        }
        return new SequenceLayer(
                recognition.describe(block, path), recognition.children(block, path));
    }
}
