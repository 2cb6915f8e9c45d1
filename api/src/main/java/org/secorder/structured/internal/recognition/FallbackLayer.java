package org.secorder.structured.internal.recognition;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Block;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.propagation.Continuation;
import org.secorder.structured.internal.propagation.Layer;
import org.secorder.structured.internal.propagation.Propagation;
import org.secorder.structured.internal.propagation.TangentRule;
import org.secorder.structured.internal.rules.DerivativesLayer;
import org.secorder.structured.internal.rules.GenericDerivatives;

/**
 * A block's explicit layer that hands over to the generic rule when it refuses the block's actual
 * input (a lambda that selects rather than only moves values, a {@code Linear} block on a
 * sequence): some limits show only in the data.
 */
final class FallbackLayer extends Layer {

    private final Layer explicit;
    private final Block block;
    private final boolean ownCurvature;
    private Layer active;

    FallbackLayer(Layer explicit, Block block, boolean ownCurvature) {
        super(explicit.getDescription());
        this.explicit = explicit;
        this.block = block;
        this.ownCurvature = ownCurvature;
        this.active = explicit;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forward(Propagation propagation, NDArray input) {
        if (active != explicit) {
            return active.forward(propagation, input);
        }
        UnsupportedOperationException refusal;
        try {
            return explicit.forward(propagation, input);
        } catch (UnsupportedOperationException e) {
            refusal = e;
        }
        active =
                new DerivativesLayer(
                        getDescription(),
                        block,
                        new GenericDerivatives(
                                getDescription(),
                                block,
                                "its explicit rule refused its input ("
                                        + refusal.getMessage()
                                        + ")",
                                ownCurvature));
        try {
            return active.forward(propagation, input);
        } catch (UnsupportedOperationException e) {
            // the explicit rule's reason is the one to report (an engine that cannot run the
            // block at all, say), with the generic rule's attached
            refusal.addSuppressed(e);
            throw refusal;
        }
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        return active.backward(gradient, inputNeeded);
    }

    /** {@inheritDoc} */
    @Override
    public void propagate(ColumnSet columns, Continuation next) {
        active.propagate(columns, next);
    }

    /** {@inheritDoc} */
    @Override
    public void spawn(Continuation below) {
        active.spawn(below);
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasParameters() {
        return active.hasParameters();
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasCurvature() {
        return active.hasCurvature();
    }

    /** {@inheritDoc} */
    @Override
    public TangentRule tangentRule() {
        return active.tangentRule();
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        return active.columnElements();
    }
}
