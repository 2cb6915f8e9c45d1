package org.secorder.structured;

import ai.djl.ndarray.NDArray;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@code ParallelBlock} whose branches all see the same input and whose outputs are summed, as in
 * a residual block.
 *
 * <p>Columns arriving at the output go through every branch, and the columns of the same origin are
 * summed at the input. Curvature columns that arise inside a branch only go down that branch.
 */
final class SumLayer extends Layer {

    private final List<Layer> branches;
    private Propagation propagation;

    /**
     * Creates a sum of branches.
     *
     * @param description the block's path and kind
     * @param branches the branches
     */
    SumLayer(String description, List<Layer> branches) {
        super(description);
        this.branches = List.copyOf(branches);
    }

    /** {@inheritDoc} */
    @Override
    NDArray forward(Propagation computation, NDArray input) {
        remember(computation);
        NDArray sum = null;
        for (Layer branch : branches) {
            NDArray output = branch.forward(computation, input);
            sum = sum == null ? output : sum.add(output);
        }
        return sum;
    }

    /** {@inheritDoc} */
    @Override
    NDArray backward(NDArray gradient, boolean inputNeeded) {
        NDArray sum = null;
        for (Layer branch : branches) {
            if (!inputNeeded && !branch.hasCurvature()) {
                continue;
            }
            NDArray input = branch.backward(gradient, inputNeeded);
            if (inputNeeded) {
                sum = sum == null ? input : sum.add(input);
            }
        }
        return sum;
    }

    /**
     * Sets the propagation of this computation, which decides the chunking before the branches.
     *
     * @param computation the computation
     */
    private void remember(Propagation computation) {
        this.propagation = computation;
    }

    /** {@inheritDoc} */
    @Override
    void propagate(ColumnSet columns, Continuation next) {
        long count = columns.getColumnCount();
        long perColumn = (branches.size() + 2) * columns.getBatchSize() * columnElements();
        long perChunk = propagation.columnsWithinLimit(columns.elementCount(0), perColumn);
        if (perChunk < count && propagation.canSplit()) {
            propagation.forEachChunk(columns, perChunk, chunk -> propagateWhole(chunk, next));
        } else {
            propagateWhole(columns, next);
        }
    }

    private void propagateWhole(ColumnSet columns, Continuation next) {
        boolean needed = next.isNeeded();
        List<ColumnSet> inputs = new ArrayList<>(branches.size());
        Continuation collect =
                new Continuation() {
                    @Override
                    public boolean isNeeded() {
                        return needed;
                    }

                    @Override
                    public void accept(ColumnSet transposed) {
                        inputs.add(transposed);
                    }
                };
        boolean previous = propagation.setSplitting(false);
        try {
            for (Layer branch : branches) {
                if (needed || branch.hasParameters()) {
                    branch.propagate(columns, collect);
                }
            }
        } finally {
            propagation.setSplitting(previous);
        }
        if (needed) {
            ColumnSet sum = inputs.get(0);
            for (int i = 1; i < inputs.size(); i++) {
                sum = sum.plus(inputs.get(i));
            }
            next.accept(sum);
        }
    }

    /** {@inheritDoc} */
    @Override
    void spawn(Continuation below) {
        for (Layer branch : branches) {
            branch.spawn(below);
        }
    }

    /** {@inheritDoc} */
    @Override
    boolean hasParameters() {
        for (Layer branch : branches) {
            if (branch.hasParameters()) {
                return true;
            }
        }
        return false;
    }

    /** {@inheritDoc} */
    @Override
    boolean hasCurvature() {
        for (Layer branch : branches) {
            if (branch.hasCurvature()) {
                return true;
            }
        }
        return false;
    }

    /** {@inheritDoc} */
    @Override
    long columnElements() {
        long max = 0;
        for (Layer branch : branches) {
            max = Math.max(max, branch.columnElements());
        }
        return max;
    }
}
