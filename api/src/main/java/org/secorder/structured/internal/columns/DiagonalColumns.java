package org.secorder.structured.internal.columns;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.Arrays;

/**
 * Columns kept in factored form, {@code v[n, c, i] = scales[n, c] * mixing[c, i] * factor[n, i]},
 * with the mixing matrix shared by all samples.
 *
 * <p>A signed diagonal, such as the curvature of an elementwise activation, starts with the rows
 * {@code offset .. offset + K - 1} of the identity as its mixing matrix (stored as {@code null}).
 * Shared maps only change the mixing matrix and elementwise blocks only change the factor, so no
 * {@code (N, K, d)} tensor exists until a per-sample factor meets a map that mixes features.
 */
public final class DiagonalColumns extends ColumnSet {

    private final NDArray scales;
    private final NDArray signs;
    private final NDArray mixing;
    private final long offset;
    private final NDArray factor;
    private final boolean perSampleFactor;

    private DiagonalColumns(
            Shape featureShape,
            NDArray scales,
            NDArray signs,
            NDArray mixing,
            long offset,
            NDArray factor,
            boolean perSampleFactor) {
        super(featureShape, scales.getShape().get(0), scales.getShape().get(1));
        this.scales = scales;
        this.signs = signs;
        this.mixing = mixing;
        this.offset = offset;
        this.factor = factor;
        this.perSampleFactor = perSampleFactor;
    }

    /**
     * Creates the signed diagonal {@code diag(sign * scale^2)} of every sample.
     *
     * @param scales {@code (N, d)}, non-negative
     * @param signs {@code (N, d)} of {@code +1}, {@code -1} (or {@code 0}), or {@code null} for all
     *     {@code +1}
     * @param featureShape the per-sample feature shape, of size {@code d}
     * @return the set of {@code d} columns
     */
    public static DiagonalColumns of(NDArray scales, NDArray signs, Shape featureShape) {
        return new DiagonalColumns(featureShape, scales, signs, null, 0, null, false);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray diagonal() {
        NDArray weights = scales.square();
        if (signs != null) {
            weights = weights.mul(signs);
        }
        NDArray result;
        if (mixing == null) {
            result = placeColumns(weights);
        } else {
            result = weights.matMul(mixing.square());
        }
        if (factor != null) {
            result = result.mul(factor.square());
        }
        return result;
    }

    /** {@inheritDoc} */
    @Override
    public DenseColumns dense() {
        NDArray values = explicitMixing().expandDims(0).mul(scales.expandDims(2));
        if (factor != null) {
            values = values.mul(factor.expandDims(1));
        }
        return new DenseColumns(values, signs, getFeatureShape());
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet scale(NDArray extra, boolean perSample) {
        NDArray combined = factor == null ? extra : factor.mul(extra);
        return new DiagonalColumns(
                getFeatureShape(),
                scales,
                signs,
                mixing,
                offset,
                combined,
                perSampleFactor || perSample);
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet map(RowMap map, Shape inputShape) {
        if (perSampleFactor) {
            return dense().map(map, inputShape);
        }
        long count = getColumnCount();
        NDArray rows;
        if (mixing == null) {
            rows = map.applyToIdentity(this::identityRows, offset, count);
            if (factor != null) {
                NDArray picked =
                        factor.reshape(-1).get(new NDIndex("{}:{}", offset, offset + count));
                rows =
                        rows.mul(
                                picked.reshape(
                                        new Shape(count).addAll(ones(inputShape.dimension()))));
            }
        } else {
            NDArray base = factor == null ? mixing : mixing.mul(factor);
            rows = map.apply(base.reshape(new Shape(count).addAll(getFeatureShape())));
        }
        NDArray newMixing = rows.reshape(count, inputShape.size());
        return new DiagonalColumns(inputShape, scales, signs, newMixing, 0, null, false);
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet reshape(Shape shape) {
        return new DiagonalColumns(shape, scales, signs, mixing, offset, factor, perSampleFactor);
    }

    /**
     * Returns whether an elementwise factor applies to the columns.
     *
     * @return whether there is a factor
     */
    public boolean hasFactor() {
        return factor != null;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray pointDiagonal() {
        return mixing == null ? diagonal() : null;
    }

    /** {@inheritDoc} */
    @Override
    public LocalColumns local() {
        if (localWindow() == null) {
            return null;
        }
        return LocalColumns.shared(getFeatureShape(), scales, signs, offset, factor);
    }

    /** {@inheritDoc} */
    @Override
    public long[] localWindow() {
        int dimension = getFeatureShape().dimension();
        if (mixing != null || dimension < 2) {
            return null;
        }
        long[] ones = new long[dimension - 1];
        Arrays.fill(ones, 1);
        return ones;
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet plus(ColumnSet other) {
        if (other instanceof LocalColumns) {
            return other.plus(this);
        }
        if (other instanceof DiagonalColumns) {
            DiagonalColumns that = (DiagonalColumns) other;
            if (factor == null && that.factor == null && scales == that.scales) {
                NDArray sum = explicitMixing().add(that.explicitMixing());
                return new DiagonalColumns(getFeatureShape(), scales, signs, sum, 0, null, false);
            }
        }
        return dense().plus(other);
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet chunk(long from, long to, NDManager manager) {
        NDIndex columns = new NDIndex(":, {}:{}", from, to);
        NDArray partScales = attached(scales.get(columns), manager);
        NDArray partSigns = signs == null ? null : attached(signs.get(columns), manager);
        NDArray partMixing =
                mixing == null
                        ? null
                        : attached(mixing.get(new NDIndex("{}:{}", from, to)), manager);
        long partOffset = mixing == null ? offset + from : 0;
        return new DiagonalColumns(
                getFeatureShape(),
                partScales,
                partSigns,
                partMixing,
                partOffset,
                factor,
                perSampleFactor);
    }

    /** {@inheritDoc} */
    @Override
    public boolean isPerSample() {
        return perSampleFactor;
    }

    /** {@inheritDoc} */
    @Override
    public long elementCount(long count) {
        long elements = 2 * getBatchSize() * count;
        if (mixing != null) {
            elements += count * getFeatureCount();
        }
        if (factor != null) {
            elements += factor.size();
        }
        return elements;
    }

    private NDArray explicitMixing() {
        if (mixing != null) {
            return mixing;
        }
        return identityRows().reshape(getColumnCount(), getFeatureCount());
    }

    private NDArray identityRows() {
        NDManager manager = scales.getManager();
        long count = getColumnCount();
        NDArray indices = manager.arange(offset, offset + count, 1, DataType.INT64);
        NDArray rows = indices.oneHot((int) getFeatureCount(), scales.getDataType());
        return rows.reshape(new Shape(count).addAll(getFeatureShape()));
    }

    private NDArray placeColumns(NDArray weights) {
        long count = getColumnCount();
        long features = getFeatureCount();
        if (offset == 0 && count == features) {
            return weights;
        }
        NDManager manager = weights.getManager();
        NDList parts = new NDList(3);
        long batch = getBatchSize();
        if (offset > 0) {
            parts.add(manager.zeros(new Shape(batch, offset), weights.getDataType()));
        }
        parts.add(weights);
        long after = features - offset - count;
        if (after > 0) {
            parts.add(manager.zeros(new Shape(batch, after), weights.getDataType()));
        }
        return NDArrays.concat(parts, 1);
    }

    private static NDArray attached(NDArray array, NDManager manager) {
        array.attach(manager);
        return array;
    }

    private static Shape ones(int dimension) {
        long[] dims = new long[dimension];
        Arrays.fill(dims, 1);
        return new Shape(dims);
    }
}
