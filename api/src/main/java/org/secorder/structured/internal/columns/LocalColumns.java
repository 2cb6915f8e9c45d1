package org.secorder.structured.internal.columns;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;
import org.secorder.evaluation.HostArrays;

/**
 * Columns that each start at one element of a spatial feature map and so stay non-zero only on that
 * element's receptive field: {@code v[n, k] = scales[n, k] * patch[n, k]}, where the patch of
 * column {@code k} covers, along every spatial axis {@code i} of the current feature map, the
 * window {@code origin_i * stride_i - padding_i .. + size_i - 1}. The geometry ({@code stride},
 * {@code padding}, {@code size}) is shared by all columns; only the origin differs.
 *
 * <p>The set of a smooth activation's curvature, one column per element, becomes local at the first
 * convolution or pooling block below it. Elementwise factors multiply the patches by the factor's
 * windows, convolutions and non-overlapping pooling map patches to larger patches ({@link
 * LocalMap}), so that a column costs {@code C * size} values instead of a whole feature map. Every
 * other map sees the dense form.
 *
 * <p>Two forms. Per column: {@code patches (N or 1, K, C, prod(size))}, zero outside the feature
 * map. Shared: one kernel per origin channel, {@code (Co, C, prod(size))}, the same for every
 * origin position, times the windows of a pending elementwise factor map {@code (N or 1, C or 1,
 * spatial...)} (none: ones), whose windows are zero outside the map. The curvature of an activation
 * starts shared (the identity kernel), stays shared through non-overlapping pooling and elementwise
 * factors, and through one convolution while its windows are single elements; a convolution's
 * parameter rule then correlates every kernel with the factor times the unfolded input in one
 * product per origin position for all origin channels. Columns are ordered by origin position, then
 * origin channel, so that a chunk holds a few positions with all their channels.
 */
public final class LocalColumns extends ColumnSet {

    private static final AtomicLong SHARED_PRODUCTS = new AtomicLong();
    private static final AtomicLong DENSE_FORMS = new AtomicLong();

    private final NDArray values;
    private final NDArray kernel;
    private final NDArray factor;
    private final NDArray scales;
    private final NDArray signs;
    private final Object source;
    private final long[] origins;
    private final long[] channelsOf;
    private final long[] order;
    private final long[] grid;
    private final long[] stride;
    private final long[] padding;
    private final long[] size;
    private final long[] block;

    private LocalColumns(
            Shape featureShape,
            NDArray values,
            NDArray kernel,
            NDArray factor,
            NDArray scales,
            NDArray signs,
            Object source,
            long[] origins,
            long[] channelsOf,
            long[][] geometry) {
        super(featureShape, scales.getShape().get(0), scales.getShape().get(1));
        this.values = values;
        this.kernel = kernel;
        this.factor = factor;
        this.scales = scales;
        this.signs = signs;
        this.source = source;
        this.origins = origins;
        this.channelsOf = channelsOf;
        this.grid = geometry[0];
        this.stride = geometry[1];
        this.padding = geometry[2];
        this.size = geometry[3];
        this.order = geometry[4];
        this.block = geometry.length > 5 ? geometry[5] : null;
    }

