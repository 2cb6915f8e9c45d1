package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Prelu;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DenseColumns;
import org.secorder.structured.internal.propagation.Accumulators;
import org.secorder.structured.internal.propagation.LeafLayer;
import org.secorder.structured.internal.propagation.Propagation;

/**
 * {@link Prelu}: {@code y = x} for positive {@code x}, {@code alpha x} otherwise, with a learned
 * scalar {@code alpha}.
 *
 * <p>Piecewise linear in {@code x} and linear in {@code alpha}, it has no curvature of its own for
 * a diagonal. Its transposed Jacobian scales by the slope; {@code alpha} sees {@code sum_i v_i x_i
 * [x_i <= 0]} for a column {@code v}.
 */
public final class PreluLayer extends LeafLayer {

    private static final double RELATIVE_TOLERANCE = 1e-5;

    private final Parameter alpha;
    private Shape inputShape;
    private NDArray slope;
    private NDArray negativePart;

    /**
     * Creates the layer of a Prelu block.
     *
     * @param description the block's path and kind
     * @param block the block
     */
    public PreluLayer(String description, Prelu block) {
        super(description, block);
        alpha = block.getParameters().get("alpha");
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forwardLeaf(NDArray x) {
        Propagation propagation = getPropagation();
        inputShape = x.getShape();
        long batch = inputShape.get(0);
        NDArray output = runBlock(x);
        NDArray negative = x.lte(0).toType(x.getDataType(), false);
        NDArray slopes = negative.mul(alpha.getArray().sub(1)).add(1);
        NDArray expected = x.mul(slopes);
        double error = output.sub(expected).abs().max().toType(DataType.FLOAT64, false).getDouble();
        double size = expected.abs().max().toType(DataType.FLOAT64, false).getDouble();
        if (!(error <= RELATIVE_TOLERANCE * Math.max(1, size))) {
            throw new UnsupportedOperationException(
                    getDescription() + " does not compute x for x > 0 and alpha x otherwise");
        }
        long features = inputShape.size() / batch;
        slope = propagation.keep(slopes.reshape(batch, features));
        negativePart = propagation.keep(x.mul(negative).reshape(batch, 1, features));
        return output;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        return inputNeeded ? gradient.mul(slope.reshape(inputShape)) : null;
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet transpose(ColumnSet columns) {
        return columns.scale(slope, true);
    }

    /** {@inheritDoc} */
    @Override
    public void accumulate(ColumnSet columns) {
        DenseColumns dense = columns.dense();
        NDArray products = dense.getValues().mul(negativePart).sum(new int[] {2});
        NDArray squares = dense.signedColumnSum(products.square());
        Accumulators accumulators = getPropagation().getAccumulators();
        accumulators.add(alpha, accumulators.isPerSample() ? squares : squares.sum());
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasParameters() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public long workElements(ColumnSet columns, long count, boolean transposing) {
        return super.workElements(columns, count, transposing) + 2 * columns.denseElements(count);
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        return inputShape == null ? 0 : 4 * inputShape.slice(1).size();
    }
}
