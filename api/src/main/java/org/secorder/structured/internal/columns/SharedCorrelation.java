package org.secorder.structured.internal.columns;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.secorder.evaluation.HostArrays;

/**
 * The products of shared local columns with the unfolded input of the convolution below them, for
 * the convolution's parameter rule: per sample, {@code sum_k w_k (X^T v_k)^2} and {@code sum_k w_k
 * (sum v_k)^2} per channel, {@code w_k = sign_k scale_k^2}.
 *
 * <p>Column {@code k} is its origin channel's kernel times the factor map in the window at its
 * origin, so its product with unfolded input feature {@code f} is the correlation of that kernel
 * with {@code Z_f = factor * X_f} over the window. The products of all columns are therefore one
 * convolution of {@code Z}, a batch of {@code N F} maps, with the kernels as filters grouped by
 * channel, at the stride and window size of the columns' geometry. Where the kernel repeats its
 * values over blocks (it passed non-overlapping pooling), {@code Z} is first summed over the blocks
 * and the kernel taken once per block, which also skips the zeros of a max pooling's selection.
 *
 * <p>A chunk's origin positions are a range in the flat order of the origin grid; they are covered
 * by at most {@code 2 d - 1} boxes (a partial row, full rows, a partial row, recursively), each one
 * convolution over the windows of its positions only, in a scope of its own.
 */
final class SharedCorrelation {

    private final Shape features;
    private final NDArray kernel;
    private NDArray map;
    private final NDArray weights;
    private final long[] origins;
    private final long[] channelsOf;
    private final long[] grid;
    private final long[] stride;
    private final long[] padding;
    private final long[] size;
    private final long[] blocks;

    /**
     * Creates the products of a chunk of shared columns.
     *
     * @param features the feature shape {@code (C, spatial...)} at the convolution's output
     * @param kernel one kernel per origin channel, {@code (Co, C, prod(size))}
     * @param map the factor map, {@code (N or 1, C or 1, spatial...)}, or {@code null} for ones
     * @param weights the columns' weights, {@code (N, K)}
     * @param origins the origin position of every column
     * @param channelsOf the origin channel of every column
     * @param geometry the origin grid, the stride, padding and window size, and the blocks over
     *     which the kernel repeats its values (or {@code null} for none)
     */
    SharedCorrelation(
            Shape features,
            NDArray kernel,
            NDArray map,
            NDArray weights,
            long[] origins,
            long[] channelsOf,
            long[][] geometry) {
        this.features = features;
        this.kernel = kernel;
        this.map = map;
        this.weights = weights;
        this.origins = origins;
        this.channelsOf = channelsOf;
        this.grid = geometry[0];
        this.stride = geometry[1];
        this.padding = geometry[2];
        this.size = geometry[3];
        int spatial = size.length;
        blocks = new long[spatial];
        for (int i = 0; i < spatial; i++) {
            blocks[i] = geometry[4] == null ? 1 : geometry[4][i];
            if (stride[i] % blocks[i] != 0 || size[i] % blocks[i] != 0) {
                throw new IllegalStateException(
                        "kernel blocks " + Arrays.toString(geometry[4]) + " do not tile windows");
            }
        }
    }

