package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

/**
 * Padding, cropping, strided slicing and zero interleaving along one axis, built from slicing and
 * concatenation only, which every engine has.
 */
public final class Strided {

    private Strided() {}

    /**
     * Adds zeros before and after an axis; a negative amount crops instead.
     *
     * @param array the array
     * @param axis the axis
     * @param before how many zeros to put in front
     * @param after how many zeros to put at the end
     * @return the padded array
     */
    public static NDArray pad(NDArray array, int axis, long before, long after) {
        NDArray result = array;
        long length = result.getShape().get(axis);
        if (before < 0 || after < 0) {
            long from = Math.max(0, -before);
            long to = length - Math.max(0, -after);
            result = slice(result, axis, from, to, 1);
        }
        NDList parts = new NDList(3);
        if (before > 0) {
            parts.add(zeros(result, axis, before));
        }
        parts.add(result);
        if (after > 0) {
            parts.add(zeros(result, axis, after));
        }
        return parts.size() == 1 ? result : NDArrays.concat(parts, axis);
    }

    /**
     * Repeats every entry along an axis, as {@code NDArray.repeat(axis, times)} does, by one
     * broadcast of a four-dimensional view (faster than the engines' repeat, and within the
     * dimensions every engine broadcasts).
     *
     * @param array the array
     * @param axis the axis
     * @param times how many copies of each entry, next to each other
     * @return the array, {@code times} times as long along the axis
     */
    public static NDArray repeatEach(NDArray array, int axis, long times) {
        if (times == 1) {
            return array;
        }
        Shape shape = array.getShape();
        long before = shape.slice(0, axis).size();
        long length = shape.get(axis);
        long after = shape.slice(axis + 1).size();
        Shape repeated = shape.slice(0, axis).add(length * times).addAll(shape.slice(axis + 1));
        return array.reshape(before, length, 1, after)
                .broadcast(before, length, times, after)
                .reshape(repeated);
    }

    /**
     * Puts {@code stride - 1} zeros between neighbouring entries along an axis.
     *
     * @param array the array
     * @param axis the axis
     * @param stride the distance between the original entries afterwards
     * @return the array, {@code (length - 1) * stride + 1} long along the axis
     */
    public static NDArray interleaveZeros(NDArray array, int axis, long stride) {
        if (stride == 1) {
            return array;
        }
        Shape shape = array.getShape();
        long length = shape.get(axis);
        NDArray expanded = array.expandDims(axis + 1);
        NDArray filler = zeros(expanded, axis + 1, stride - 1);
        NDArray spread = NDArrays.concat(new NDList(expanded, filler), axis + 1);
        Shape flat = shape.slice(0, axis).add(length * stride).addAll(shape.slice(axis + 1));
        return slice(spread.reshape(flat), axis, 0, (length - 1) * stride + 1, 1);
    }

    /**
     * Takes every {@code step}-th entry of a range along an axis.
     *
     * @param array the array
     * @param axis the axis
     * @param from the first entry
     * @param to one past the last entry considered
     * @param step the step
     * @return the slice
     */
    public static NDArray slice(NDArray array, int axis, long from, long to, long step) {
        StringBuilder index = new StringBuilder();
        for (int i = 0; i < array.getShape().dimension(); i++) {
            if (i > 0) {
                index.append(',');
            }
            if (i == axis) {
                index.append(from).append(':').append(to);
                if (step != 1) {
                    index.append(':').append(step);
                }
            } else {
                index.append(':');
            }
        }
        return array.get(new NDIndex(index.toString()));
    }

    /**
     * Unfolds the windows of a convolution: for each kernel offset, the values that the offset sees
     * at every output position, from the zero-padded array.
     *
     * @param array {@code (B, C, spatial...)}
     * @param kernel the kernel's spatial shape
     * @param stride the stride
     * @param padding the zeros added before and after each spatial axis
     * @param dilation the dilation
     * @param outputSpatial the spatial shape of the convolution's output
     * @return {@code (B, C, kernelSize, outputSpatial...)}, kernel offsets in row-major order
     */
    public static NDArray windows(
            NDArray array,
            Shape kernel,
            Shape stride,
            Shape padding,
            Shape dilation,
            Shape outputSpatial) {
        int spatial = kernel.dimension();
        NDArray padded = array;
        for (int i = 0; i < spatial; i++) {
            padded = pad(padded, i + 2, padding.get(i), padding.get(i));
        }
        long offsets = kernel.size();
        NDList slices = new NDList(Math.toIntExact(offsets));
        long[] position = new long[spatial];
        for (long k = 0; k < offsets; k++) {
            long rest = k;
            for (int i = spatial - 1; i >= 0; i--) {
                position[i] = rest % kernel.get(i);
                rest /= kernel.get(i);
            }
            NDArray slice = padded;
            for (int i = 0; i < spatial; i++) {
                long from = position[i] * dilation.get(i);
                long to = from + (outputSpatial.get(i) - 1) * stride.get(i) + 1;
                slice = slice(slice, i + 2, from, to, stride.get(i));
            }
            slices.add(slice);
        }
        return NDArrays.stack(slices, 2);
    }

    private static NDArray zeros(NDArray like, int axis, long length) {
        Shape shape = like.getShape();
        Shape filler = shape.slice(0, axis).add(length).addAll(shape.slice(axis + 1));
        return like.getManager().zeros(filler, like.getDataType());
    }
}
