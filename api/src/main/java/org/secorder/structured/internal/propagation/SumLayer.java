package org.secorder.structured.internal.propagation;

import ai.djl.ndarray.NDArray;
import java.util.ArrayList;
import java.util.List;
import org.secorder.structured.internal.columns.ColumnSet;

/**
 * A {@code ParallelBlock} whose branches all see the same input and whose outputs are summed, as in
 * a residual block.
 *
 * <p>Columns arriving at the output go through every branch, and the columns of the same origin are
 * summed at the input. Curvature columns that arise inside a branch only go down that branch.
 */
public class SumLayer extends Layer {

    private final List<Layer> branches;
    private Propagation propagation;

    /**
     * Creates a sum of branches.
     *
     * @param description the block's path and kind
     * @param branches the branches
     */
    public SumLayer(String description, List<Layer> branches) {
        super(description);
        this.branches = List.copyOf(branches);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forward(Propagation computation, NDArray input) {
        remember(computation);
        List<NDArray> outputs = new ArrayList<>(branches.size());
        for (Layer branch : branches) {
            outputs.add(branch.forward(computation, input));
        }
        return combine(outputs);
    }

    /**
     * Combines the outputs of the branches: their sum.
     *
     * @param outputs the outputs, one per branch
     * @return the block's output
     */
    protected NDArray combine(List<NDArray> outputs) {
        NDArray sum = outputs.get(0);
        for (int i = 1; i < outputs.size(); i++) {
            sum = sum.add(outputs.get(i));
        }
        return sum;
    }

    /**
     * Returns the part of the gradient at the output that reaches a branch's output.
     *
     * @param branch the branch's index
     * @param gradient the gradient at the block's output
     * @return the gradient at the branch's output
     */
    protected NDArray branchGradient(int branch, NDArray gradient) {
        return gradient;
    }

    /**
     * Returns the part of the columns at the output that reaches a branch's output.
     *
     * @param branch the branch's index
     * @param columns the columns at the block's output
     * @return the columns at the branch's output
     */
    protected ColumnSet branchColumns(int branch, ColumnSet columns) {
        return columns;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        NDArray sum = null;
        for (int i = 0; i < branches.size(); i++) {
            Layer branch = branches.get(i);
            if (!inputNeeded && !branch.hasCurvature()) {
                continue;
            }
            NDArray input = branch.backward(branchGradient(i, gradient), inputNeeded);
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
    public void propagate(ColumnSet columns, Continuation next) {
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
            for (int i = 0; i < branches.size(); i++) {
                Layer branch = branches.get(i);
                if (needed || branch.hasParameters()) {
                    branch.propagate(branchColumns(i, columns), collect);
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
    public void spawn(Continuation below) {
        for (Layer branch : branches) {
            branch.spawn(below);
        }
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasParameters() {
        for (Layer branch : branches) {
            if (branch.hasParameters()) {
                return true;
            }
        }
        return false;
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasCurvature() {
        for (Layer branch : branches) {
            if (branch.hasCurvature()) {
                return true;
            }
        }
        return false;
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        long max = 0;
        for (Layer branch : branches) {
            max = Math.max(max, branch.columnElements());
        }
        return max;
    }
}
