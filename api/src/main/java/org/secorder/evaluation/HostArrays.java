package org.secorder.evaluation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Arrays made from Java values in a way that a garbage collection cannot corrupt, on every engine.
 *
 * <p>DJL 0.36.0's MXNet engine copies Java values ({@code manager.create(double[])}) through a
 * temporary direct buffer of which it hands only the address to {@code MXNDArraySyncCopyFromCPU}:
 * the buffer is unreachable while MXNet copies from it, a collection in that moment frees it, and
 * the array gets what the allocator wrote into the freed memory (its first 8 bytes, typically).
 * Here the buffer is ours, and stays reachable until the engine has its values.
 */
public final class HostArrays {

    private HostArrays() {}

    /**
     * Creates a {@code float64} array holding the given values.
     *
     * @param manager the manager of the new array
     * @param values the values, in row-major order
     * @param shape the shape, of {@code values.length} elements
     * @return the new array, attached to {@code manager}
     */
    public static NDArray create(NDManager manager, double[] values, Shape shape) {
        ByteBuffer buffer =
                ByteBuffer.allocateDirect(values.length * Double.BYTES)
                        .order(ByteOrder.nativeOrder());
        buffer.asDoubleBuffer().put(values);
        try {
            // PyTorch keeps the buffer with the array; MXNet copies from it before returning
            return manager.create(buffer, shape, DataType.FLOAT64);
        } finally {
            Reference.reachabilityFence(buffer);
        }
    }
}