    /**
     * Creates the columns {@code scale * e_j} for the flat features {@code offset .. offset + K -
     * 1} of a channel-first feature map, times an elementwise factor, in the shared form: the
     * identity kernel and the factor as the pending map, the columns reordered by origin position.
     *
     * @param featureShape {@code (C, spatial...)}
     * @param scales {@code (N, K)}
     * @param signs {@code (N, K)}, or {@code null}
     * @param offset the first feature
     * @param factor {@code (N or 1, d)} for all features, or {@code null}
     * @return the set, with windows of size 1
     */
    static LocalColumns shared(
            Shape featureShape, NDArray scales, NDArray signs, long offset, NDArray factor) {
        long count = scales.getShape().get(1);
        long channels = featureShape.get(0);
        long positions = featureShape.size() / channels;
        int spatial = featureShape.dimension() - 1;
        int total = Math.toIntExact(count);
        long[] origins = new long[total];
        long[] channelsOf = new long[total];
        long[] order = new long[total];
        long first = offset / positions;
        long last = (offset + count - 1) / positions;
        int j = 0;
        for (long p = 0; p < positions; p++) {
            for (long c = first; c <= last; c++) {
                long g = c * positions + p;
                if (g >= offset && g < offset + count) {
                    origins[j] = p;
                    channelsOf[j] = c;
                    order[j] = g - offset;
                    j++;
                }
            }
        }
        NDManager manager = scales.getManager();
        NDArray batchStarts =
                manager.arange(0, scales.getShape().get(0) * count, count, DataType.INT64)
                        .expandDims(1);
        NDArray index = batchStarts.add(HostArrays.create(manager, order, new Shape(1, count)));
        NDArray ordered = scales.reshape(-1).take(index).reshape(scales.getShape());
        NDArray orderedSigns =
                signs == null ? null : signs.reshape(-1).take(index).reshape(signs.getShape());
        Shape kernelShape = new Shape(channels, channels, 1);
        NDArray kernel =
                manager.eye(
                                Math.toIntExact(channels),
                                Math.toIntExact(channels),
                                0,
                                scales.getDataType())
                        .reshape(kernelShape);
        NDArray map =
                factor == null
                        ? null
                        : factor.reshape(new Shape(factor.getShape().get(0)).addAll(featureShape));
        long[] ones = new long[spatial];
        Arrays.fill(ones, 1);
        return new LocalColumns(
                featureShape,
                null,
                kernel,
                map,
                ordered,
                orderedSigns,
                scales,
                origins,
                channelsOf,
                new long[][] {
                    featureShape.slice(1).getShape(), ones, new long[spatial], ones, order
                });
    }

    /**
     * Returns how many chunks of shared columns a convolution's parameter rule has correlated in
     * this process, for tests that check that the local path is taken.
     *
     * @return the count
     */
    public static long sharedProductCount() {
        return SHARED_PRODUCTS.get();
    }

    /**
     * Returns how many local sets were made dense in this process, for tests that check that the
     * local path is kept.
     *
     * @return the count
     */
    public static long denseFormCount() {
        return DENSE_FORMS.get();
    }

    /**
     * Returns whether the columns are in the shared form: one kernel per origin channel times the
     * windows of a pending factor map.
     *
     * @return whether shared
     */
    public boolean isShared() {
        return kernel != null;
    }

    /**
     * Returns whether shared columns carry a pending factor map.
     *
     * @return whether there is a factor
     */
    public boolean hasFactor() {
        return factor != null;
    }

    /**
     * Returns the same columns in the per-column form.
     *
     * @return the set with its patches stored
     */
    public LocalColumns perColumn() {
        if (values != null) {
            return this;
        }
        long count = getColumnCount();
        long channels = getFeatureShape().get(0);
        long window = product(size);
        long kernels = kernel.getShape().get(0);
        NDManager manager = scales.getManager();
        NDArray pick =
                HostArrays.create(manager, channelsOf, new Shape(count))
                        .oneHot(Math.toIntExact(kernels), kernel.getDataType());
        NDArray patches =
                pick.matMul(kernel.reshape(kernels, channels * window))
                        .reshape(1, count, channels, window);
        NDArray map = factor == null ? ones() : factor;
        return withPatches(patches.mul(windows(map)), null, null);
    }

