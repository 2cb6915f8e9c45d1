package org.secorder.structured.internal.propagation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Block;
import java.util.List;
import java.util.function.Supplier;
import org.secorder.structured.internal.columns.ColumnSet;

/** A layer that is one DJL block with rules of its own. */
public abstract class LeafLayer extends Layer {

    private final Block block;
    private Propagation propagation;

    /**
     * Creates a leaf layer.
     *
     * @param description the block's path and kind
     * @param block the block
     */
    public LeafLayer(String description, Block block) {
        super(description);
        this.block = block;
    }

    /**
     * Returns the block.
     *
     * @return the block
     */
    public final Block getBlock() {
        return block;
    }

    /**
     * Returns the computation this layer serves.
     *
     * @return the propagation
     */
    public final Propagation getPropagation() {
        return propagation;
    }

    /** {@inheritDoc} */
    @Override
    public final NDArray forward(Propagation computation, NDArray input) {
        this.propagation = computation;
        return forwardLeaf(input);
    }

    /**
     * Runs the block itself forward.
     *
     * @param input the input
     * @return the output
     */
    public final NDArray runBlock(NDArray input) {
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
    public abstract NDArray forwardLeaf(NDArray input);

    /**
     * Applies the transposed Jacobian to columns at the output.
     *
     * @param columns the columns at the output
     * @return the columns at the input
     */
    public abstract ColumnSet transpose(ColumnSet columns);

    /**
     * Adds the contribution of columns at the output to this block's parameters.
     *
     * @param columns the columns at the output
     */
    public void accumulate(ColumnSet columns) {}

    /**
     * Returns the curvature columns at the input, {@code diag(g * phi'')}, from the cached output
     * gradient.
     *
     * @return the columns, or {@code null} if there are none
     */
    public ColumnSet residual() {
        return null;
    }

    /**
     * Returns the array elements that propagating a chunk of a column set through this layer holds
     * at once: the chunk, what the parameter rules make from it and, if needed, the transposed
     * chunk. It is affine in the number of columns.
     *
     * @param columns the columns at the output
     * @param count the number of columns of the chunk
     * @param transposing whether the columns at the input are needed
     * @return the element count
     */
    public long workElements(ColumnSet columns, long count, boolean transposing) {
        return columns.elementCount(count) + (transposing ? columns.scaledElements(count) : 0);
    }

    /** {@inheritDoc} */
    @Override
    public final void propagate(ColumnSet columns, Continuation next) {
        boolean transposing = next.isNeeded();
        long count = columns.getColumnCount();
        long fixed = workElements(columns, 0, transposing);
        long perColumn = Math.max(1, workElements(columns, 1, transposing) - fixed);
        long perChunk = propagation.columnsWithinLimit(fixed, perColumn);
        if (perChunk < count && propagation.canSplit()) {
            propagation.forEachChunk(columns, perChunk, chunk -> step(chunk, next));
        } else {
            step(columns, next);
        }
    }

    private void step(ColumnSet columns, Continuation next) {
        boolean transposing = next.isNeeded();
        long count = columns.getColumnCount();
        propagation.observe(workElements(columns, count, transposing));
        accumulate(columns);
        if (transposing) {
            next.accept(transpose(columns));
        }
    }

    /**
     * Returns the curvature columns at the input as parts that are propagated one after another,
     * each in a scope of its own: the matrix is the sum of the parts (a cheap diagonal part and a
     * few dense columns, say). By default the one part {@link #residual()}.
     *
     * @return the parts
     */
    public List<Supplier<ColumnSet>> residuals() {
        return List.of(this::residual);
    }

    /**
     * Adds the block's own curvature with respect to its own parameters, {@code sum_j g_j d^2 y_j /
     * d theta^2}, to their diagonals, from the cached output gradient; nothing by default (the
     * parameters enter linearly). Called for the Hessian only, in a scope that frees the arrays it
     * makes.
     */
    public void accumulateOwnCurvature() {}

    /** {@inheritDoc} */
    @Override
    public final void spawn(Continuation below) {
        if (!hasCurvature()) {
            return;
        }
        propagation.run(
                () -> {
                    accumulateOwnCurvature();
                    return null;
                },
                Continuation.NONE);
        if (below.isNeeded()) {
            for (Supplier<ColumnSet> part : residuals()) {
                propagation.run(part, below);
            }
        }
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasParameters() {
        return false;
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasCurvature() {
        return false;
    }
}
