package org.secorder.evaluation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Arrays made from Java values in memory of the engine's own, which no garbage collection can
 * corrupt, on every engine. Secorder makes every array it fills from Java values here.
 *
 * <p>DJL 0.36.0 has two ways of losing such values to a collection:
 *
 * <ul>
 *   <li>Its MXNet engine copies Java values ({@code manager.create(double[])}) through a temporary
 *       direct buffer of which it hands only the address to {@code MXNDArraySyncCopyFromCPU}: the
 *       buffer is unreachable while MXNet copies from it, a collection in that moment frees it, and
 *       the array gets what the allocator wrote into the freed memory (its first 8 bytes,
 *       typically).
 *   <li>Its PyTorch engine does not copy at all: the tensor views the direct buffer, which only the
 *       Java array object keeps alive. Views of the tensor (a reshape inside a loss) and what
 *       autograd saves of it outlive that object, and read freed memory after a collection.
 * </ul>
 *
 * <p>Here the buffer is ours and stays reachable until the engine has copied it, and the array
 * returned is a copy in memory the engine owns.
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
        ByteBuffer buffer = allocate(values.length * Double.BYTES);
        buffer.asDoubleBuffer().put(values);
        return owned(manager, buffer, shape, DataType.FLOAT64);
    }

    /**
     * Creates a {@code float32} array holding the given values.
     *
     * @param manager the manager of the new array
     * @param values the values, in row-major order
     * @param shape the shape, of {@code values.length} elements
     * @return the new array, attached to {@code manager}
     */
    public static NDArray create(NDManager manager, float[] values, Shape shape) {
        ByteBuffer buffer = allocate(values.length * Float.BYTES);
        buffer.asFloatBuffer().put(values);
        return owned(manager, buffer, shape, DataType.FLOAT32);
    }

    /**
     * Creates an {@code int64} array holding the given values.
     *
     * @param manager the manager of the new array
     * @param values the values, in row-major order
     * @param shape the shape, of {@code values.length} elements
     * @return the new array, attached to {@code manager}
     */
    public static NDArray create(NDManager manager, long[] values, Shape shape) {
        ByteBuffer buffer = allocate(values.length * Long.BYTES);
        buffer.asLongBuffer().put(values);
        return owned(manager, buffer, shape, DataType.INT64);
    }

    private static ByteBuffer allocate(int bytes) {
        return ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
    }

    private static NDArray owned(NDManager manager, ByteBuffer buffer, Shape shape, DataType type) {
        try (NDManager scratch = manager.newSubManager()) {
            // MXNet copies from the buffer before create returns; PyTorch views it until duplicated
            NDArray viewing = scratch.create(buffer, shape, type);
            NDArray owned = viewing.duplicate();
            owned.attach(manager);
            return owned;
        } finally {
            Reference.reachabilityFence(buffer);
        }
    }
}
