package org.secorder.structured.internal.propagation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;

/** Contiguous slices along one axis. */
final class Slices {

    private Slices() {}

    /**
     * Returns the entries {@code from .. to - 1} along an axis.
     *
     * @param array the array
     * @param axis the axis
     * @param from the first entry
     * @param to one past the last entry
     * @return the slice
     */
    static NDArray slice(NDArray array, int axis, long from, long to) {
        StringBuilder index = new StringBuilder();
        for (int i = 0; i < axis; i++) {
            index.append(":,");
        }
        index.append(from).append(':').append(to);
        return array.get(new NDIndex(index.toString()));
    }
}
