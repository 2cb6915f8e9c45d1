package org.secorder.structured.internal.propagation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.secorder.structured.internal.columns.ColumnSet;

/**
 * A {@code ParallelBlock} whose branches all see the same input and whose outputs are concatenated
 * along a feature axis, as in GoogLeNet's inception blocks and SqueezeNet's fire modules.
 *
 * <p>The transposed Jacobian hands each branch its slice of the columns (and of the gradient); the
 * columns of the same origin are summed at the input, as for a sum. The axis is found from the
 * shapes of the outputs, and the join's output is checked to be the concatenation along it.
 */
public final class ConcatLayer extends SumLayer {

    private final Function<List<NDList>, NDArray> join;
    private int axis;
    private long[] offsets;

    /**
     * Creates a concatenation of branches.
     *
     * @param description the block's path and kind
     * @param branches the branches
     * @param join the block's join, applied to the branch outputs
     */
    public ConcatLayer(
            String description, List<Layer> branches, Function<List<NDList>, NDArray> join) {
        super(description, branches);
        this.join = join;
    }

    /** {@inheritDoc} */
    @Override
    protected NDArray combine(List<NDArray> outputs) {
        List<NDList> lists = new ArrayList<>(outputs.size());
        for (NDArray output : outputs) {
            lists.add(new NDList(output));
        }
        NDArray output = join.apply(lists);
        axis = axis(output.getShape(), outputs);
        offsets = new long[outputs.size() + 1];
        for (int i = 0; i < outputs.size(); i++) {
            offsets[i + 1] = offsets[i] + outputs.get(i).getShape().get(axis);
        }
        NDArray expected = NDArrays.concat(new NDList(outputs), axis);
        double error = output.sub(expected).abs().max().toType(DataType.FLOAT64, false).getDouble();
        if (!(error == 0)) {
            throw new UnsupportedOperationException(
                    getDescription()
                            + " does not concatenate the outputs of its branches along axis "
                            + axis);
        }
        return output;
    }

    private int axis(Shape output, List<NDArray> outputs) {
        for (int a = 1; a < output.dimension(); a++) {
            long total = 0;
            boolean others = true;
            for (NDArray branch : outputs) {
                Shape shape = branch.getShape();
                if (shape.dimension() != output.dimension()) {
                    others = false;
                    break;
                }
                total += shape.get(a);
                for (int b = 0; b < output.dimension(); b++) {
                    others &= b == a || shape.get(b) == output.get(b);
                }
            }
            if (others && total == output.get(a)) {
                return a;
            }
        }
        throw new UnsupportedOperationException(
                getDescription()
                        + " returns shape "
                        + output
                        + ", not a concatenation of its branches along a feature axis");
    }

    /** {@inheritDoc} */
    @Override
    protected NDArray branchGradient(int branch, NDArray gradient) {
        return Slices.slice(gradient, axis, offsets[branch], offsets[branch + 1]);
    }

    /** {@inheritDoc} */
    @Override
    protected ColumnSet branchColumns(int branch, ColumnSet columns) {
        return columns.slice(axis - 1, offsets[branch], offsets[branch + 1]);
    }
}
