package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.convolutional.Conv1d;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.convolutional.Conv3d;
import ai.djl.nn.convolutional.Convolution;
import java.util.Arrays;
import org.secorder.evaluation.HostArrays;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DenseColumns;
import org.secorder.structured.internal.columns.DiagonalColumns;
import org.secorder.structured.internal.columns.LocalColumns;
import org.secorder.structured.internal.columns.LocalMap;
import org.secorder.structured.internal.columns.RowMap;
import org.secorder.structured.internal.propagation.Accumulators;
import org.secorder.structured.internal.propagation.LeafLayer;
import org.secorder.structured.internal.propagation.Propagation;
import org.secorder.structured.internal.propagation.TangentRule;
import org.secorder.structured.internal.propagation.Tangents;

/**
 * A convolution ({@code Conv1d}, {@code Conv2d}, {@code Conv3d}) with any stride, padding, dilation
 * and groups.
 *
 * <p>The transposed Jacobian with respect to the input is a transposed convolution, computed as a
 * plain convolution of the zero-interleaved, padded columns with the flipped kernel. The weight
 * needs {@code sum_c sign (J_W^T s_c)^2} per sample, from each column correlated with the unfolded
 * input.
 *
 * <p>Columns that each hit one output element (the curvature of an activation right above) need no
 * per-column product: their weight diagonal is the unfolded input squared, weighted by the column
 * diagonal, one product for all. Columns local to windows of the output ({@link LocalColumns}) are
 * correlated with the unfolded input inside their windows only.
 */
public final class ConvolutionLayer extends LeafLayer implements RowMap, LocalMap, TangentRule {

    private final Parameter weight;
    private final Parameter bias;
    private final Shape kernel;
    private final Shape stride;
    private final Shape padding;
    private final Shape dilation;
    private final int groups;
    private final int spatial;
    private Shape inputShape;
    private Shape outputShape;
    private long[] outputPadding;
    private NDArray flippedWeight;
    private NDArray patches;
    private final Accumulators.Deferred pointRule = this::finishPoints;

    /** Per product: writing, squaring and summing it, in multiplications' worth of time. */
    private static final long PRODUCT_OVERHEAD = 8;

    /** Per product of two unfolded inputs: slicing, multiplying and joining them. */
    private static final long PAIR_OVERHEAD = 4;