    /**
     * Returns the per-column set in the column order of the set it was made from (the columns of a
     * sum's branches are added column by column), or this set where the order is the same.
     */
    private LocalColumns restored() {
        int count = origins.length;
        long[] inverse = new long[count];
        boolean same = true;
        for (int j = 0; j < count; j++) {
            inverse[(int) order[j]] = j;
            same &= order[j] == j;
        }
        if (same) {
            return this;
        }
        NDManager manager = scales.getManager();
        long batch = values.getShape().get(0);
        long per = values.size() / (batch * count);
        NDArray picked = HostArrays.create(manager, inverse, new Shape(1, count, 1)).mul(per);
        NDArray index =
                manager.arange(0, batch * count * per, count * per, DataType.INT64)
                        .reshape(batch, 1, 1)
                        .add(picked)
                        .add(manager.arange(0, per, 1, DataType.INT64).reshape(1, 1, per));
        NDArray patches = values.reshape(-1).take(index).reshape(values.getShape());
        long samples = getBatchSize();
        NDArray rows =
                manager.arange(0, samples * count, count, DataType.INT64)
                        .reshape(samples, 1)
                        .add(HostArrays.create(manager, inverse, new Shape(1, count)));
        NDArray restoredScales = scales.reshape(-1).take(rows).reshape(scales.getShape());
        NDArray restoredSigns =
                signs == null ? null : signs.reshape(-1).take(rows).reshape(signs.getShape());
        long[] restoredOrigins = new long[count];
        long[] restoredChannels = new long[count];
        for (int i = 0; i < count; i++) {
            restoredOrigins[i] = origins[(int) inverse[i]];
            restoredChannels[i] = channelsOf[(int) inverse[i]];
        }
        return new LocalColumns(
                getFeatureShape(),
                patches,
                null,
                null,
                restoredScales,
                restoredSigns,
                source,
                restoredOrigins,
                restoredChannels,
                new long[][] {grid, stride, padding, size, null});
    }

    private NDArray ones() {
        Shape shape = new Shape(1, 1).addAll(getFeatureShape().slice(1));
        return scales.getManager().ones(shape, scales.getDataType());
    }

    /**
     * Returns, per sample, {@code sum_k sign_k scale_k^2 (X^T v_k)^2} and {@code sum_k sign_k
     * scale_k^2 (sum v_k)^2} per channel of shared columns at the output of a convolution with one
     * group, {@code X} the unfolded input at every output position: one grouped convolution of the
     * factor times the input with the kernels ({@link SharedCorrelation}).
     *
     * @param inputMap the unfolded input at every output position, {@code (N, positions, F)}
     * @param limit the most array elements held at once for a piece of the work, where one sample's
     *     correlations at one origin position fit that
     * @return {@code (N, C, F)} and {@code (N, C)}
     */
    public NDArray[] sharedCorrelations(NDArray inputMap, long limit) {
        SHARED_PRODUCTS.incrementAndGet();
        return correlation(columnWeights()).compute(inputMap, limit);
    }

    private SharedCorrelation correlation(NDArray weights) {
        return new SharedCorrelation(
                getFeatureShape(),
                kernel,
                factor,
                weights,
                origins,
                channelsOf,
                new long[][] {grid, stride, padding, size, block});
    }

    /**
     * Returns the elements {@link #sharedCorrelations} holds for a chunk of the columns.
     *
     * @param unfolded the unfolded input features {@code F} per position
     * @param count the number of columns
     * @param limit the most array elements held at once for a piece of the work
     * @return the element count
     */
    public long sharedCorrelationElements(long unfolded, long count, long limit) {
        long factorChannels = factor == null ? 1 : factor.getShape().get(1);
        return correlation(null)
                .elements(
                        getBatchSize(),
                        unfolded,
                        factorChannels,
                        kernel.getShape().get(0),
                        count,
                        limit);
    }

    /**
     * Returns the patches, without the scales, of the per-column form.
     *
     * @return {@code (N or 1, K, C, prod(size))}
     */
    public NDArray getPatches() {
        return perColumn().values;
    }

    /**
     * Returns the weight of each column in the represented matrices, {@code sign * scale^2}.
     *
     * @return {@code (N, K)}
     */
    public NDArray columnWeights() {
        NDArray weights = scales.square();
        return signs == null ? weights : weights.mul(signs);
    }

