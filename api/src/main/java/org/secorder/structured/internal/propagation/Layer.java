package org.secorder.structured.internal.propagation;

import ai.djl.ndarray.NDArray;
import org.secorder.structured.internal.columns.ColumnSet;

/**
 * One node of the network as the structured method sees it: a block with explicit rules for its
 * forward pass, its transposed Jacobian and the diagonals of its parameters.
 *
 * <p>A layer object serves one computation: {@link #forward(Propagation, NDArray)} caches what the
 * later rules need.
 */
public abstract class Layer {

    private final String description;

    /**
     * Creates a layer.
     *
     * @param description the block's path and kind, for messages
     */
    public Layer(String description) {
        this.description = description;
    }

    /**
     * Returns the block's path and kind.
     *
     * @return the description
     */
    public final String getDescription() {
        return description;
    }

    /**
     * Runs the block forward and caches what the rules need.
     *
     * @param propagation the computation
     * @param input the block's input
     * @return the block's output
     */
    public abstract NDArray forward(Propagation propagation, NDArray input);

    /**
     * Propagates the loss gradient from the output to the input, keeping the output gradient where
     * the curvature of an activation needs it.
     *
     * @param gradient the gradient with respect to the output
     * @param inputNeeded whether the gradient with respect to the input is needed
     * @return the gradient with respect to the input, or {@code null} if not needed
     */
    public abstract NDArray backward(NDArray gradient, boolean inputNeeded);

    /**
     * Adds the contribution of columns at the output to the parameters of this layer and the layers
     * inside it, and hands the transposed columns on.
     *
     * @param columns the columns at the output
     * @param next what to do with the columns at the input
     */
    public abstract void propagate(ColumnSet columns, Continuation next);

    /**
     * Creates the curvature columns of the activations in this layer and propagates each set from
     * where it arises.
     *
     * @param below what to do with columns at this layer's input
     */
    public abstract void spawn(Continuation below);

    /**
     * Returns whether this layer or one inside it has parameters.
     *
     * @return whether columns entering it contribute to a diagonal
     */
    public abstract boolean hasParameters();

    /**
     * Returns whether this layer or one inside it has curvature of its own, a non-zero second
     * derivative with respect to its input.
     *
     * @return whether curvature columns arise inside
     */
    public abstract boolean hasCurvature();

    /**
     * Returns the most array elements that one column of one sample needs in any rule of this
     * layer, for the chunk size.
     *
     * @return the element count
     */
    public abstract long columnElements();

    /**
     * Returns the forward-mode rules of this layer's block, for {@link TangentLayer}.
     *
     * @return the rules, or {@code null} where the block has none
     */
    public TangentRule tangentRule() {
        return null;
    }
}
