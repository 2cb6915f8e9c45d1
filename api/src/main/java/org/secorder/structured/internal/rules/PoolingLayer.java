package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.pooling.Pool;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.WeakHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngine;
import org.secorder.evaluation.HostArrays;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DenseColumns;
import org.secorder.structured.internal.columns.LocalColumns;
import org.secorder.structured.internal.columns.LocalMap;
import org.secorder.structured.internal.columns.SampleMap;
import org.secorder.structured.internal.propagation.LeafLayer;
import org.secorder.structured.internal.propagation.Propagation;
import org.secorder.structured.internal.propagation.TangentRule;
import org.secorder.structured.internal.propagation.Tangents;

/**
 * A max or average pooling block from DJL's {@code Pool}: piecewise linear, so it adds no curvature
 * of its own.
 *
 * <p>DJL keeps the window settings of these blocks inside a lambda, so the transposed Jacobian is
 * taken from the engine's first-order autograd: one vector-Jacobian product through the block
 * itself for all columns at once, with every sample's input repeated once per column. The window
 * selection of max pooling depends only on the input, so this is exact.
 *
 * <p>Where the windows do not overlap (kernel equal to stride, no padding), the transposed Jacobian
 * is the output repeated over each window times the product of ones, {@code J^T 1}: each input
 * element receives its own window's value times its weight (the selection of max pooling, {@code 1
 * / size} of average pooling). That is checked against the engine's own product with a random
 * vector, and then maps {@link LocalColumns} without autograd.
 *
 * <p>Average pooling with overlapping windows that divides by the full window size (DJL's default,
 * as in {@code LeNet}) is linear with a constant kernel: its transposed Jacobian is a transposed
 * depthwise convolution with the kernel {@code 1 / size}. Its window size, stride and padding are
 * read from one vector-Jacobian product of one-hot vectors at neighbouring outputs, and the
 * convolution is checked against the engine's own product with a random vector; it then maps {@link
 * LocalColumns} (their shared kernels, or their patches) without autograd. Its window weight is the
 * product of one weight per axis, so for dense columns (and the gradient) the transposed Jacobian
 * is one small matrix product per axis: {@code 1 / size} where an input position lies in an
 * output's window along that axis. That is two to three times faster than the engine's own pooling
 * backward, which also needs a forward pass over every sample repeated once per column.
 *
 * <p>What the windows are is a property of the block and the input's per-sample shape, data type
 * and engine, so it is found and checked once for each of them and remembered (for as long as the
 * block lives); the selection of max pooling, which depends on the values, is taken at every
 * forward pass.
 */
public final class PoolingLayer extends LeafLayer implements SampleMap, LocalMap, TangentRule {

    private static final double CHECK_TOLERANCE = 1e-5;
    private static final long ONE_MATRIX_FACTOR = 5;
    private static final AtomicLong AVERAGE_WINDOWS = new AtomicLong();
    private static final Map<Block, Map<String, Windows>> RECOGNIZED =
            Collections.synchronizedMap(new WeakHashMap<>());

    private NDArray input;
    private Shape inputShape;
    private Shape outputShape;
    private long[] window;
    private NDArray selection;
    private long[] averageStride;
    private long[] averagePadding;
    private long[] averageKernel;

    /**
     * Creates the layer of a pooling block.
     *
     * @param description the block's path and kind
     * @param block the block
     */
    public PoolingLayer(String description, Block block) {
        super(description, block);
    }