    /**
     * Returns the window size per spatial axis.
     *
     * @return the sizes
     */
    public long[] getWindowSize() {
        return size.clone();
    }

    /**
     * Returns the windows of a feature map of the current spatial shape that the columns cover:
     * entry {@code [b, k, c, r]} is the map's value at offset {@code r} of column {@code k}'s
     * window, zero outside the map.
     *
     * @param map {@code (B, Cm, spatial...)}
     * @return {@code (B, K, Cm, prod(size))}
     */
    public NDArray windows(NDArray map) {
        return windowsAt(map, origins);
    }

    private NDArray windowsAt(NDArray map, long[] at) {
        Shape shape = map.getShape();
        long batch = shape.get(0);
        long channels = shape.get(1);
        long positions = shape.slice(2).size();
        NDArray gathered = gather(map, batch * channels, positions, 1, at);
        return gathered.reshape(batch, channels, at.length, product(size)).transpose(0, 2, 1, 3);
    }

    /**
     * Takes the windows' entries of a map stored as {@code (rows, positions, inner)}: {@code (rows,
     * at * prod(size), inner)}, zero where a window leaves the map.
     */
    private NDArray gather(NDArray map, long rows, long positions, long inner, long[] at) {
        NDManager manager = scales.getManager();
        long[] index = windowIndex(at);
        double[] inside = new double[index.length];
        boolean clipped = false;
        for (int i = 0; i < index.length; i++) {
            if (index[i] == positions) {
                index[i] = 0;
                clipped = true;
            } else {
                inside[i] = 1;
            }
            index[i] *= inner;
        }
        NDArray offsets = HostArrays.create(manager, index, new Shape(1, index.length, 1));
        NDArray starts =
                manager.arange(0, rows * positions * inner, positions * inner, DataType.INT64)
                        .reshape(rows, 1, 1);
        NDArray flat = starts.add(offsets);
        if (inner > 1) {
            flat = flat.add(manager.arange(0, inner, 1, DataType.INT64).reshape(1, 1, inner));
        }
        NDArray gathered = map.reshape(-1).take(flat);
        if (!clipped) {
            return gathered;
        }
        NDArray mask =
                HostArrays.create(manager, inside, new Shape(1, index.length, 1))
                        .toType(map.getDataType(), false);
        return gathered.mul(mask);
    }

    /**
     * Returns, for every column and window offset, the flat position in the feature map's spatial
     * axes, or the number of positions where the offset falls outside the map.
     */
    private long[] windowIndex(long[] at) {
        Shape features = getFeatureShape();
        int spatial = grid.length;
        long[] extent = features.slice(1).getShape();
        long positions = product(extent);
        long window = product(size);
        long[] index = new long[Math.toIntExact(at.length * window)];
        long[] origin = new long[spatial];
        long[] offset = new long[spatial];
        for (int k = 0; k < at.length; k++) {
            long rest = at[k];
            for (int i = spatial - 1; i >= 0; i--) {
                origin[i] = rest % grid[i];
                rest /= grid[i];
            }
            for (int r = 0; r < window; r++) {
                long remaining = r;
                for (int i = spatial - 1; i >= 0; i--) {
                    offset[i] = remaining % size[i];
                    remaining /= size[i];
                }
                long flat = 0;
                boolean inside = true;
                for (int i = 0; i < spatial; i++) {
                    long x = origin[i] * stride[i] - padding[i] + offset[i];
                    inside &= x >= 0 && x < extent[i];
                    flat = flat * extent[i] + x;
                }
                index[Math.toIntExact(k * window + r)] = inside ? flat : positions;
            }
        }
        return index;
    }

    /**
     * Returns whether the map keeps the patches smaller than the feature map at its input.
     *
     * @param map the block's local map
     * @param inputShape the per-sample input shape {@code (C, spatial...)}
     * @return whether mapping locally is worthwhile
     */
    public boolean fits(LocalMap map, Shape inputShape) {
        long[] next = nextSize(map);
        return inputShape.dimension() == grid.length + 1
                && product(next) <= inputShape.slice(1).size();
    }