    /**
     * Computes the products with the unfolded input, in pieces of at most {@code limit} elements
     * where one sample's box of one origin position fits that: boxes of origin positions for
     * sub-batches of samples.
     *
     * @param inputMap the unfolded input at every output position, {@code (N, positions, F)}
     * @param limit the most array elements a piece holds
     * @return {@code (N, C, F)} and {@code (N, C)}
     */
    NDArray[] compute(NDArray inputMap, long limit) {
        long batch = weights.getShape().get(0);
        long unfolded = inputMap.getShape().get(2);
        long firstPosition = origins[0];
        long lastPosition = origins[0];
        long firstChannel = channelsOf[0];
        long lastChannel = channelsOf[0];
        for (int k = 1; k < origins.length; k++) {
            firstPosition = Math.min(firstPosition, origins[k]);
            lastPosition = Math.max(lastPosition, origins[k]);
            firstChannel = Math.min(firstChannel, channelsOf[k]);
            lastChannel = Math.max(lastChannel, channelsOf[k]);
        }
        NDManager manager = weights.getManager();
        if (map == null) {
            map = manager.ones(new Shape(1, 1).addAll(features.slice(1)), weights.getDataType());
        }
        long kernels = lastChannel - firstChannel + 1;
        long factorChannels = map.getShape().get(1);
        long span = lastPosition - firstPosition + 1;
        long positions = 1;
        while (positions < span
                && pieceElements(positions + 1, unfolded + 1, factorChannels, kernels) <= limit) {
            positions++;
        }
        long samples = limit / pieceElements(positions, unfolded + 1, factorChannels, kernels);
        samples = Math.max(1, Math.min(batch, samples));
        List<long[][]> boxes = new ArrayList<>();
        for (long from = firstPosition; from <= lastPosition; from += positions) {
            boxes.addAll(boxes(from, Math.min(lastPosition, from + positions - 1), 0));
        }
        // one more feature of ones: its products are the columns' sums, for the bias
        Shape onesShape = new Shape(batch, 1).addAll(features.slice(1));
        NDArray inputs =
                inputMap.transpose(0, 2, 1)
                        .reshape(new Shape(batch, unfolded).addAll(features.slice(1)))
                        .concat(manager.ones(onesShape, inputMap.getDataType()), 1);
        NDArray filters = coarseKernel(firstChannel, lastChannel);
        NDList weightParts = new NDList();
        NDList biasParts = new NDList();
        for (long start = 0; start < batch; start += samples) {
            NDIndex part = new NDIndex("{}:{}", start, Math.min(batch, start + samples));
            NDArray partInputs = inputs.get(part);
            NDArray partMap = map.getShape().get(0) == 1 ? map : map.get(part);
            NDArray partWeights = weights.get(part);
            NDArray total = null;
            for (long[][] box : boxes) {
                try (NDManager scope = manager.newSubManager()) {
                    scope.tempAttachAll(partInputs, filters, partMap, partWeights);
                    NDArray piece =
                            compute(
                                    box,
                                    new NDArray[] {partInputs, partMap, partWeights, filters},
                                    firstChannel,
                                    lastChannel);
                    if (total == null) {
                        total = piece;
                        total.attach(manager);
                    } else {
                        total.addi(piece);
                    }
                }
            }
            weightParts.add(total.get(new NDIndex(":, :, :{}", unfolded)));
            biasParts.add(total.get(new NDIndex(":, :, {}", unfolded)));
        }
        if (weightParts.size() == 1) {
            return new NDArray[] {weightParts.head(), biasParts.head()};
        }
        return new NDArray[] {NDArrays.concat(weightParts), NDArrays.concat(biasParts)};
    }

    /**
     * Returns the elements one sample holds for a box of origin positions: the correlations, the
     * products of factor and input in the box's windows with their block sums, and the weights.
     */
    private long pieceElements(long positions, long unfolded, long factorChannels, long kernels) {
        long channels = features.get(0);
        return unfolded * channels * kernels * positions
                + 3 * unfolded * factorChannels * windowBound(positions, 0)
                + 3 * kernels * positions;
    }

    /**
     * The products of the columns whose origins lie in a box of the origin grid with every unfolded
     * input feature, {@code (N, C, F)}.
     */
    private NDArray compute(long[][] box, NDArray[] arrays, long firstChannel, long lastChannel) {
        NDArray inputs = arrays[0];
        NDArray map = arrays[1];
        NDArray weights = arrays[2];
        NDArray filters = arrays[3];
        long batch = inputs.getShape().get(0);
        long unfolded = inputs.getShape().get(1);
        long channels = features.get(0);
        int spatial = size.length;
        long kernels = lastChannel - firstChannel + 1;
        long[] from = new long[spatial];
        long[] to = new long[spatial];
        long[] coarseStride = new long[spatial];
        long positions = 1;
        for (int i = 0; i < spatial; i++) {
            from[i] = box[0][i] * stride[i] - padding[i];
            to[i] = box[1][i] * stride[i] - padding[i] + size[i];
            coarseStride[i] = stride[i] / blocks[i];
            positions *= box[1][i] - box[0][i] + 1;
        }
        // the weights of the box's columns on its grid of origin channels and positions, zero
        // where no column of the chunk starts
        int columns = origins.length;
        long cells = kernels * positions;
        long[] column = new long[Math.toIntExact(cells)];
        Arrays.fill(column, columns);
        for (int k = 0; k < columns; k++) {
            long flat = 0;
            long rest = origins[k];
            long scale = 1;
            boolean inside = true;
            for (int i = spatial - 1; i >= 0; i--) {
                long coordinate = rest % grid[i];
                rest /= grid[i];
                inside &= coordinate >= box[0][i] && coordinate <= box[1][i];
                flat += (coordinate - box[0][i]) * scale;
                scale *= box[1][i] - box[0][i] + 1;
            }
            if (inside) {
                column[Math.toIntExact((channelsOf[k] - firstChannel) * positions + flat)] = k;
            }
        }
        NDManager manager = inputs.getManager();
        NDArray padded =
                weights.concat(manager.zeros(new Shape(batch, 1), weights.getDataType()), 1);
        NDArray index =
                manager.arange(0, batch * (columns + 1), columns + 1, DataType.INT64)
                        .reshape(batch, 1)
                        .add(HostArrays.create(manager, column, new Shape(1, cells)));
        NDArray boxWeights = padded.reshape(-1).take(index);
        NDArray factorWindows = crop(map, 2, from, to);
        long factorChannels = map.getShape().get(1);
        NDArray products = crop(inputs, 2, from, to).expandDims(2).mul(factorWindows.expandDims(1));
        NDArray z = blockAverages(products, 3);
        z = z.reshape(new Shape(batch * unfolded, factorChannels).addAll(z.getShape().slice(3)));
        int groups = factorChannels == 1 ? 1 : Math.toIntExact(channels);
        NDArray correlations = correlate(z, filters, coarseStride, groups);
        NDArray squares =
                correlations.muli(correlations).reshape(batch, unfolded * channels, cells);
        // the factor of the averages over blocks (the block size, squared) goes to the weights
        long area = blockArea();
        NDArray cellWeights = boxWeights.reshape(batch, 1, cells);
        if (area > 1) {
            cellWeights = cellWeights.mul(area * area);
        }
        return squares.muli(cellWeights)
                .sum(new int[] {2})
                .reshape(batch, unfolded, channels)
                .transpose(0, 2, 1);
    }

