package org.secorder.engine.pytorch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * While open, gives every PyTorch array that the calling thread makes from Java memory a copy in
 * memory that libtorch owns, so that nothing libtorch records for a backward pass can refer to
 * memory the JVM frees.
 *
 * <p>DJL 0.36.0 makes an array from Java data with {@code torch::from_blob} on a direct {@code
 * ByteBuffer} that only the Java array object keeps alive ({@code PtNDArray.dataRef}). Its
 * operators that take a {@code Number} ({@code x.pow(3)}, {@code x.mul(2f)}, {@code div}, {@code
 * maximum}; {@code L2Loss} through its weight) make such a scalar array, use it and close it at
 * once. Closing drops the buffer, but the autograd graph of {@code pow}, {@code mul}, {@code div}
 * and others has saved the scalar for the backward pass: after a garbage collection has freed the
 * buffer, the backward pass reads whatever the memory then holds, and returns garbage (no error).
 * How often depends only on when the JVM collects, so threads, allocation and machine load make it
 * frequent.
 *
 * <p>This scope sits on top of the thread's {@link NDScope} stack, where DJL registers every array
 * as it is constructed, after its buffer is set and before any operator sees it. Arrays with a Java
 * buffer get their tensor replaced by a clone at that moment. Arrays made while the scope was open
 * and still open when it closes are registered with the enclosing {@link NDScope}, if any, as they
 * would have been without it.
 */
final class JavaBufferCopies extends NDScope {

    private static final Logger LOGGER = LoggerFactory.getLogger(JavaBufferCopies.class);

    private static final Field RESOURCES = field(NDScope.class, "resources");
    private static final Field DATA_REF = field(PtNDArray.class, "dataRef");
    private static final boolean AVAILABLE = RESOURCES != null && DATA_REF != null;

    private final Registry registry = new Registry();

    private JavaBufferCopies() {
        try {
            RESOURCES.set(this, registry);
        } catch (IllegalAccessException e) {
            throw new IllegalStateException("Cannot open the scope of Java buffer copies", e);
        }
    }

    /**
     * Opens a scope on the calling thread.
     *
     * @return the scope, or {@code null} where this DJL version's layout is not the one known
     */
    static JavaBufferCopies open() {
        return AVAILABLE ? new JavaBufferCopies() : null;
    }

    /** {@inheritDoc} */
    @Override
    public void close() {
        List<NDArray> created = new ArrayList<>(registry.keySet());
        registry.clear();
        // closes nothing (the registry is empty) and takes this scope off the thread's stack
        super.close();
        for (NDArray array : created) {
            if (!array.isReleased()) {
                NDScope.register(array);
            }
        }
    }

    /** What {@code NDScope.register} writes to: copies Java-backed arrays as they are made. */
    private static final class Registry extends IdentityHashMap<NDArray, NDArray> {

        private static final long serialVersionUID = 1L;

        private boolean copying;

        @Override
        public NDArray put(NDArray key, NDArray value) {
            if (!copying && key instanceof PtNDArray && hasJavaBuffer((PtNDArray) key)) {
                copying = true;
                try {
                    PtNDArray array = (PtNDArray) key;
                    // the clone registers itself here too, and intern() closes it
                    PtNDArray copy = JniUtils.clone(array);
                    array.intern(copy);
                    super.remove(copy);
                } finally {
                    copying = false;
                }
            }
            return super.put(key, value);
        }
    }

    private static boolean hasJavaBuffer(PtNDArray array) {
        try {
            return DATA_REF.get(array) != null;
        } catch (IllegalAccessException e) {
            throw new IllegalStateException("Cannot read the Java buffer of a PyTorch array", e);
        }
    }

    private static Field field(Class<?> owner, String name) {
        try {
            Field field = owner.getDeclaredField(name);
            field.setAccessible(true);
            return field;
        } catch (NoSuchFieldException | RuntimeException e) {
            LOGGER.warn(
                    "Cannot reach {}.{} of this DJL version (Secorder knows DJL 0.36.0): arrays"
                        + " that DJL makes from Java memory while a loss is recorded (the scalar of"
                        + " x.pow(3), x.mul(2f)) are not copied, and a garbage collection between"
                        + " the forward and the backward pass can make derivatives wrong",
                    owner.getName(),
                    name,
                    e);
            return null;
        }
    }
}