    /** The windows' stride at the input of a block's local map. */
    private long[] nextStride(LocalMap map) {
        long[] step = map.getLocalStride();
        long[] next = new long[size.length];
        for (int i = 0; i < size.length; i++) {
            next[i] = stride[i] * step[i];
        }
        return next;
    }

    /** The windows' padding at the input of a block's local map. */
    private long[] nextPadding(LocalMap map) {
        long[] step = map.getLocalStride();
        long[] offset = map.getLocalPadding();
        long[] next = new long[size.length];
        for (int i = 0; i < size.length; i++) {
            next[i] = padding[i] * step[i] + offset[i];
        }
        return next;
    }

    private long[] nextSize(LocalMap map) {
        long[] step = map.getLocalStride();
        long[] extent = map.getLocalExtent();
        long[] next = new long[size.length];
        for (int i = 0; i < size.length; i++) {
            next[i] = (size[i] - 1) * step[i] + extent[i];
        }
        return next;
    }

    /**
     * Applies a block's transposed Jacobian as a map of patches.
     *
     * @param map the block's local map
     * @param inputShape the per-sample input shape {@code (C, spatial...)}
     * @return the columns at the input
     */
    public LocalColumns mapLocal(LocalMap map, Shape inputShape) {
        if (kernel != null) {
            // without a factor the columns are the same for every sample: the map maps the kernels
            if (map.carriesFactor() || factor == null) {
                return mapShared(map, inputShape);
            }
            return perColumn().mapLocal(map, inputShape);
        }
        long[] nextStride = nextStride(map);
        long[] nextPadding = nextPadding(map);
        long[] nextSize = nextSize(map);
        long rows = values.getShape().get(0) * getColumnCount();
        Shape patch = new Shape(rows, getFeatureShape().get(0)).addAll(new Shape(size));
        NDArray mapped = map.applyToPatches(values.reshape(patch));
        long channels = inputShape.get(0);
        NDArray patches =
                mapped.reshape(
                        values.getShape().get(0), getColumnCount(), channels, product(nextSize));
        LocalColumns moved =
                new LocalColumns(
                        inputShape,
                        patches,
                        null,
                        null,
                        scales,
                        signs,
                        source,
                        origins,
                        channelsOf,
                        new long[][] {grid, nextStride, nextPadding, nextSize, order});
        NDArray factor = map.getLocalFactor();
        if (factor == null) {
            Shape ones = new Shape(1, 1).addAll(inputShape.slice(1));
            factor = scales.getManager().ones(ones, values.getDataType());
        }
        return moved.times(factor);
    }

    private LocalColumns mapShared(LocalMap map, Shape inputShape) {
        long[] nextStride = nextStride(map);
        long[] nextPadding = nextPadding(map);
        long[] nextSize = nextSize(map);
        long kernels = kernel.getShape().get(0);
        Shape patch = new Shape(kernels, getFeatureShape().get(0)).addAll(new Shape(size));
        NDArray mapped =
                map.applyToPatches(kernel.reshape(patch))
                        .reshape(kernels, inputShape.get(0), product(nextSize));
        NDArray nextFactor = map.carriesFactor() ? map.mapFactor(factor) : null;
        return new LocalColumns(
                inputShape,
                null,
                mapped,
                nextFactor,
                scales,
                signs,
                source,
                origins,
                channelsOf,
                new long[][] {grid, nextStride, nextPadding, nextSize, order, nextBlock(map)});
    }

    /**
     * Returns the blocks over which the kernel mapped by a block's local map repeats its values: a
     * map that repeats every output element over its window (non-overlapping pooling) multiplies
     * the blocks by its window, any other map leaves single elements.
     */
    private long[] nextBlock(LocalMap map) {
        long[] step = map.getLocalStride();
        if (!map.carriesFactor() || !Arrays.equals(map.getLocalExtent(), step)) {
            return null;
        }
        long[] next = new long[step.length];
        for (int i = 0; i < step.length; i++) {
            next[i] = (block == null ? 1 : block[i]) * step[i];
        }
        return next;
    }

