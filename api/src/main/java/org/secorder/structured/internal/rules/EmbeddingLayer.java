package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Embedding;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DenseColumns;
import org.secorder.structured.internal.propagation.Accumulators;
import org.secorder.structured.internal.propagation.LeafLayer;
import org.secorder.structured.internal.propagation.Propagation;

/**
 * An {@link Embedding} (such as {@code TrainableWordEmbedding}): row {@code i_t} of the table for
 * each index {@code i_t} of a sample, {@code y = O W} with {@code O} the one-hot rows of the
 * indices.
 *
 * <p>Its input is indices, which have no derivative, so it must be the first block that the columns
 * reach. The table sees {@code O^T v} for a column {@code v}: the rows of {@code v} summed into the
 * rows of their indices, so that an index that occurs twice in a sample is counted as one parameter
 * row.
 */
public final class EmbeddingLayer extends LeafLayer {

    private final Parameter table;
    private NDArray scatter;
    private long positions;
    private long rows;
    private long width;

    /**
     * Creates the layer of an embedding block.
     *
     * @param description the block's path and kind
     * @param block the block
     */
    public EmbeddingLayer(String description, Embedding<?> block) {
        super(description, block);
        table = block.getParameters().get("embedding");
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forwardLeaf(NDArray input) {
        Propagation propagation = getPropagation();
        NDArray weight = table.getArray();
        rows = weight.getShape().get(0);
        width = weight.getShape().get(1);
        long batch = input.getShape().get(0);
        positions = input.getShape().size() / batch;
        NDArray output = runBlock(input);
        NDArray oneHot =
                input.reshape(batch, positions)
                        .toType(DataType.INT64, false)
                        .oneHot(Math.toIntExact(rows), weight.getDataType());
        Outputs.check(
                this,
                output.reshape(batch, positions, width),
                oneHot.matMul(weight),
                "the rows of its table at the indices");
        scatter = propagation.keep(oneHot.transpose(0, 2, 1).expandDims(1));
        return output;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        if (inputNeeded) {
            throw notFirst();
        }
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet transpose(ColumnSet columns) {
        throw notFirst();
    }

    private UnsupportedOperationException notFirst() {
        return new UnsupportedOperationException(
                getDescription()
                        + " takes indices, which have no derivative: it must come first, with no"
                        + " parameters or curvature below it");
    }

    /** {@inheritDoc} */
    @Override
    public void accumulate(ColumnSet columns) {
        DenseColumns dense = columns.dense();
        long batch = dense.getBatchSize();
        long count = dense.getColumnCount();
        NDArray values = dense.getValues().reshape(batch, count, positions, width);
        NDArray products = scatter.repeat(1, count).matMul(values);
        NDArray squares = dense.signedColumnSum(products.square());
        Accumulators accumulators = getPropagation().getAccumulators();
        accumulators.addPerSample(table, squares);
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasParameters() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public long workElements(ColumnSet columns, long count, boolean transposing) {
        return columns.elementCount(count) + columns.getBatchSize() * count * columnElements();
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        return 2 * rows * width + rows * positions + positions * width;
    }
}
