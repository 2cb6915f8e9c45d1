package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.propagation.LeafLayer;
import org.secorder.structured.internal.propagation.TangentRule;
import org.secorder.structured.internal.propagation.Tangents;

/**
 * A block that passes every sample's values on unchanged, possibly in another shape: flatten and
 * reshape blocks, identity blocks and {@code Dropout} in inference mode.
 */
public final class ReshapeLayer extends LeafLayer implements TangentRule {

    private Shape inputShape;
    private Shape outputShape;

    /**
     * Creates the layer of a reshaping block.
     *
     * @param description the block's path and kind
     * @param block the block
     */
    public ReshapeLayer(String description, Block block) {
        super(description, block);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forwardLeaf(NDArray input) {
        inputShape = input.getShape();
        NDArray output = runBlock(input);
        Shape shape = output.getShape();
        outputShape = shape.slice(1);
        if (shape.dimension() == 0
                || shape.get(0) != inputShape.get(0)
                || shape.size() != inputShape.size()) {
            throw new UnsupportedOperationException(
                    getDescription()
                            + " maps shape "
                            + inputShape
                            + " to "
                            + shape
                            + "; a reshaping block must keep the batch axis and the number of"
                            + " values per sample");
        }
        return output;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        return inputNeeded ? gradient.reshape(inputShape) : null;
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet transpose(ColumnSet columns) {
        return columns.reshape(inputShape.slice(1));
    }

    /** {@inheritDoc} */
    @Override
    public long workElements(ColumnSet columns, long count, boolean transposing) {
        return columns.elementCount(count);
    }

    /** {@inheritDoc} */
    @Override
    public TangentRule tangentRule() {
        return this;
    }

    /** {@inheritDoc} */
    @Override
    public boolean pushes() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public Tangents push(Tangents tangents, long from, long to) {
        return tangents.reshape(outputShape);
    }

    /** {@inheritDoc} */
    @Override
    public long pushCost(long groups, long count) {
        return 0;
    }

    /** {@inheritDoc} */
    @Override
    public long outputFeatures() {
        return outputShape.size();
    }

    /** {@inheritDoc} */
    @Override
    public boolean keepsGroups() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public long columnCost(boolean transposing) {
        return 0;
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        return inputShape == null ? 0 : inputShape.slice(1).size();
    }
}
