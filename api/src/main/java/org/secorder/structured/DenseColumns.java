package org.secorder.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

/** Columns with every value stored: {@code values (N, K, d)} and signs {@code (N, K)} or none. */
final class DenseColumns extends ColumnSet {

    private final NDArray values;
    private final NDArray signs;

    /**
     * Creates a dense set.
     *
     * @param values {@code (N, K, d)}
     * @param signs {@code (N, K)} of {@code +1} and {@code -1}, or {@code null} for all {@code +1}
     * @param featureShape the per-sample feature shape, of size {@code d}
     */
    DenseColumns(NDArray values, NDArray signs, Shape featureShape) {
        super(featureShape, values.getShape().get(0), values.getShape().get(1));
        this.values = values;
        this.signs = signs;
    }

    /**
     * Returns the values.
     *
     * @return {@code (N, K, d)}
     */
    NDArray getValues() {
        return values;
    }

    /**
     * Returns the signs.
     *
     * @return {@code (N, K)}, or {@code null} for all {@code +1}
     */
    NDArray getSigns() {
        return signs;
    }

    /**
     * Returns the values with the per-sample features unflattened.
     *
     * @return {@code (N, K, featureShape...)}
     */
    NDArray shapedValues() {
        return values.reshape(
                new Shape(getBatchSize(), getColumnCount()).addAll(getFeatureShape()));
    }

    /**
     * Weights squared per-column quantities by the signs and sums over the columns.
     *
     * @param squares {@code (N, K, ...)}
     * @return {@code (N, ...)}
     */
    NDArray signedColumnSum(NDArray squares) {
        if (signs == null) {
            return squares.sum(new int[] {1});
        }
        NDArray weights = signs;
        for (int i = 2; i < squares.getShape().dimension(); i++) {
            weights = weights.expandDims(i);
        }
        return squares.mul(weights).sum(new int[] {1});
    }

    /** {@inheritDoc} */
    @Override
    NDArray diagonal() {
        return signedColumnSum(values.square());
    }

    /** {@inheritDoc} */
    @Override
    DenseColumns dense() {
        return this;
    }

    /** {@inheritDoc} */
    @Override
    ColumnSet scale(NDArray factor, boolean perSample) {
        NDArray broadcast = perSample ? factor.expandDims(1) : factor;
        return new DenseColumns(values.mul(broadcast), signs, getFeatureShape());
    }

    /** {@inheritDoc} */
    @Override
    ColumnSet map(RowMap map, Shape inputShape) {
        NDArray rows =
                values.reshape(
                        new Shape(getBatchSize() * getColumnCount()).addAll(getFeatureShape()));
        return fromRows(map.apply(rows), inputShape);
    }

    /** {@inheritDoc} */
    @Override
    DenseColumns mapSamples(SampleMap map, Shape inputShape) {
        NDArray rows =
                values.reshape(
                        new Shape(getBatchSize() * getColumnCount()).addAll(getFeatureShape()));
        return fromRows(map.apply(rows, getColumnCount()), inputShape);
    }

    private DenseColumns fromRows(NDArray rows, Shape inputShape) {
        NDArray mapped = rows.reshape(getBatchSize(), getColumnCount(), inputShape.size());
        return new DenseColumns(mapped, signs, inputShape);
    }

    /** {@inheritDoc} */
    @Override
    ColumnSet reshape(Shape shape) {
        return new DenseColumns(values, signs, shape);
    }

    /** {@inheritDoc} */
    @Override
    ColumnSet plus(ColumnSet other) {
        return new DenseColumns(values.add(other.dense().values), signs, getFeatureShape());
    }

    /** {@inheritDoc} */
    @Override
    ColumnSet chunk(long from, long to, NDManager manager) {
        NDIndex index = new NDIndex(":, {}:{}", from, to);
        NDArray part = values.get(index);
        part.attach(manager);
        NDArray partSigns = null;
        if (signs != null) {
            partSigns = signs.get(index);
            partSigns.attach(manager);
        }
        return new DenseColumns(part, partSigns, getFeatureShape());
    }

    /** {@inheritDoc} */
    @Override
    boolean isPerSample() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    long elementCount() {
        return values.size() + (signs == null ? 0 : signs.size());
    }
}
