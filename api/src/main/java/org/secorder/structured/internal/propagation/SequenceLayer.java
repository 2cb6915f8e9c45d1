package org.secorder.structured.internal.propagation;

import ai.djl.ndarray.NDArray;
import java.util.List;
import org.secorder.structured.internal.columns.ColumnSet;

/** A {@code SequentialBlock}: children applied one after another. */
public final class SequenceLayer extends Layer {

    private final List<Layer> children;

    /**
     * Creates a sequence.
     *
     * @param description the block's path and kind
     * @param children the children, first applied first
     */
    public SequenceLayer(String description, List<Layer> children) {
        super(description);
        this.children = List.copyOf(children);
    }

    /**
     * Returns the children.
     *
     * @return the children, first applied first
     */
    public List<Layer> getChildren() {
        return children;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forward(Propagation propagation, NDArray input) {
        NDArray current = input;
        for (Layer child : children) {
            current = child.forward(propagation, current);
        }
        return current;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        NDArray current = gradient;
        for (int i = children.size() - 1; i >= 0; i--) {
            boolean needed = inputNeeded || curvatureBelow(i);
            Layer child = children.get(i);
            if (!needed && !child.hasCurvature()) {
                return null;
            }
            current = child.backward(current, needed);
        }
        return current;
    }

    /** {@inheritDoc} */
    @Override
    public void propagate(ColumnSet columns, Continuation next) {
        propagateFrom(children.size() - 1, columns, next);
    }

    private void propagateFrom(int index, ColumnSet columns, Continuation next) {
        if (index < 0) {
            next.accept(columns);
            return;
        }
        children.get(index).propagate(columns, below(index, next));
    }

    private Continuation below(int index, Continuation next) {
        boolean needed = next.isNeeded() || parametersBelow(index);
        return new Continuation() {
            @Override
            public boolean isNeeded() {
                return needed;
            }

            @Override
            public void accept(ColumnSet columns) {
                propagateFrom(index - 1, columns, next);
            }
        };
    }

    /** {@inheritDoc} */
    @Override
    public void spawn(Continuation below) {
        for (int i = 0; i < children.size(); i++) {
            children.get(i).spawn(below(i, below));
        }
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasParameters() {
        return parametersBelow(children.size());
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasCurvature() {
        return curvatureBelow(children.size());
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        long max = 0;
        for (Layer child : children) {
            max = Math.max(max, child.columnElements());
        }
        return max;
    }

    private boolean parametersBelow(int index) {
        for (int i = 0; i < index; i++) {
            if (children.get(i).hasParameters()) {
                return true;
            }
        }
        return false;
    }

    private boolean curvatureBelow(int index) {
        for (int i = 0; i < index; i++) {
            if (children.get(i).hasCurvature()) {
                return true;
            }
        }
        return false;
    }
}