    /** The number of entries in one block. */
    private long blockArea() {
        long area = 1;
        for (long length : blocks) {
            area *= length;
        }
        return area;
    }

    /**
     * Covers the origin positions {@code first .. last} (flat, within one row of the axes before
     * {@code axis}) by boxes: a partial row, the full rows, a partial row, each partial row covered
     * the same way along the next axes.
     *
     * @return the boxes, each as its first and last coordinate per axis from {@code axis} on
     */
    private List<long[][]> boxes(long first, long last, int axis) {
        int spatial = grid.length;
        List<long[][]> result = new ArrayList<>();
        if (axis == spatial - 1) {
            result.add(new long[][] {{first}, {last}});
            return result;
        }
        long row = 1;
        for (int i = axis + 1; i < spatial; i++) {
            row *= grid[i];
        }
        long firstRow = first / row;
        long lastRow = last / row;
        long fullFrom = first % row == 0 ? firstRow : firstRow + 1;
        long fullTo = last % row == row - 1 ? lastRow : lastRow - 1;
        if (firstRow == lastRow && fullFrom > fullTo) {
            prefixed(result, firstRow, boxes(first % row, last % row, axis + 1));
            return result;
        }
        if (fullFrom > firstRow) {
            prefixed(result, firstRow, boxes(first % row, row - 1, axis + 1));
        }
        if (fullFrom <= fullTo) {
            long[][] full = new long[2][spatial - axis];
            full[0][0] = fullFrom;
            full[1][0] = fullTo;
            for (int i = axis + 1; i < spatial; i++) {
                full[1][i - axis] = grid[i] - 1;
            }
            result.add(full);
        }
        if (fullTo < lastRow) {
            prefixed(result, lastRow, boxes(0, last % row, axis + 1));
        }
        return result;
    }

    private static void prefixed(List<long[][]> result, long row, List<long[][]> inner) {
        for (long[][] box : inner) {
            long[][] outer = new long[2][box[0].length + 1];
            outer[0][0] = row;
            outer[1][0] = row;
            System.arraycopy(box[0], 0, outer[0], 1, box[0].length);
            System.arraycopy(box[1], 0, outer[1], 1, box[1].length);
            result.add(outer);
        }
    }

    /**
     * The kernels of origin channels {@code first .. last}, one value per block, as the filters of
     * a convolution grouped by channel: {@code (C (last - first + 1), 1, size / blocks...)}.
     */
    private NDArray coarseKernel(long first, long last) {
        long channels = features.get(0);
        NDArray rows = kernel.get(new NDIndex("{}:{}", first, last + 1));
        NDArray shaped =
                rows.reshape(new Shape(last - first + 1, channels).addAll(new Shape(size)));
        for (int i = 0; i < blocks.length; i++) {
            if (blocks[i] > 1) {
                shaped =
                        shaped.get(
                                new NDIndex().addAllDim(i + 2).addSliceDim(0, size[i], blocks[i]));
            }
        }
        int[] order = new int[blocks.length + 2];
        order[0] = 1;
        order[1] = 0;
        for (int i = 0; i < blocks.length; i++) {
            order[i + 2] = i + 2;
        }
        Shape coarse = shaped.getShape().slice(2);
        return shaped.transpose(order).reshape(new Shape(-1, 1).addAll(coarse));
    }

    /** A convolution without padding or bias. */
    private static NDArray correlate(NDArray input, NDArray filters, long[] stride, int groups) {
        long[] ones = new long[stride.length];
        Arrays.fill(ones, 1);
        return input.getNDArrayInternal()
                .convolution(
                        input,
                        filters,
                        null,
                        new Shape(stride),
                        new Shape(new long[stride.length]),
                        new Shape(ones),
                        groups)
                .head();
    }