    /**
     * Creates the layer of a convolution block.
     *
     * @param description the block's path and kind
     * @param block the block
     */
    public ConvolutionLayer(String description, Convolution block) {
        super(description, block);
        weight = block.getParameters().get("weight");
        bias = block.isIncludeBias() ? block.getParameters().get("bias") : null;
        kernel = block.getKernelShape();
        stride = block.getStride();
        padding = block.getPadding();
        dilation = block.getDilation();
        groups = block.getGroups();
        spatial = kernel.dimension();
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forwardLeaf(NDArray input) {
        if (input.getShape().dimension() != spatial + 2) {
            throw new UnsupportedOperationException(
                    getDescription() + " gets an input of shape " + input.getShape());
        }
        Propagation propagation = getPropagation();
        NDArray output = runBlock(input);
        Class<?> type = getBlock().getClass();
        if (type != Conv1d.class && type != Conv2d.class && type != Conv3d.class) {
            // a subclass may compute something else: check that it is the convolution
            NDArray expected =
                    input.getNDArrayInternal()
                            .convolution(
                                    input,
                                    weight.getArray(),
                                    bias == null ? null : bias.getArray(),
                                    stride,
                                    padding,
                                    dilation,
                                    groups)
                            .head();
            Outputs.check(this, output, expected, "the convolution of its settings");
        }
        inputShape = input.getShape().slice(1);
        outputShape = output.getShape().slice(1);
        outputPadding = new long[spatial];
        for (int i = 0; i < spatial; i++) {
            long reach = (outputShape.get(i + 1) - 1) * stride.get(i) - 2 * padding.get(i);
            outputPadding[i] =
                    inputShape.get(i + 1) - (reach + dilation.get(i) * (kernel.get(i) - 1) + 1);
        }
        flippedWeight = propagation.keep(flip(weight.getArray()));
        patches = propagation.keep(unfold(input));
        return output;
    }

    private NDArray flip(NDArray array) {
        Shape shape = array.getShape();
        long filters = shape.get(0);
        long perGroup = shape.get(1);
        Shape grouped = new Shape(groups, filters / groups, perGroup).addAll(kernel);
        int[] order = new int[spatial + 3];
        order[0] = 0;
        order[1] = 2;
        order[2] = 1;
        int[] flipped = new int[spatial];
        for (int i = 0; i < spatial; i++) {
            order[i + 3] = i + 3;
            flipped[i] = i + 2;
        }
        NDArray swapped = array.reshape(grouped).transpose(order);
        return swapped.reshape(new Shape(groups * perGroup, filters / groups).addAll(kernel))
                .flip(flipped);
    }

    private NDArray unfold(NDArray input) {
        long offsets = kernel.size();
        long batch = input.getShape().get(0);
        long channels = inputShape.get(0);
        long positions = outputShape.slice(1).size();
        NDArray stacked =
                Strided.windows(input, kernel, stride, padding, dilation, outputShape.slice(1));
        return stacked.reshape(batch, groups, channels / groups * offsets, positions)
                .transpose(0, 1, 3, 2)
                .reshape(batch * groups, positions, channels / groups * offsets);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        return inputNeeded ? apply(gradient) : null;
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet transpose(ColumnSet columns) {
        LocalColumns local = columns.local();
        if (local != null && local.fits(this, inputShape)) {
            return local.mapLocal(this, inputShape);
        }
        return columns.map(this, inputShape);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray apply(NDArray rows) {
        return transposedConvolution(rows, false);
    }

    /** {@inheritDoc} */
    @Override
    public long[] getLocalStride() {
        return stride.getShape().clone();
    }

    /** {@inheritDoc} */
    @Override
    public long[] getLocalPadding() {
        return padding.getShape().clone();
    }

    /** {@inheritDoc} */
    @Override
    public long[] getLocalExtent() {
        long[] extent = new long[spatial];
        for (int i = 0; i < spatial; i++) {
            extent[i] = (kernel.get(i) - 1) * dilation.get(i) + 1;
        }
        return extent;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray applyToPatches(NDArray patches) {
        return transposedConvolution(patches, true);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray getLocalFactor() {
        return null;
    }

    /** {@inheritDoc} */
    @Override
    public boolean carriesFactor() {
        return false;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray mapFactor(NDArray factor) {
        throw new UnsupportedOperationException("a convolution mixes its input's elements");
    }

    /**
     * The transposed convolution of rows at the output: onto the whole input, or, for patches, onto
     * every input position that the patch reaches, without cropping the padding.
     */
    private NDArray transposedConvolution(NDArray rows, boolean full) {
        if (!full && isStrided()) {
            NDArray phased = polyphaseTransposedConvolution(rows);
            if (phased != null) {
                return phased;
            }
        }
        NDArray spread = rows;
        long[] margins = new long[spatial];
        for (int i = 0; i < spatial; i++) {
            long reach = dilation.get(i) * (kernel.get(i) - 1);
            long margin = full ? reach : reach - padding.get(i);
            spread = Strided.interleaveZeros(spread, i + 2, stride.get(i));
            long after = full ? 0 : outputPadding[i];
            if (margin >= 0) {
                // the convolution pads both sides itself, without a copy of the columns; only
                // the output padding, at the end, is added here
                margins[i] = margin;
                spread = Strided.pad(spread, i + 2, 0, after);
            } else {
                spread = Strided.pad(spread, i + 2, margin, margin + after);
            }
        }
        long[] ones = new long[spatial];
        Arrays.fill(ones, 1);
        return spread.getNDArrayInternal()
                .convolution(
                        spread,
                        flippedWeight,
                        null,
                        new Shape(ones),
                        new Shape(margins),
                        dilation,
                        groups)
                .head();
    }

    private boolean isStrided() {
        for (int i = 0; i < spatial; i++) {
            if (stride.get(i) > 1) {
                return true;
            }
        }
        return false;
    }

    /**
     * The transposed convolution onto the whole input, one small convolution per phase of the input
     * positions modulo the stride, instead of one convolution of the zero-interleaved rows, which
     * multiplies {@code stride^d} times as many zeros as values.
     *
     * <p>Along one axis, the input position {@code i = r + s j} receives {@code sum_k w[k] g[j + (r
     * + pad - k d) / s]} over the taps {@code k} for which {@code r + pad - k d} is a multiple of
     * the stride {@code s}: every {@code s / gcd(d, s)}-th tap, at output offsets {@code d / gcd(d,
     * s)} apart. So phase {@code r} is a stride-1 convolution of the shifted rows with those taps
     * of the flipped kernel, dilated by {@code d / gcd(d, s)}. The phases, each {@code ceil(I / s)}
     * long, are interleaved by stacking and cropped to the input.
     */
    private NDArray polyphaseTransposedConvolution(NDArray rows) {
        int phaseCount = 1;
        long[] phaseLengths = new long[spatial];
        for (int i = 0; i < spatial; i++) {
            phaseCount *= Math.toIntExact(stride.get(i));
            phaseLengths[i] = (inputShape.get(i + 1) + stride.get(i) - 1) / stride.get(i);
        }
        NDList phases = new NDList(phaseCount);
        long[] residues = new long[spatial];
        for (int phase = 0; phase < phaseCount; phase++) {
            int rest = phase;
            for (int i = spatial - 1; i >= 0; i--) {
                residues[i] = rest % stride.get(i);
                rest /= Math.toIntExact(stride.get(i));
            }
            NDArray part = phase(rows, residues, phaseLengths);
            if (part == null) {
                return null;
            }
            phases.add(part);
        }
        // interleave the last axis first: the phases are in row-major order of their residues
        for (int i = spatial - 1; i >= 0; i--) {
            int step = Math.toIntExact(stride.get(i));
            if (step == 1) {
                continue;
            }
            NDList merged = new NDList(phases.size() / step);
            for (int first = 0; first < phases.size(); first += step) {
                NDArray stacked =
                        NDArrays.stack(new NDList(phases.subList(first, first + step)), i + 3);
                Shape shape = stacked.getShape();
                Shape joined =
                        shape.slice(0, i + 2)
                                .add(shape.get(i + 2) * step)
                                .addAll(shape.slice(i + 4));
                merged.add(stacked.reshape(joined));
            }
            phases = merged;
        }
        NDArray result = phases.head();
        for (int i = 0; i < spatial; i++) {
            if (result.getShape().get(i + 2) != inputShape.get(i + 1)) {
                result = Strided.slice(result, i + 2, 0, inputShape.get(i + 1), 1);
            }
        }
        return result;
    }

    /**
     * One phase of {@link #polyphaseTransposedConvolution}, {@code lengths} long on every axis, or
     * {@code null} where the padding leaves the phase none of the rows.
     */
    private NDArray phase(NDArray rows, long[] residues, long[] lengths) {
        NDArray taps = flippedWeight;
        NDArray shifted = rows;
        long[] dilations = new long[spatial];
        for (int i = 0; i < spatial; i++) {
            long s = stride.get(i);
            long d = dilation.get(i);
            long size = kernel.get(i);
            long r = residues[i];
            long p = padding.get(i);
            long common = gcd(d, s);
            long tapStep = s / common;
            long first = -1;
            for (long k = 0; k < Math.min(size, tapStep) && first < 0; k++) {
                if (Math.floorMod(r + p - k * d, s) == 0) {
                    first = k;
                }
            }
            if (first < 0) {
                // no tap reaches these input positions
                Shape shape =
                        new Shape(rows.getShape().get(0), inputShape.get(0))
                                .addAll(new Shape(lengths));
                return rows.getManager().zeros(shape, rows.getDataType());
            }
            long count = (size - 1 - first) / tapStep + 1;
            long last = first + (count - 1) * tapStep;
            long offset = Math.floorDiv(r + p - last * d, s);
            dilations[i] = d / common;
            // the flipped kernel holds tap k at size - 1 - k: the taps last, ..., first
            long from = size - 1 - last;
            taps = Strided.slice(taps, i + 2, from, from + (count - 1) * tapStep + 1, tapStep);
            long outputLength = outputShape.get(i + 1);
            long after = lengths[i] + (count - 1) * dilations[i] + offset - outputLength;
            if (Math.max(0, offset) + Math.max(0, -after) >= outputLength) {
                // a padding so wide that a phase sees none of the rows: the general route
                return null;
            }
            shifted = Strided.pad(shifted, i + 2, -offset, after);
        }
        long[] ones = new long[spatial];
        Arrays.fill(ones, 1);
        return shifted.getNDArrayInternal()
                .convolution(
                        shifted,
                        taps,
                        null,
                        new Shape(ones),
                        new Shape(new long[spatial]),
                        new Shape(dilations),
                        groups)
                .head();
    }

    private static long gcd(long a, long b) {
        return b == 0 ? a : gcd(b, a % b);
    }

    /** {@inheritDoc} */
    @Override
    public void accumulate(ColumnSet columns) {
        NDArray points = columns.pointDiagonal();
        if (points != null) {
            getPropagation().getAccumulators().defer(pointRule, points);
            return;
        }
        if (columns instanceof LocalColumns) {
            accumulateLocal((LocalColumns) columns);
            return;
        }
        DenseColumns dense = columns.dense();
        long batch = dense.getBatchSize();
        long count = dense.getColumnCount();
        long filters = outputShape.get(0);
        long positions = outputShape.slice(1).size();
        NDArray values = dense.getValues();
        Accumulators accumulators = getPropagation().getAccumulators();
        NDArray weightSquares =
                usePairs(count)
                        ? pairSquares(values, dense.getSigns(), batch, count)
                        : productSquares(values, dense.getSigns(), batch, count);
        Shape weightShape = weightShape();
        accumulators.add(
                weight,
                weightSquares.reshape(
                        accumulators.isPerSample()
                                ? new Shape(batch).addAll(weightShape)
                                : weightShape));
        if (bias != null) {
            NDArray sums = values.reshape(batch, count, filters, positions).sum(new int[] {3});
            NDArray biasSquares = dense.signedColumnSum(sums.square());
            accumulators.addPerSample(bias, biasSquares);
        }
    }

    /**
     * Whether the weight diagonal of {@code count} dense columns is cheaper through the pairs of
     * output positions than through every column's product with the unfolded input.
     *
     * <p>Per sample, the products take {@code count * P} multiplications per weight and write,
     * square and sum {@code count} values per weight; the pairs take {@code P (P + 1) / 2}
     * multiplications per weight in one large matrix product, plus the products of the unfolded
     * input's pairs (as large as the weights' share of it for a depthwise convolution) and the
     * columns' Gram matrices.
     */
    private boolean usePairs(long count) {
        long positions = outputShape.slice(1).size();
        long pairs = positions * (positions + 1) / 2;
        long filters = outputShape.get(0);
        long unfolded = patches.getShape().get(2);
        long weights = filters * unfolded;
        double productCost = (double) weights * count * (positions + PRODUCT_OVERHEAD);
        double pairCost =
                (double) pairs * (weights + groups * unfolded * PAIR_OVERHEAD)
                        + (double) filters * count * positions * positions;
        return pairCost <= productCost;
    }

    /**
     * {@code sum_c sign_c (V_c X)^2} from every column's product with the unfolded input, in blocks
     * of samples (and of columns, where one sample's products are too large) within the working
     * set.
     *
     * @return {@code (N, weights)} per sample, or the sum over the batch
     */
    private NDArray productSquares(NDArray values, NDArray signs, long batch, long count) {
        long filters = outputShape.get(0);
        long perGroup = filters / groups;
        long positions = outputShape.slice(1).size();
        long unfolded = patches.getShape().get(2);
        long weights = filters * unfolded;
        boolean perSample = getPropagation().getAccumulators().isPerSample();
        // (N G, K, F / G, P): each sample's and group's columns
        NDArray grouped =
                groups == 1
                        ? values.reshape(batch, count, perGroup, positions)
                        : values.reshape(batch, count, groups, perGroup, positions)
                                .transpose(0, 2, 1, 3, 4)
                                .reshape(batch * groups, count, perGroup, positions);
        long limit = workingElements();
        long samplesPerBlock = Math.max(1, Math.min(batch, limit / (count * weights)));
        long columnsPerBlock =
                samplesPerBlock > 1 ? count : Math.max(1, Math.min(count, limit / weights));
        NDList parts = new NDList();
        NDArray total = null;
        for (long from = 0; from < batch; from += samplesPerBlock) {
            long to = Math.min(batch, from + samplesPerBlock);
            NDArray inputs = patches.get(new NDIndex("{}:{}", from * groups, to * groups));
            NDArray blockSum = null;
            for (long first = 0; first < count; first += columnsPerBlock) {
                long last = Math.min(count, first + columnsPerBlock);
                NDArray block =
                        grouped.get(
                                        new NDIndex(
                                                "{}:{}, {}:{}",
                                                from * groups,
                                                to * groups,
                                                first,
                                                last))
                                .reshape(
                                        (to - from) * groups, (last - first) * perGroup, positions);
                // the largest arrays of the rule (samples x columns x weights): squared and
                // signed in place, and summed over the columns and, unless per sample, the
                // samples in one reduction
                NDArray products = block.matMul(inputs);
                NDArray squares =
                        products.muli(products).reshape(to - from, groups, last - first, -1);
                if (signs != null) {
                    squares.muli(
                            signs.get(new NDIndex("{}:{}, {}:{}", from, to, first, last))
                                    .reshape(to - from, 1, last - first, 1));
                }
                NDArray sum =
                        perSample ? squares.sum(new int[] {2}) : squares.sum(new int[] {0, 2});
                products.close();
                blockSum = add(blockSum, sum);
            }
            if (perSample) {
                parts.add(blockSum);
            } else {
                total = add(total, blockSum);
            }
        }
        return perSample ? concat(parts) : total;
    }

    /**
     * {@code sum_c sign_c (V_c X)^2} through the pairs of output positions: per sample and group,
     * {@code sum_{p, q} (sum_c sign_c v_cp v_cq) (x_p x_q)}, the two symmetric factors kept for
     * {@code p <= q} with the pairs {@code p < q} counted twice, contracted over the pairs (and,
     * unless per sample, the samples) in one matrix product, in blocks of samples within the
     * working set.
     *
     * @return {@code (N, weights)} per sample, or the sum over the batch
     */
    private NDArray pairSquares(NDArray values, NDArray signs, long batch, long count) {
        long filters = outputShape.get(0);
        long perGroup = filters / groups;
        long positions = outputShape.slice(1).size();
        long pairs = positions * (positions + 1) / 2;
        long unfolded = patches.getShape().get(2);
        boolean perSample = getPropagation().getAccumulators().isPerSample();
        // (N, F, K, P): the columns of every filter
        NDArray columnsFirst =
                values.reshape(batch, count, filters, positions).transpose(0, 2, 1, 3);
        NDArray weights = pairWeights(values.getManager(), positions, values);
        long limit = workingElements();
        long perSampleElements =
                filters * (2 * count * positions + positions * positions + pairs)
                        + groups * pairs * unfolded
                        + (perSample ? filters * unfolded : 0);
        long samplesPerBlock = Math.max(1, Math.min(batch, limit / perSampleElements));
        NDList parts = new NDList();
        NDArray total = null;
        for (long from = 0; from < batch; from += samplesPerBlock) {
            long to = Math.min(batch, from + samplesPerBlock);
            long samples = to - from;
            NDIndex block = new NDIndex("{}:{}", from, to);
            NDArray own = columnsFirst.get(block);
            NDArray signed =
                    signs == null ? own : own.mul(signs.get(block).reshape(samples, 1, count, 1));
            // (n F, P, P): sum_c sign_c v_cp v_cq
            NDArray gram =
                    own.transpose(0, 1, 3, 2)
                            .reshape(samples * filters, positions, count)
                            .matMul(signed.reshape(samples * filters, count, positions));
            NDArray factor = upperTriangle(gram).muli(weights);
            gram.close();
            NDArray inputs = patches.get(new NDIndex("{}:{}", from * groups, to * groups));
            // (n G, pairs, U): x_p x_q for p <= q
            NDArray inputFactor = upperPairs(inputs);
            if (perSample) {
                parts.add(
                        factor.reshape(samples * groups, perGroup, pairs)
                                .matMul(inputFactor)
                                .reshape(samples, filters * unfolded));
            } else {
                NDArray left =
                        factor.reshape(samples, groups, perGroup, pairs)
                                .transpose(1, 2, 0, 3)
                                .reshape(groups, perGroup, samples * pairs);
                NDArray right =
                        inputFactor
                                .reshape(samples, groups, pairs, unfolded)
                                .transpose(1, 0, 2, 3)
                                .reshape(groups, samples * pairs, unfolded);
                total = add(total, left.matMul(right).reshape(filters * unfolded));
            }
            factor.close();
            inputFactor.close();
        }
        return perSample ? concat(parts) : total;
    }

    /** {@code (M, P, P) -> (M, P (P + 1) / 2)}: the entries {@code p <= q}, row by row. */
    private static NDArray upperTriangle(NDArray square) {
        long positions = square.getShape().get(1);
        if (positions == 1) {
            return square.reshape(square.getShape().get(0), 1);
        }
        NDList rows = new NDList(Math.toIntExact(positions));
        for (long p = 0; p < positions; p++) {
            rows.add(square.get(new NDIndex(":, {}, {}:", p, p)));
        }
        return NDArrays.concat(rows, 1);
    }

    /** {@code (M, P, U) -> (M, P (P + 1) / 2, U)}: {@code x_p x_q} for {@code p <= q}, as above. */
    private static NDArray upperPairs(NDArray inputs) {
        long positions = inputs.getShape().get(1);
        if (positions == 1) {
            return inputs.square();
        }
        NDList rows = new NDList(Math.toIntExact(positions));
        for (long p = 0; p < positions; p++) {
            NDArray row = inputs.get(new NDIndex(":, {}:{}", p, p + 1));
            rows.add(inputs.get(new NDIndex(":, {}:", p)).mul(row));
        }
        return NDArrays.concat(rows, 1);
    }

    /** One for the pairs {@code p = q}, two for {@code p < q}, in the order above. */
    private static NDArray pairWeights(NDManager manager, long positions, NDArray like) {
        float[] weights = new float[Math.toIntExact(positions * (positions + 1) / 2)];
        int k = 0;
        for (long p = 0; p < positions; p++) {
            for (long q = p; q < positions; q++) {
                weights[k++] = p == q ? 1 : 2;
            }
        }
        return HostArrays.create(manager, weights, new Shape(weights.length))
                .toType(like.getDataType(), false);
    }

    private static NDArray add(NDArray sum, NDArray part) {
        if (sum == null) {
            return part;
        }
        sum.addi(part);
        part.close();
        return sum;
    }

    private static NDArray concat(NDList parts) {
        return parts.size() == 1 ? parts.head() : NDArrays.concat(parts, 0);
    }

    /** The most elements the weight rule of dense columns holds at once. */
    private long workingElements() {
        return getPropagation().columnsWithinLimit(0, 1);
    }

    /**
     * Columns with one entry each: {@code sum_c sign (v_c x_p)^2 = sum_p d[c, p] x_p^2} for the
     * filter {@code c} of the entry, {@code d} the diagonal of the columns.
     */
    private void finishPoints(NDArray diagonal, Accumulators accumulators) {
        long batch = diagonal.getShape().get(0);
        long filters = outputShape.get(0);
        long positions = outputShape.slice(1).size();
        NDArray grouped = diagonal.reshape(batch * groups, filters / groups, positions);
        NDArray squares = patches.square();
        NDArray weightSquares =
                grouped.matMul(squares).reshape(new Shape(batch).addAll(weightShape()));
        squares.close();
        accumulators.addPerSample(weight, weightSquares);
        if (bias != null) {
            NDArray biasSquares = diagonal.reshape(batch, filters, positions).sum(new int[] {2});
            accumulators.addPerSample(bias, biasSquares);
        }
    }

    /**
     * Columns local to windows of the output: each column's product with the unfolded input is
     * taken over its window only.
     */
    private void accumulateLocal(LocalColumns local) {
        long batch = local.getBatchSize();
        Shape map =
                new Shape(batch * groups, patches.getShape().get(2)).addAll(outputShape.slice(1));
        if (local.isShared() && local.hasFactor() && groups == 1) {
            NDArray[] squares = local.sharedCorrelations(patches, getPropagation().pieceElements());
            Accumulators accumulators = getPropagation().getAccumulators();
            NDArray weightSquares = squares[0].reshape(new Shape(batch).addAll(weightShape()));
            accumulators.addPerSample(weight, weightSquares);
            if (bias != null) {
                accumulators.addPerSample(bias, squares[1]);
            }
            return;
        }
        LocalColumns columns = local.perColumn();
        long count = columns.getColumnCount();
        long filters = outputShape.get(0);
        long perGroup = filters / groups;
        NDArray patchValues = columns.getPatches();
        long shared = patchValues.getShape().get(0);
        long window = patchValues.getShape().get(3);
        long unfolded = patches.getShape().get(2);
        // (N G, K, F, R) -> (N G K, R, F): the unfolded input in every column's window
        NDArray inputs =
                columns.windows(patches.transpose(0, 2, 1).reshape(map))
                        .transpose(0, 1, 3, 2)
                        .reshape(batch * groups * count, window, unfolded);
        NDArray values =
                patchValues
                        .reshape(shared, count, groups, perGroup, window)
                        .transpose(0, 2, 1, 3, 4);
        if (shared != batch) {
            values = values.broadcast(new Shape(batch, groups, count, perGroup, window));
        }
        NDArray products = values.reshape(batch * groups * count, perGroup, window).matMul(inputs);
        NDArray weights = columns.columnWeights();
        NDArray squares = products.square().reshape(batch, groups, count, perGroup * unfolded);
        NDArray weighted = squares.mul(weights.reshape(batch, 1, count, 1));
        NDArray weightSquares =
                weighted.sum(new int[] {2}).reshape(new Shape(batch).addAll(weightShape()));
        Accumulators accumulators = getPropagation().getAccumulators();
        accumulators.addPerSample(weight, weightSquares);
        if (bias != null) {
            // patch values are zero outside the output, so the window sum is the column's sum
            NDArray sums = patchValues.sum(new int[] {3}).square();
            NDArray biasSquares = sums.mul(weights.expandDims(2)).sum(new int[] {1});
            accumulators.addPerSample(bias, biasSquares);
        }
    }

    /** {@inheritDoc} */
    @Override
    public TangentRule tangentRule() {
        return this;
    }

    /** {@inheritDoc} */
    @Override
    public boolean pushes() {
        return groups == 1;
    }

    /**
     * {@inheritDoc}
     *
     * <p>The convolution without its bias. Tangents in {@code G} groups of {@code C / G} input
     * channels each are one grouped convolution of {@code G T} groups, every tangent with the
     * kernel's slice for its own channels: the zeros outside them take no work.
     */
    @Override
    public Tangents push(Tangents tangents, long from, long to) {
        Tangents grouped = tangents.isChannelWise() ? tangents : tangents.ungrouped();
        long samples = to - from;
        long count = grouped.getCount();
        long blocks = grouped.getGroups();
        long channels = inputShape.get(0) / blocks;
        long filters = outputShape.get(0);
        NDArray kernels = weight.getArray();
        NDArray inputs;
        if (blocks == 1) {
            inputs = grouped.channels();
        } else {
            inputs =
                    grouped.getValues()
                            .reshape(
                                    new Shape(samples, blocks * count * channels)
                                            .addAll(inputShape.slice(1)));
            int[] order = new int[spatial + 3];
            order[0] = 1;
            order[1] = 0;
            for (int i = 2; i < order.length; i++) {
                order[i] = i;
            }
            Shape perBlock = new Shape(filters, channels).addAll(kernel);
            kernels =
                    kernels.reshape(new Shape(filters, blocks, channels).addAll(kernel))
                            .transpose(order)
                            .expandDims(1)
                            .broadcast(new Shape(blocks, count).addAll(perBlock))
                            .reshape(new Shape(blocks * count * filters, channels).addAll(kernel));
        }
        NDArray mapped =
                inputs.getNDArrayInternal()
                        .convolution(
                                inputs,
                                kernels,
                                null,
                                stride,
                                padding,
                                dilation,
                                Math.toIntExact(blocks == 1 ? 1 : blocks * count))
                        .head();
        return new Tangents(
                mapped.reshape(samples, 1, blocks * count, outputShape.size()), outputShape);
    }

    /** {@inheritDoc} */
    @Override
    public long pushCost(long blocks, long count) {
        return blocks * count * outputShape.size() * (inputShape.get(0) / blocks) * kernel.size();
    }

    /** {@inheritDoc} */
    @Override
    public long outputFeatures() {
        return outputShape.size();
    }

    /** {@inheritDoc} */
    @Override
    public boolean keepsGroups() {
        return false;
    }

    /** {@inheritDoc} */
    @Override
    public long columnCost(boolean transposing) {
        // the weight products, and the transposed convolution
        return (transposing ? 2 : 1)
                * outputShape.size()
                * (inputShape.get(0) / groups)
                * kernel.size();
    }

    /**
     * {@inheritDoc}
     *
     * <p>One group per filter, non-zero in its own output channel: the unfolded input for the
     * filter's weights, ones for its bias.
     */
    @Override
    public Tangents parameterTangents(long from, long to) {
        long samples = to - from;
        long positions = outputShape.slice(1).size();
        NDArray inputs = patches.get(new NDIndex("{}:{}", from, to)).transpose(0, 2, 1);
        if (bias != null) {
            inputs =
                    inputs.concat(
                            inputs.getManager()
                                    .ones(new Shape(samples, 1, positions), inputs.getDataType()),
                            1);
        }
        long count = inputs.getShape().get(1);
        return new Tangents(
                inputs.expandDims(1).broadcast(samples, outputShape.get(0), count, positions),
                outputShape);
    }

    /** {@inheritDoc} */
    @Override
    public long[] parameterTangentShape() {
        return new long[] {outputShape.get(0), patches.getShape().get(2) + (bias == null ? 0 : 1)};
    }

    /** {@inheritDoc} */
    @Override
    public void addTangentSquares(NDArray squares, Accumulators accumulators) {
        long batch = squares.getShape().get(0);
        long unfolded = patches.getShape().get(2);
        accumulators.addPerSample(
                weight,
                squares.get(new NDIndex(":, :, 0:{}", unfolded))
                        .reshape(new Shape(batch).addAll(weightShape())));
        if (bias != null) {
            accumulators.addPerSample(
                    bias, squares.get(new NDIndex(":, :, {}", unfolded)).duplicate());
        }
    }

    private Shape weightShape() {
        return weight.getArray().getShape();
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasParameters() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public long workElements(ColumnSet columns, long count, boolean transposing) {
        long[] window = columns.localWindow();
        if (window != null && inputShape != null) {
            long batch = columns.getBatchSize();
            long area = 1;
            for (long length : window) {
                area *= length;
            }
            long unfolded = patches.getShape().get(2) * groups;
            // the point rule: the diagonal of the columns, mapped once when results are taken
            long work = columns.elementCount(count) + batch * outputShape.size();
            long next = localInputWindow(window);
            if (columns instanceof LocalColumns) {
                LocalColumns local = (LocalColumns) columns;
                if (local.isShared() && local.hasFactor() && groups == 1) {
                    work +=
                            local.sharedCorrelationElements(
                                    unfolded, count, getPropagation().pieceElements());
                } else {
                    // the per-column rule: the input in the windows with its index, products
                    work += batch * count * 2 * outputShape.get(0) * area;
                    work +=
                            batch
                                    * count
                                    * (3 * unfolded * area + 3 * weightShape().size() / groups);
                }
                if (transposing) {
                    work += local.mapElements(this, inputShape, count);
                }
            } else if (transposing) {
                // the identity kernel through the convolution; materialized under a factor
                work += 2 * batch * count + 2 * outputShape.get(0) * inputShape.get(0) * next;
                boolean plain =
                        columns instanceof DiagonalColumns
                                && !((DiagonalColumns) columns).hasFactor();
                if (!plain) {
                    long rows = columns.isPerSample() ? batch * count : count;
                    work += rows * next * (4 * inputShape.get(0) + 2);
                }
            }
            return work;
        }
        long perSample = columnElements();
        if (!transposing) {
            perSample -= 3 * inputShape.size();
        }
        long batch = columns.getBatchSize();
        // the weight rule's products or pair factors, in blocks within the working set
        long products = Math.min(workingElements(), batch * Math.max(1, count) * weightSize());
        return columns.elementCount(count) + batch * count * perSample + products;
    }

    private long localInputWindow(long[] window) {
        long area = 1;
        long[] extent = getLocalExtent();
        for (int i = 0; i < spatial; i++) {
            area *= (window[i] - 1) * stride.get(i) + extent[i];
        }
        return area;
    }

    /**
     * Returns the elements per sample and column: the dense columns (and their regrouped copy where
     * there are groups; the signs multiply in place), and the spread, padded and transposed
     * columns. The weight rule's products are not per column: it takes them in blocks within the
     * working set. Counting more here than the rule holds would make {@code Computation} slice the
     * batch, and every slice repeats the forward pass and the fixed work of every rule.
     *
     * @return the element count
     */
    @Override
    public long columnElements() {
        if (inputShape == null) {
            return 0;
        }
        return (groups > 1 ? 2 : 1) * outputShape.size() + 3 * inputShape.size();
    }

    private long weightSize() {
        return weight.getArray().size();
    }
}
