package org.secorder.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Block;

/** A layer that is one DJL block with rules of its own. */
abstract class LeafLayer extends Layer {

    private final Block block;
    private Propagation propagation;

    /**
     * Creates a leaf layer.
     *
     * @param description the block's path and kind
     * @param block the block
     */
    LeafLayer(String description, Block block) {
        super(description);
        this.block = block;
    }

    final Block getBlock() {
        return block;
    }

    final Propagation getPropagation() {
        return propagation;
    }

    /** {@inheritDoc} */
    @Override
    final NDArray forward(Propagation computation, NDArray input) {
        this.propagation = computation;
        return forwardLeaf(input);
    }

    /**
     * Runs the block itself forward.
     *
     * @param input the input
     * @return the output
     */
    final NDArray runBlock(NDArray input) {
        NDList outputs =
                block.forward(
                        propagation.getParameterStore(),
                        new NDList(input),
                        propagation.isTraining());
        if (outputs.size() != 1) {
            throw new UnsupportedOperationException(
                    getDescription() + " returns " + outputs.size() + " arrays, not one");
        }
        return outputs.head();
    }

    /**
     * Runs the block forward and caches what the rules need.
     *
     * @param input the input
     * @return the output
     */
    abstract NDArray forwardLeaf(NDArray input);

    /**
     * Applies the transposed Jacobian to columns at the output.
     *
     * @param columns the columns at the output
     * @return the columns at the input
     */
    abstract ColumnSet transpose(ColumnSet columns);

    /**
     * Adds the contribution of columns at the output to this block's parameters.
     *
     * @param columns the columns at the output
     */
    void accumulate(ColumnSet columns) {}

    /**
     * Returns the curvature columns at the input, {@code diag(g * phi'')}, from the cached output
     * gradient.
     *
     * @return the columns, or {@code null} if there are none
     */
    ColumnSet residual() {
        return null;
    }

    /**
     * Returns the array elements that propagating a column set through this layer holds at once:
     * the set, what the parameter rules make from it and, if needed, the transposed set.
     *
     * @param columns the columns at the output
     * @param transposing whether the columns at the input are needed
     * @return the element count
     */
    long workElements(ColumnSet columns, boolean transposing) {
        return columns.elementCount() + (transposing ? columns.scaledElements() : 0);
    }

    /** {@inheritDoc} */
    @Override
    final void propagate(ColumnSet columns, Continuation next) {
        boolean transposing = next.isNeeded();
        long work = workElements(columns, transposing);
        long count = columns.getColumnCount();
        long perColumn = (work + count - 1) / count;
        long perChunk = propagation.columnsWithinBudget(perColumn);
        if (perChunk < count && propagation.canSplit()) {
            propagation.forEachChunk(columns, perChunk, chunk -> step(chunk, next));
        } else {
            step(columns, next);
        }
    }

    private void step(ColumnSet columns, Continuation next) {
        boolean transposing = next.isNeeded();
        propagation.observe(workElements(columns, transposing));
        accumulate(columns);
        if (transposing) {
            next.accept(transpose(columns));
        }
    }

    /** {@inheritDoc} */
    @Override
    final void spawn(Continuation below) {
        if (hasCurvature() && below.isNeeded()) {
            propagation.run(this::residual, below);
        }
    }

    /** {@inheritDoc} */
    @Override
    boolean hasParameters() {
        return false;
    }

    /** {@inheritDoc} */
    @Override
    boolean hasCurvature() {
        return false;
    }
}