    /**
     * Averages the spatial axes starting at {@code first} over consecutive blocks of their entries:
     * an average pooling with the blocks as kernel and stride (the sums divided by the block size).
     */
    private NDArray blockAverages(NDArray array, int first) {
        if (blockArea() == 1) {
            return array;
        }
        Shape shape = array.getShape();
        Shape pooled = new Shape(shape.slice(0, first - 1).size(), shape.get(first - 1));
        NDArray averages =
                array.reshape(pooled.addAll(shape.slice(first)))
                        .getNDArrayInternal()
                        .avgPool(
                                new Shape(blocks),
                                new Shape(blocks),
                                new Shape(new long[blocks.length]),
                                false,
                                true);
        Shape coarse = averages.getShape().slice(2);
        // flattened and shaped again: the pooling may keep the channels-last strides of its
        // input, which would send the convolution down a path several times slower
        return averages.reshape(-1).reshape(shape.slice(0, first).addAll(coarse));
    }

    /**
     * Returns the entries {@code from .. to - 1} along the spatial axes starting at {@code first},
     * zero where they fall outside the array.
     */
    private static NDArray crop(NDArray array, int first, long[] from, long[] to) {
        NDArray result = array;
        for (int i = 0; i < from.length; i++) {
            int axis = first + i;
            Shape shape = result.getShape();
            long length = shape.get(axis);
            long start = Math.max(from[i], 0);
            long end = Math.min(to[i], length);
            if (end <= start) {
                result =
                        result.getManager()
                                .zeros(
                                        withAxis(shape, axis, to[i] - from[i]),
                                        result.getDataType());
                continue;
            }
            if (start > 0 || end < length) {
                result = result.get(new NDIndex().addAllDim(axis).addSliceDim(start, end));
            }
            result = pad(result, axis, start - from[i], to[i] - end);
        }
        return result;
    }

    /** Adds zeros before and after an axis. */
    static NDArray pad(NDArray array, int axis, long before, long after) {
        NDList parts = new NDList(3);
        Shape shape = array.getShape();
        NDManager manager = array.getManager();
        if (before > 0) {
            parts.add(manager.zeros(withAxis(shape, axis, before), array.getDataType()));
        }
        parts.add(array);
        if (after > 0) {
            parts.add(manager.zeros(withAxis(shape, axis, after), array.getDataType()));
        }
        return parts.size() == 1 ? array : NDArrays.concat(parts, axis);
    }

    /** The shape with another length along one axis. */
    static Shape withAxis(Shape shape, int axis, long length) {
        return shape.slice(0, axis).add(length).addAll(shape.slice(axis + 1));
    }

    /**
     * Returns the elements that {@link #compute} holds for a chunk of a number of columns: the
     * unfolded input in channels-first order, the results, the columns' weights, and a piece.
     *
     * @param batch the batch size {@code N}
     * @param unfolded the unfolded input features {@code F}
     * @param factorChannels the channels of the factor map
     * @param kernels the origin channels {@code Co}
     * @param count the number of columns
     * @param limit the most elements a piece holds where one sample's box of one position fits
     * @return the element count
     */
    long elements(
            long batch, long unfolded, long factorChannels, long kernels, long count, long limit) {
        long channels = features.get(0);
        long input = 3 * batch * (unfolded + 1) * (features.size() / channels);
        long results = 4 * batch * channels * (unfolded + 1);
        long piece = Math.max(limit, pieceElements(1, unfolded + 1, factorChannels, kernels));
        return input + results + piece + 3 * batch * count;
    }

    /**
     * Returns a bound on the window entries, from axis {@code axis} on, of any box of {@link
     * #boxes} over at most {@code positions} origin positions.
     */
    private long windowBound(long positions, int axis) {
        int spatial = grid.length;
        if (axis == spatial - 1) {
            return (Math.min(positions, grid[axis]) - 1) * stride[axis] + size[axis];
        }
        long row = 1;
        long rowWindow = 1;
        for (int i = axis + 1; i < spatial; i++) {
            row *= grid[i];
            rowWindow *= (grid[i] - 1) * stride[i] + size[i];
        }
        long rows = Math.min(positions / row, grid[axis]);
        long full = rows == 0 ? 0 : ((rows - 1) * stride[axis] + size[axis]) * rowWindow;
        long partial = size[axis] * windowBound(Math.min(positions, row), axis + 1);
        return Math.max(full, partial);
    }

    private static long product(long[] values) {
        long product = 1;
        for (long value : values) {
            product *= value;
        }
        return product;
    }
}