    /**
     * Returns the same columns, signs and geometry with other patches: stored per column, or a
     * kernel per origin channel with its factor map.
     */
    private LocalColumns withPatches(NDArray patches, NDArray sharedKernel, NDArray factorMap) {
        return new LocalColumns(
                getFeatureShape(),
                patches,
                sharedKernel,
                factorMap,
                scales,
                signs,
                source,
                origins,
                channelsOf,
                new long[][] {grid, stride, padding, size, order, block});
    }

    private LocalColumns times(NDArray map) {
        NDArray product = values.mul(windows(map));
        return withPatches(product, null, null);
    }

    /**
     * Returns the number of elements {@link #mapLocal(LocalMap, Shape)} holds for a number of
     * columns.
     *
     * @param map the block's local map
     * @param inputShape the per-sample input shape
     * @param count the number of columns
     * @return the element count
     */
    public long mapElements(LocalMap map, Shape inputShape, long count) {
        long next = product(nextSize(map));
        if (kernel != null) {
            long kernels = kernel.getShape().get(0);
            long fixed = 2 * kernels * inputShape.get(0) * next;
            if (map.carriesFactor()) {
                return fixed + 3 * getBatchSize() * inputShape.size();
            }
            if (factor == null) {
                return fixed;
            }
            long materialized = 3 * getBatchSize() * count * patchElements();
            return materialized + getBatchSize() * count * next * (4 * inputShape.get(0) + 2);
        }
        long perColumn = next * (4 * inputShape.get(0) + 2) + product(size) * 2;
        return getBatchSize() * count * perColumn;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray diagonal() {
        return dense().diagonal();
    }

    /** {@inheritDoc} */
    @Override
    public NDArray pointDiagonal() {
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public DenseColumns dense() {
        if (kernel != null) {
            return perColumn().dense();
        }
        if (order != null) {
            LocalColumns restored = restored();
            if (restored != this) {
                return restored.dense();
            }
        }
        DENSE_FORMS.incrementAndGet();
        long count = getColumnCount();
        long window = product(size);
        long positions = getFeatureShape().slice(1).size();
        long channels = getFeatureShape().get(0);
        long batch = values.getShape().get(0);
        NDManager manager = scales.getManager();
        long[] index = windowIndex(origins);
        NDArray placement =
                HostArrays.create(manager, index, new Shape(index.length))
                        .oneHot(Math.toIntExact(positions + 1), values.getDataType())
                        .reshape(count, window, positions + 1);
        NDArray spread =
                values.transpose(1, 0, 2, 3)
                        .reshape(count, batch * channels, window)
                        .matMul(placement)
                        .get(new NDIndex(":, :, :{}", positions))
                        .reshape(count, batch, channels * positions)
                        .transpose(1, 0, 2);
        NDArray full = spread.mul(scales.expandDims(2));
        return new DenseColumns(full, signs, getFeatureShape());
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet scale(NDArray extra, boolean perSample) {
        long batch = extra.getShape().get(0);
        NDArray map = extra.reshape(new Shape(batch).addAll(getFeatureShape()));
        if (kernel == null) {
            return times(map);
        }
        NDArray combined = factor == null ? map : factor.mul(map);
        return withPatches(null, kernel, combined);
    }

    /** {@inheritDoc} */
    @Override
    public long scaledElements(long count) {
        if (kernel != null) {
            return 2 * super.scaledElements(count);
        }
        return super.scaledElements(count) + 4 * getBatchSize() * count * patchElements();
    }

    private long patchElements() {
        return getFeatureShape().get(0) * product(size);
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet map(RowMap map, Shape inputShape) {
        return dense().map(map, inputShape);
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet reshape(Shape shape) {
        return dense().reshape(shape);
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet plus(ColumnSet other) {
        LocalColumns that = other.local();
        if (that == null
                || that.sourceScales() != sourceScales()
                || !Arrays.equals(that.origins, origins)
                || !Arrays.equals(that.channelsOf, channelsOf)
                || !Arrays.equals(that.stride, stride)
                || !that.getFeatureShape().equals(getFeatureShape())) {
            return dense().plus(other);
        }
        if (kernel != null || that.kernel != null) {
            return perColumn().plus(that.perColumn());
        }
        int spatial = size.length;
        long[] before = new long[spatial];
        long[] after = new long[spatial];
        long[] union = new long[spatial];
        for (int i = 0; i < spatial; i++) {
            before[i] = Math.max(padding[i], that.padding[i]);
            after[i] = Math.max(size[i] - padding[i], that.size[i] - that.padding[i]);
            union[i] = before[i] + after[i];
        }
        NDArray sum = enlarged(before, union).add(that.enlarged(before, union));
        return new LocalColumns(
                getFeatureShape(),
                sum,
                null,
                null,
                scales,
                signs,
                source,
                origins,
                channelsOf,
                new long[][] {grid, stride, before, union, order});
    }

    private Object sourceScales() {
        return source == null ? scales : source;
    }

    /** Pads the patches to a larger window that starts {@code start} before the origin. */
    private NDArray enlarged(long[] start, long[] union) {
        long batch = values.getShape().get(0);
        long channels = getFeatureShape().get(0);
        Shape shaped = new Shape(batch, getColumnCount(), channels).addAll(new Shape(size));
        NDArray patches = values.reshape(shaped);
        for (int i = 0; i < size.length; i++) {
            long front = start[i] - padding[i];
            long back = union[i] - size[i] - front;
            patches = SharedCorrelation.pad(patches, i + 3, front, back);
        }
        return patches.reshape(batch, getColumnCount(), channels, product(union));
    }

    /** {@inheritDoc} */
    @Override
    public LocalColumns local() {
        return this;
    }

    /** {@inheritDoc} */
    @Override
    public long[] localWindow() {
        return size.clone();
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet chunk(long from, long to, NDManager manager) {
        NDIndex columns = new NDIndex(":, {}:{}", from, to);
        NDArray partValues = null;
        if (values != null) {
            partValues = values.get(columns);
            partValues.attach(manager);
        }
        NDArray partScales = scales.get(columns);
        partScales.attach(manager);
        NDArray partSigns = null;
        if (signs != null) {
            partSigns = signs.get(columns);
            partSigns.attach(manager);
        }
        // what the chunk computes from the shared arrays belongs to the chunk's scope
        for (NDArray shared : new NDArray[] {kernel, factor}) {
            if (shared != null && shared.getManager() != manager) {
                manager.tempAttachAll(shared);
            }
        }
        long[] partOrigins = Arrays.copyOfRange(origins, (int) from, (int) to);
        long[] partChannels =
                channelsOf == null ? null : Arrays.copyOfRange(channelsOf, (int) from, (int) to);
        // a part of a reordered set keeps no order: only whole sets meet other sets in a sum
        long[] partOrder = null;
        return new LocalColumns(
                getFeatureShape(),
                partValues,
                kernel,
                factor,
                partScales,
                partSigns,
                source,
                partOrigins,
                partChannels,
                new long[][] {grid, stride, padding, size, partOrder, block});
    }

    /** {@inheritDoc} */
    @Override
    public boolean isPerSample() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public long elementCount(long count) {
        if (kernel != null) {
            long fixed = kernel.size() + (factor == null ? 0 : factor.size());
            return fixed + count * getBatchSize() * (signs == null ? 1 : 2);
        }
        long perColumn = values.getShape().get(0) * patchElements();
        perColumn += getBatchSize() * (signs == null ? 1 : 2);
        return count * perColumn;
    }

    private static long product(long[] dims) {
        long product = 1;
        for (long dim : dims) {
            product *= dim;
        }
        return product;
    }
}
