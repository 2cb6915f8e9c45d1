package org.secorder.structured.internal;

import java.lang.reflect.Field;

/**
 * Reads settings that DJL 0.36.0 keeps in private fields without a getter (a loss's weight, a batch
 * normalization's axis), so that the structured rules use exactly what the block computes with.
 */
public final class PrivateFields {

    private PrivateFields() {}

    /**
     * Reads a private field.
     *
     * @param owner the object
     * @param declaringClass the class that declares the field
     * @param name the field's name
     * @return the field's value
     * @throws UnsupportedOperationException if the field is not there or cannot be read
     */
    public static Object read(Object owner, Class<?> declaringClass, String name) {
        try {
            Field field = declaringClass.getDeclaredField(name);
            field.setAccessible(true);
            return field.get(owner);
        } catch (NoSuchFieldException | IllegalAccessException | RuntimeException e) {
            throw new UnsupportedOperationException(
                    "Cannot read the setting '"
                            + name
                            + "' of "
                            + declaringClass.getName()
                            + "; the structured method knows DJL 0.36.0's layout of this class",
                    e);
        }
    }

    /**
     * Reads a private float field.
     *
     * @param owner the object
     * @param declaringClass the class that declares the field
     * @param name the field's name
     * @return the field's value
     */
    public static float readFloat(Object owner, Class<?> declaringClass, String name) {
        return ((Number) read(owner, declaringClass, name)).floatValue();
    }

    /**
     * Reads a private int field.
     *
     * @param owner the object
     * @param declaringClass the class that declares the field
     * @param name the field's name
     * @return the field's value
     */
    public static int readInt(Object owner, Class<?> declaringClass, String name) {
        return ((Number) read(owner, declaringClass, name)).intValue();
    }

    /**
     * Reads a private boolean field.
     *
     * @param owner the object
     * @param declaringClass the class that declares the field
     * @param name the field's name
     * @return the field's value
     */
    public static boolean readBoolean(Object owner, Class<?> declaringClass, String name) {
        return (Boolean) read(owner, declaringClass, name);
    }
}
