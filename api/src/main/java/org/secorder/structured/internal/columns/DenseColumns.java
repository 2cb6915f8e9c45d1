package org.secorder.structured.internal.columns;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

/**
 * Columns with every value stored, {@code values (N, K, d)}, and signs {@code (N, K)} or none.
 *
 * <p>An elementwise factor {@code (N, d)} (or {@code (1, d)}) applied to all columns is kept apart
 * until the values are needed, so that the diagonal of scaled columns, {@code sum_c sign (v f)^2 =
 * f^2 sum_c sign v^2}, takes no {@code (N, K, d)} product.
 */
public final class DenseColumns extends ColumnSet {

    private final NDArray base;
    private final NDArray signs;
    private final NDArray factor;
    private NDArray values;

    /**
     * Creates a dense set.
     *
     * @param values {@code (N, K, d)}
     * @param signs {@code (N, K)} of {@code +1} and {@code -1}, or {@code null} for all {@code +1}
     * @param featureShape the per-sample feature shape, of size {@code d}
     */
    public DenseColumns(NDArray values, NDArray signs, Shape featureShape) {
        this(values, signs, featureShape, null);
    }

    private DenseColumns(NDArray base, NDArray signs, Shape featureShape, NDArray factor) {
        super(featureShape, base.getShape().get(0), base.getShape().get(1));
        this.base = base;
        this.signs = signs;
        this.factor = factor;
        this.values = factor == null ? base : null;
    }

    /**
     * Returns the values, with the pending factor applied.
     *
     * @return {@code (N, K, d)}
     */
    public NDArray getValues() {
        if (values == null) {
            values = scaledBase();
        }
        return values;
    }

    private NDArray scaledBase() {
        return base.mul(factor.expandDims(1));
    }

    /**
     * Returns the signs.
     *
     * @return {@code (N, K)}, or {@code null} for all {@code +1}
     */
    public NDArray getSigns() {
        return signs;
    }

    /**
     * Returns the values with the per-sample features unflattened.
     *
     * @return {@code (N, K, featureShape...)}
     */
    public NDArray shapedValues() {
        return getValues()
                .reshape(new Shape(getBatchSize(), getColumnCount()).addAll(getFeatureShape()));
    }

    /**
     * Weights squared per-column quantities by the signs and sums over the columns.
     *
     * @param squares {@code (N, K, ...)}
     * @return {@code (N, ...)}
     */
    public NDArray signedColumnSum(NDArray squares) {
        if (signs == null) {
            return squares.sum(new int[] {1});
        }
        NDArray weights = signs;
        for (int i = 2; i < squares.getShape().dimension(); i++) {
            weights = weights.expandDims(i);
        }
        NDArray weighted = squares.mul(weights);
        NDArray sum = weighted.sum(new int[] {1});
        weighted.close();
        return sum;
    }

    /**
     * Returns the values times a matrix, {@code (N, K, d) x (d, m)}, without keeping the values
     * when they are made here: the product is usually their only use.
     *
     * @param matrix {@code (d, m)}
     * @return {@code (N, K, m)}
     */
    public NDArray matMul(NDArray matrix) {
        if (values != null) {
            return values.matMul(matrix);
        }
        NDArray scaled = scaledBase();
        NDArray product = scaled.matMul(matrix);
        scaled.close();
        return product;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray diagonal() {
        // the (N, K, d) squares are the largest temporary here: freed at once, so that the
        // allocator reuses their memory for the next one instead of growing the heap
        NDArray squares = base.square();
        NDArray diagonal = signedColumnSum(squares);
        squares.close();
        if (factor == null) {
            return diagonal;
        }
        NDArray factorSquares = factor.square();
        NDArray scaled = diagonal.mul(factorSquares);
        factorSquares.close();
        diagonal.close();
        return scaled;
    }

    /** {@inheritDoc} */
    @Override
    public DenseColumns dense() {
        return this;
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet scale(NDArray extra, boolean perSample) {
        NDArray combined = factor == null ? extra : factor.mul(extra);
        return new DenseColumns(base, signs, getFeatureShape(), combined);
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet map(RowMap map, Shape inputShape) {
        NDArray rows =
                getValues()
                        .reshape(
                                new Shape(getBatchSize() * getColumnCount())
                                        .addAll(getFeatureShape()));
        return fromRows(map.apply(rows), inputShape);
    }

    /** {@inheritDoc} */
    @Override
    public DenseColumns mapSamples(SampleMap map, Shape inputShape) {
        NDArray rows =
                getValues()
                        .reshape(
                                new Shape(getBatchSize() * getColumnCount())
                                        .addAll(getFeatureShape()));
        return fromRows(map.apply(rows, getColumnCount()), inputShape);
    }

    private DenseColumns fromRows(NDArray rows, Shape inputShape) {
        NDArray mapped = rows.reshape(getBatchSize(), getColumnCount(), inputShape.size());
        return new DenseColumns(mapped, signs, inputShape);
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet reshape(Shape shape) {
        return new DenseColumns(base, signs, shape, factor);
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet plus(ColumnSet other) {
        NDArray sum = getValues().add(other.dense().getValues());
        return new DenseColumns(sum, signs, getFeatureShape());
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet chunk(long from, long to, NDManager manager) {
        NDIndex index = new NDIndex(":, {}:{}", from, to);
        NDArray part = base.get(index);
        part.attach(manager);
        NDArray partSigns = null;
        if (signs != null) {
            partSigns = signs.get(index);
            partSigns.attach(manager);
        }
        return new DenseColumns(part, partSigns, getFeatureShape(), factor);
    }

    /** {@inheritDoc} */
    @Override
    public boolean isPerSample() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public long elementCount(long count) {
        long elements = getBatchSize() * count * (getFeatureCount() + (signs == null ? 0 : 1));
        return factor == null ? elements : elements + factor.size();
    }
}