    /**
     * Returns how many forward passes in this process recognized an overlapping average pooling
     * with a constant kernel, for tests that check that the convolution replaces autograd.
     *
     * @return the count
     */
    public static long averageWindowCount() {
        return AVERAGE_WINDOWS.get();
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forwardLeaf(NDArray x) {
        input = getPropagation().keep(x);
        inputShape = x.getShape().slice(1);
        NDArray output = runBlock(x);
        outputShape = output.getShape().slice(1);
        window = null;
        selection = null;
        averageKernel = null;
        String key =
                inputShape
                        + " "
                        + x.getDataType()
                        + " "
                        + x.getManager().getEngine().getEngineName();
        Windows known = recognized(key);
        if (known != null) {
            if (known.window != null) {
                window = known.window.clone();
                selection = getPropagation().keep(apply(output.onesLike(), 1));
            } else if (known.average != null) {
                averageStride = known.average[0].clone();
                averagePadding = known.average[1].clone();
                averageKernel = known.average[2].clone();
                AVERAGE_WINDOWS.incrementAndGet();
            }
            return output;
        }
        if (inputShape.dimension() >= 2 && outputShape.dimension() == inputShape.dimension()) {
            checkWindows(output);
            if (window == null && outputShape.get(0) == inputShape.get(0)) {
                checkAverage(output);
            }
        }
        remember(
                key,
                new Windows(
                        window == null ? null : window.clone(),
                        averageKernel == null
                                ? null
                                : new long[][] {
                                    averageStride.clone(),
                                    averagePadding.clone(),
                                    averageKernel.clone()
                                }));
        return output;
    }

    private Windows recognized(String key) {
        synchronized (RECOGNIZED) {
            Map<String, Windows> byShape = RECOGNIZED.get(getBlock());
            return byShape == null ? null : byShape.get(key);
        }
    }

    private void remember(String key, Windows windows) {
        synchronized (RECOGNIZED) {
            RECOGNIZED.computeIfAbsent(getBlock(), b -> new HashMap<>()).put(key, windows);
        }
    }

    /**
     * Keeps the settings of an average pooling with a constant kernel if one vector-Jacobian
     * product of one-hot vectors at an inner output and its neighbours shows them and a random
     * vector confirms them.
     */
    private void checkAverage(NDArray output) {
        int spatial = inputShape.dimension() - 1;
        long[] center = new long[spatial];
        for (int i = 0; i < spatial; i++) {
            center[i] = (outputShape.get(i + 1) - 1) / 2;
        }
        // copy 0 of the first sample: a one at the center output of its first channel; copy i + 1:
        // at the center's neighbour along axis i
        long perCopy = outputShape.size();
        double[] hot = new double[Math.toIntExact((spatial + 1) * perCopy)];
        for (int copy = 0; copy <= spatial; copy++) {
            long[] at = center.clone();
            if (copy > 0 && at[copy - 1] + 1 < outputShape.get(copy)) {
                at[copy - 1]++;
            }
            long flat = 0;
            for (int i = 0; i < spatial; i++) {
                flat = flat * outputShape.get(i + 1) + at[i];
            }
            hot[Math.toIntExact(copy * perCopy + flat)] = 1;
        }
        Shape rowsShape = new Shape(spatial + 1).addAll(outputShape);
        NDArray rows =
                HostArrays.create(output.getManager(), hot, rowsShape)
                        .toType(output.getDataType(), false);
        NDArray first = input.get(new NDIndex("0:1"));
        NDArray spread = transposedProduct(first.repeat(0, spatial + 1), rows);
        long positions = inputShape.slice(1).size();
        double[][] maps = new double[spatial + 1][];
        for (int copy = 0; copy <= spatial; copy++) {
            maps[copy] = spread.get(copy).get(0).toType(DataType.FLOAT64, false).toDoubleArray();
        }
        long[][] settings = averageSettings(maps, center, positions);
        if (settings == null) {
            return;
        }
        // the engine's own product, taken before the recognized settings replace autograd
        NDArray probe = randomLike(output);
        NDArray expected = apply(probe, 1);
        averageStride = settings[0];
        averagePadding = settings[1];
        averageKernel = settings[2];
        if (close(expected, spreadAverage(probe, false)) && close(expected, spreadByAxes(probe))) {
            AVERAGE_WINDOWS.incrementAndGet();
        } else {
            averageKernel = null;
        }
    }

    /**
     * Reads stride, padding and window size per axis from the transposed Jacobian of one-hot
     * vectors at the center output (map 0) and at its neighbour along each axis (map i + 1), or
     * returns {@code null} where the center's window is not wholly inside the input or the settings
     * do not give the output's shape.
     */
    private long[][] averageSettings(double[][] maps, long[] center, long positions) {
        int spatial = center.length;
        long[] extent = inputShape.slice(1).getShape();
        long[][] first = new long[spatial + 1][];
        long[][] last = new long[spatial + 1][];
        for (int copy = 0; copy <= spatial; copy++) {
            first[copy] = new long[spatial];
            last[copy] = new long[spatial];
            Arrays.fill(first[copy], Long.MAX_VALUE);
            Arrays.fill(last[copy], -1);
            for (long p = 0; p < positions; p++) {
                if (maps[copy][Math.toIntExact(p)] == 0) {
                    continue;
                }
                long rest = p;
                for (int i = spatial - 1; i >= 0; i--) {
                    long x = rest % extent[i];
                    rest /= extent[i];
                    first[copy][i] = Math.min(first[copy][i], x);
                    last[copy][i] = Math.max(last[copy][i], x);
                }
            }
            if (last[copy][0] < 0) {
                return null;
            }
        }
        long[] stride = new long[spatial];
        long[] padding = new long[spatial];
        long[] kernel = new long[spatial];
        for (int i = 0; i < spatial; i++) {
            long start = first[0][i];
            if (start == 0 || last[0][i] == extent[i] - 1) {
                return null;
            }
            kernel[i] = last[0][i] - start + 1;
            stride[i] = outputShape.get(i + 1) == 1 ? 1 : first[i + 1][i] - start;
            padding[i] = center[i] * stride[i] - start;
            // windows of a pooling: every one starts inside the padded input and its last one
            // inside the input (max pooling's selections show other patterns)
            long lastStart = (outputShape.get(i + 1) - 1) * stride[i] - padding[i];
            if (stride[i] < 1
                    || padding[i] < 0
                    || padding[i] >= kernel[i]
                    || lastStart > extent[i] - 1
                    || (extent[i] + 2 * padding[i] - kernel[i]) / stride[i] + 1
                            != outputShape.get(i + 1)) {
                return null;
            }
        }
        return new long[][] {stride, padding, kernel};
    }

    /**
     * The transposed Jacobian of the recognized average pooling: every output element spread over
     * its window with the weight {@code 1 / size}, onto the whole input, or, for patches, onto
     * every input position that the patch reaches. The elements are placed {@code stride} apart on
     * a zero canvas with a margin of {@code size - 1}, whose sums over every window of {@code size}
     * (an average pooling with stride 1, which divides by the size) are the result.
     */
    private NDArray spreadAverage(NDArray rows, boolean full) {
        int spatial = averageKernel.length;
        Shape shape = rows.getShape();
        Shape canvasShape = shape.slice(0, 2);
        NDIndex placement = new NDIndex().addAllDim(2);
        for (int i = 0; i < spatial; i++) {
            long reach = averageKernel[i] - 1;
            long spread = (shape.get(i + 2) - 1) * averageStride[i] + 1;
            long before = full ? reach : reach - averagePadding[i];
            long length = full ? spread + 2 * reach : inputShape.get(i + 1) + reach;
            canvasShape = canvasShape.add(length);
            placement.addSliceDim(before, before + spread, averageStride[i]);
        }
        NDArray canvas = rows.getManager().zeros(canvasShape, rows.getDataType());
        canvas.set(placement, rows);
        // the window sums, as a convolution of every channel with the constant kernel
        long[] ones = new long[spatial];
        Arrays.fill(ones, 1);
        long area = 1;
        for (long length : averageKernel) {
            area *= length;
        }
        NDArray planes = canvas.reshape(new Shape(-1, 1).addAll(canvasShape.slice(2)));
        // the weight divided in the columns' own precision
        NDArray kernel =
                planes.getManager()
                        .ones(
                                new Shape(1, 1).addAll(new Shape(averageKernel)),
                                planes.getDataType())
                        .divi(area);
        NDArray sums =
                planes.getNDArrayInternal()
                        .convolution(
                                planes,
                                kernel,
                                null,
                                new Shape(ones),
                                new Shape(new long[spatial]),
                                new Shape(ones),
                                1)
                        .head();
        return sums.reshape(shape.slice(0, 2).addAll(sums.getShape().slice(2)));
    }

    /**
     * The transposed Jacobian of the recognized average pooling for rows of any number of columns:
     * from the last spatial axis to the first, the rows are multiplied along that axis by the
     * matrix that spreads each output over its window with the weight {@code 1 / size} of that axis
     * (positions in the padding dropped).
     */
    private NDArray spreadByAxes(NDArray rows) {
        int spatial = averageKernel.length;
        long count = rows.size() / outputShape.size();
        NDArray spread = rows;
        long later = 1;
        for (int i = spatial - 1; i >= 0; i--) {
            long out = outputShape.get(i + 1);
            if (i == spatial - 1) {
                // (rows, out) times (out, in)
                spread = spread.reshape(-1, out).matMul(axisSpread(i, false, rows));
            } else {
                // (in, out) times every (out, later) block
                spread = axisSpread(i, true, rows).matMul(spread.reshape(-1, out, later));
            }
            later *= inputShape.get(i + 1);
        }
        return spread.reshape(new Shape(count).addAll(inputShape));
    }

    /**
     * The matrix of one spatial axis that spreads each output over its window, {@code (outputs,
     * inputs)} or transposed, in the data type of the given rows.
     */
    private NDArray axisSpread(int axis, boolean transposed, NDArray like) {
        int out = Math.toIntExact(outputShape.get(axis + 1));
        int in = Math.toIntExact(inputShape.get(axis + 1));
        double weight = 1.0 / averageKernel[axis];
        double[] values = new double[out * in];
        for (int o = 0; o < out; o++) {
            long start = o * averageStride[axis] - averagePadding[axis];
            long end = Math.min(start + averageKernel[axis], in);
            for (long t = Math.max(start, 0); t < end; t++) {
                int at = transposed ? Math.toIntExact(t * out + o) : Math.toIntExact(o * in + t);
                values[at] = weight;
            }
        }
        Shape shape = transposed ? new Shape(in, out) : new Shape(out, in);
        return HostArrays.create(like.getManager(), values, shape)
                .toType(like.getDataType(), false);
    }

    /** Keeps the selection if the pool's windows are the non-overlapping ones of its shapes. */
    private void checkWindows(NDArray output) {
        int spatial = inputShape.dimension() - 1;
        long[] candidate = new long[spatial];
        if (outputShape.get(0) != inputShape.get(0)) {
            return;
        }
        for (int i = 0; i < spatial; i++) {
            long out = outputShape.get(i + 1);
            if (out == 0 || inputShape.get(i + 1) / out == 0) {
                return;
            }
            candidate[i] = inputShape.get(i + 1) / out;
        }
        window = candidate;
        NDArray ones = apply(output.onesLike(), 1);
        NDArray probe = randomLike(output);
        NDArray expected = apply(probe, 1);
        NDArray local = upsample(probe).mul(ones);
        if (close(expected, local)) {
            selection = getPropagation().keep(ones);
        } else {
            window = null;
        }
    }

    /**
     * A check vector of uniform values in [-1, 1): any generic vector tells a wrong map from the
     * engine's, and uniform values are several times cheaper to draw than normal ones.
     */
    private static NDArray randomLike(NDArray output) {
        Random random = new Random(output.size());
        double[] values = new double[Math.toIntExact(output.size())];
        for (int i = 0; i < values.length; i++) {
            values[i] = 2 * random.nextDouble() - 1;
        }
        return HostArrays.create(output.getManager(), values, output.getShape())
                .toType(output.getDataType(), false);
    }

    private static boolean close(NDArray expected, NDArray actual) {
        if (!expected.getShape().equals(actual.getShape())) {
            return false;
        }
        double scale = expected.abs().max().toType(DataType.FLOAT64, false).getDouble();
        double error = expected.sub(actual).abs().max().toType(DataType.FLOAT64, false).getDouble();
        return error <= CHECK_TOLERANCE * scale;
    }

    /** {@inheritDoc} */
    @Override
    public TangentRule tangentRule() {
        return this;
    }

    /** {@inheritDoc} */
    @Override
    public boolean pushes() {
        return selection != null && window.length <= 3 || averageKernel != null;
    }

    /**
     * {@inheritDoc}
     *
     * <p>Non-overlapping windows sum each window of the tangents times the selection (the engine's
     * own, {@code J^T 1}), by the engine's average pooling ({@link #windowSums}); the recognized
     * average pooling is {@link #poolByMatrices}.
     */
    @Override
    public Tangents push(Tangents tangents, long from, long to) {
        Tangents grouped = tangents.isChannelWise() ? tangents : tangents.ungrouped();
        if (averageKernel == null) {
            NDArray own = selection.get(new NDIndex("{}:{}", from, to));
            NDArray selected = grouped.scale(own.reshape(to - from, inputShape.size())).channels();
            return grouped.fromChannels(windowSums(selected));
        }
        NDArray maps = grouped.channels();
        return grouped.fromChannels(poolByMatrices(maps));
    }

    /**
     * The recognized average pooling of maps {@code (M, C, spatial...)}: by one matrix product with
     * {@link #poolingMatrix} where that matrix is small enough, otherwise by one small product per
     * axis, the transposes of {@link #spreadByAxes}'s.
     */
    private NDArray poolByMatrices(NDArray maps) {
        Shape shape = maps.getShape().slice(0, 2).addAll(outputShape.slice(1));
        if (oneMatrix()) {
            long positions = inputShape.slice(1).size();
            return maps.reshape(-1, positions).matMul(poolingMatrix(maps)).reshape(shape);
        }
        int spatial = averageKernel.length;
        NDArray pooled = maps;
        long later = 1;
        for (int i = spatial - 1; i >= 0; i--) {
            long in = inputShape.get(i + 1);
            if (i == spatial - 1) {
                // (rows, in) times (in, out)
                pooled = pooled.reshape(-1, in).matMul(axisSpread(i, true, maps));
            } else {
                // (out, in) times every (in, later) block
                pooled = axisSpread(i, false, maps).matMul(pooled.reshape(-1, in, later));
            }
            later *= outputShape.get(i + 1);
        }
        return pooled.reshape(shape);
    }

    /**
     * Whether one matrix product over all positions of a map, {@code P_in x P_out} multiplications,
     * takes at most {@value #ONE_MATRIX_FACTOR} times those of the products per axis, whose small
     * matrices run slower per multiplication. Measured on {@code LeNet}'s tangents (float32, 2
     * cores): its 10x10 to 5x5 pooling (3.3 times the multiplications) took 15 ms for one matrix
     * against 40 to 50 ms per axis; its 28x28 to 14x14 pooling (9.3 times) 16 ms against 7.5 ms.
     */
    private boolean oneMatrix() {
        int spatial = averageKernel.length;
        long perAxis = 0;
        long done = 1;
        for (int i = spatial - 1; i >= 0; i--) {
            long before = inputShape.slice(1, i + 1).size();
            perAxis += before * inputShape.get(i + 1) * outputShape.get(i + 1) * done;
            done *= outputShape.get(i + 1);
        }
        long whole = inputShape.slice(1).size() * outputShape.slice(1).size();
        return whole <= ONE_MATRIX_FACTOR * perAxis;
    }

    /**
     * The recognized average pooling of one channel as one matrix {@code (input positions, output
     * positions)}, the product of the axes' matrices: one large matrix product pools many small
     * maps several times faster than one small product per axis.
     */
    private NDArray poolingMatrix(NDArray like) {
        int spatial = averageKernel.length;
        NDArray matrix = null;
        for (int i = 0; i < spatial; i++) {
            long in = inputShape.get(i + 1);
            long out = outputShape.get(i + 1);
            NDArray axis = axisSpread(i, true, like);
            if (matrix == null) {
                matrix = axis;
            } else {
                long rows = matrix.getShape().get(0);
                long columns = matrix.getShape().get(1);
                matrix =
                        matrix.reshape(rows, 1, columns, 1)
                                .mul(axis.reshape(1, in, 1, out))
                                .reshape(rows * in, columns * out);
            }
        }
        return matrix;
    }

    /**
     * The sums over the non-overlapping windows, as the engine's average pooling times the window
     * size (several times faster than summing a strided view, or than small matrix products).
     */
    private NDArray windowSums(NDArray maps) {
        Shape kernel = new Shape(window);
        Shape none = new Shape(new long[window.length]);
        NDArray averages;
        switch (window.length) {
            case 1:
                averages = Pool.avgPool1d(maps, kernel, kernel, none, false, true);
                break;
            case 2:
                averages = Pool.avgPool2d(maps, kernel, kernel, none, false, true);
                break;
            case 3:
                averages = Pool.avgPool3d(maps, kernel, kernel, none, false, true);
                break;
            default:
                throw new IllegalStateException("pooling over " + window.length + " axes");
        }
        return averages.muli(kernel.size());
    }

    /** {@inheritDoc} */
    @Override
    public long pushCost(long groups, long count) {
        return count * columnCost(true);
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
        if (!transposing) {
            return 0;
        }
        if (averageKernel == null) {
            // the selection's product, and the window sums
            return 2 * ELEMENT_COST * inputShape.size();
        }
        // the small matrix products per axis
        long perElement = 0;
        for (int i = 1; i < outputShape.dimension(); i++) {
            perElement += outputShape.get(i);
        }
        return inputShape.size() * perElement;
    }

    /** Repeats every output element over its window and pads to the input's size. */
    private NDArray upsample(NDArray rows) {
        NDArray spread = applyToPatches(rows);
        for (int i = 0; i < window.length; i++) {
            long covered = outputShape.get(i + 1) * window[i];
            spread = Strided.pad(spread, i + 2, 0, inputShape.get(i + 1) - covered);
        }
        return spread;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        return inputNeeded ? apply(gradient, 1) : null;
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet transpose(ColumnSet columns) {
        boolean localMap = selection != null || averageKernel != null;
        LocalColumns local = localMap ? columns.local() : null;
        if (local != null && local.fits(this, inputShape)) {
            return local.mapLocal(this, inputShape);
        }
        if (selection != null) {
            // every column repeated over the windows, times the selection: no autograd
            DenseColumns dense = columns.dense();
            long batch = dense.getBatchSize();
            long count = dense.getColumnCount();
            NDArray rows = dense.getValues().reshape(new Shape(batch * count).addAll(outputShape));
            NDArray spread =
                    upsample(rows)
                            .reshape(new Shape(batch, count).addAll(inputShape))
                            .mul(selection.expandDims(1));
            return new DenseColumns(
                    spread.reshape(batch, count, inputShape.size()), dense.getSigns(), inputShape);
        }
        return columns.mapSamples(this, inputShape);
    }

    /** {@inheritDoc} */
    @Override
    public long[] getLocalStride() {
        return averageKernel != null ? averageStride.clone() : window.clone();
    }

    /** {@inheritDoc} */
    @Override
    public long[] getLocalPadding() {
        return averageKernel != null ? averagePadding.clone() : new long[window.length];
    }

    /** {@inheritDoc} */
    @Override
    public long[] getLocalExtent() {
        return averageKernel != null ? averageKernel.clone() : window.clone();
    }

    /** {@inheritDoc} */
    @Override
    public NDArray applyToPatches(NDArray patches) {
        if (averageKernel != null) {
            return spreadAverage(patches, true);
        }
        NDArray spread = patches;
        for (int i = 0; i < window.length; i++) {
            spread = Strided.repeatEach(spread, i + 2, window[i]);
        }
        return spread;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray getLocalFactor() {
        return selection;
    }

    /** {@inheritDoc} */
    @Override
    public boolean carriesFactor() {
        return averageKernel == null;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray mapFactor(NDArray factor) {
        return factor == null ? selection : upsample(factor).mul(selection);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray apply(NDArray rows, long k) {
        if (averageKernel != null) {
            return spreadByAxes(rows);
        }
        return transposedProduct(k == 1 ? input.duplicate() : input.repeat(0, k), rows);
    }

    /** The vector-Jacobian product of the block at the given inputs with rows at its output. */
    private NDArray transposedProduct(NDArray repeated, NDArray rows) {
        Propagation propagation = getPropagation();
        SecondOrderEngine engine = propagation.getEngine();
        repeated.setRequiresGradient(true);
        RecordingScope recording = engine.recording(true);
        try {
            NDList outputs =
                    getBlock()
                            .forward(
                                    propagation.getParameterStore(),
                                    new NDList(repeated),
                                    propagation.isTraining());
            NDArray product = outputs.head().mul(rows.reshape(outputs.head().getShape())).sum();
            NDArray[] gradients = engine.gradient(product, new NDArray[] {repeated}, false);
            if (gradients[0] == null) {
                return repeated.zerosLike();
            }
            return gradients[0];
        } finally {
            recording.close();
        }
    }

    /** {@inheritDoc} */
    @Override
    public long workElements(ColumnSet columns, long count, boolean transposing) {
        if (!transposing) {
            return columns.elementCount(count);
        }
        if ((selection != null || averageKernel != null) && columns instanceof LocalColumns) {
            LocalColumns local = (LocalColumns) columns;
            return columns.elementCount(count) + local.mapElements(this, inputShape, count);
        }
        if (averageKernel != null) {
            // one product per axis, none larger than the input
            long perColumn = averageKernel.length * inputShape.size();
            return columns.elementCount(count) + columns.getBatchSize() * count * perColumn;
        }
        if (selection != null && columns.localWindow() != null) {
            // the identity kernel, repeated over the windows, and the selection as its factor
            long batch = columns.getBatchSize();
            long channels = inputShape.get(0);
            long kernels = channels * channels * inputShape.slice(1).size() / outputShape.size();
            return columns.elementCount(count)
                    + 2 * batch * count
                    + 2 * kernels
                    + 3 * batch * inputShape.size();
        }
        long perColumn = columnElements();
        if (selection != null) {
            // the dense columns, repeated twice, padded and multiplied by the selection
            perColumn = 2 * outputShape.size() + 4 * inputShape.size();
        }
        return columns.elementCount(count) + columns.getBatchSize() * count * perColumn;
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        return inputShape == null ? 0 : 2 * (inputShape.size() + outputShape.size());
    }

    /** What a pooling block's windows were found to be for one input shape: one or none. */
    private static final class Windows {

        private final long[] window;
        private final long[][] average;

        Windows(long[] window, long[][] average) {
            this.window = window;
            this.average = average;
        }
    }
}
