package org.secorder.structured.internal.columns;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

/**
 * A signed set of factor columns for every sample: {@code H_n = sum_c sign[n, c] v[n, c] v[n,
 * c]^T}, where each column {@code v[n, c]} lives in the per-sample feature space of one block's
 * output (or input).
 *
 * <p>Columns are kept flat, {@code d = featureShape.size()} values each; the feature shape says how
 * to view them. Every operation returns a new set and leaves this one as it is.
 */
public abstract class ColumnSet {

    private final Shape featureShape;
    private final long batchSize;
    private final long columnCount;

    protected ColumnSet(Shape featureShape, long batchSize, long columnCount) {
        this.featureShape = featureShape;
        this.batchSize = batchSize;
        this.columnCount = columnCount;
    }

    /**
     * Returns the per-sample feature shape of the columns.
     *
     * @return the feature shape
     */
    public final Shape getFeatureShape() {
        return featureShape;
    }

    /**
     * Returns the number of features per column, the product of the feature shape.
     *
     * @return the feature count
     */
    public final long getFeatureCount() {
        return featureShape.size();
    }

    /**
     * Returns the number of samples.
     *
     * @return the batch size
     */
    public final long getBatchSize() {
        return batchSize;
    }

    /**
     * Returns the number of columns per sample.
     *
     * @return the column count
     */
    public final long getColumnCount() {
        return columnCount;
    }

    /**
     * Returns the per-sample diagonal of the represented matrices, {@code sum_c sign v^2}.
     *
     * @return {@code (N, d)}
     */
    public abstract NDArray diagonal();

    /**
     * Returns the same columns with every value materialized.
     *
     * @return the dense set
     */
    public abstract DenseColumns dense();

    /**
     * Multiplies every column elementwise by a factor: the transposed Jacobian of an elementwise
     * block.
     *
     * @param factor {@code (N, d)} for a per-sample factor, {@code (1, d)} for a shared one
     * @param perSample whether the factor depends on the sample
     * @return the scaled set
     */
    public abstract ColumnSet scale(NDArray factor, boolean perSample);

    /**
     * Applies a map shared by all samples to every column.
     *
     * @param map the transposed Jacobian
     * @param inputShape the per-sample feature shape of the result
     * @return the mapped set
     */
    public abstract ColumnSet map(RowMap map, Shape inputShape);

    /**
     * Applies a per-sample map to every column.
     *
     * @param map the transposed Jacobians
     * @param inputShape the per-sample feature shape of the result
     * @return the mapped set
     */
    public ColumnSet mapSamples(SampleMap map, Shape inputShape) {
        return dense().mapSamples(map, inputShape);
    }

    /**
     * Views the columns in another feature shape of the same size.
     *
     * @param shape the new feature shape
     * @return the reshaped set
     */
    public abstract ColumnSet reshape(Shape shape);

    /**
     * Returns the entries {@code from .. to - 1} of every column along one axis of the feature
     * shape: the transposed Jacobian of a concatenation, for one of its parts.
     *
     * @param featureAxis the axis of the feature shape
     * @param from the first entry
     * @param to one past the last entry
     * @return the sliced set
     */
    public ColumnSet slice(int featureAxis, long from, long to) {
        DenseColumns dense = dense();
        NDArray values = dense.shapedValues();
        StringBuilder index = new StringBuilder(":,:,");
        for (int i = 0; i < featureAxis; i++) {
            index.append(":,");
        }
        index.append(from).append(':').append(to);
        NDArray part = values.get(new NDIndex(index.toString()));
        long[] dims = featureShape.getShape().clone();
        dims[featureAxis] = to - from;
        Shape shape = new Shape(dims);
        return new DenseColumns(
                part.reshape(batchSize, columnCount, shape.size()), dense.getSigns(), shape);
    }

    /**
     * Adds the columns of a set of the same origin, column by column: the transposed Jacobian of a
     * sum of branches.
     *
     * @param other a set with the same columns and signs, mapped through another branch
     * @return the sum
     */
    public abstract ColumnSet plus(ColumnSet other);

    /**
     * Returns the columns {@code from .. to - 1}, with their arrays attached to a manager.
     *
     * @param from the first column
     * @param to one past the last column
     * @param manager the manager of the chunk's arrays
     * @return the chunk
     */
    public abstract ColumnSet chunk(long from, long to, NDManager manager);

    /**
     * Returns the number of array elements this set holds.
     *
     * @return the element count
     */
    public final long elementCount() {
        return elementCount(columnCount);
    }

    /**
     * Returns the number of array elements a chunk of this set holds.
     *
     * @param count the number of columns of the chunk
     * @return the element count
     */
    public abstract long elementCount(long count);

    /**
     * Returns whether the columns differ from sample to sample in a way that a map mixing features
     * must see every value: true for dense sets and for factored sets with a per-sample factor.
     *
     * @return whether a mixing map materializes {@code (N, K, d)} values
     */
    public abstract boolean isPerSample();

    /**
     * Returns the number of values of a chunk of the columns when materialized, {@code N k d}.
     *
     * @param count the number of columns {@code k} of the chunk
     * @return the element count of the dense form
     */
    public final long denseElements(long count) {
        return batchSize * count * featureShape.size();
    }

    /**
     * Returns the number of elements an elementwise map of a chunk of this set allocates: only the
     * combined factor where the representation keeps it apart from the columns.
     *
     * @param count the number of columns of the chunk
     * @return {@code N d} and what the representation needs per column
     */
    public long scaledElements(long count) {
        return batchSize * featureShape.size();
    }

    /**
     * Returns the columns as {@link LocalColumns}, where each column starts at one element of a
     * channel-first spatial feature map and stays within a window of it.
     *
     * @return the local form, or {@code null} where the columns have none
     */
    public LocalColumns local() {
        return null;
    }

    /**
     * Returns the window size per spatial axis that {@link #local()} would have, without making it.
     *
     * @return the window sizes, or {@code null} where the columns have no local form
     */
    public long[] localWindow() {
        return null;
    }

    /**
     * Returns the per-sample diagonal of the represented matrices where every column has at most
     * one non-zero entry, so that a block's parameter rule may weight each entry's own product.
     *
     * @return {@code (N, d)}, or {@code null} where a column has several non-zero entries
     */
    public NDArray pointDiagonal() {
        return null;
    }
}
