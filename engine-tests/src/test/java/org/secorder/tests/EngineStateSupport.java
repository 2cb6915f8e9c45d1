package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;

/**
 * Engine state that DJL's common API does not show: the thread's gradient recording, and what the
 * engine itself (not DJL's cached flag) says about an array's gradient.
 *
 * <p>Only one engine's jars are on the classpath of a test run, so engine classes are reached by
 * reflection, and only those of the engine under test.
 */
final class EngineStateSupport {

    private static final String PT_JNI = "ai.djl.pytorch.jni.JniUtils";
    private static final String PT_ARRAY = "ai.djl.pytorch.engine.PtNDArray";
    private static final String MX_COLLECTOR = "ai.djl.mxnet.engine.MxGradientCollector";
    private static final String MX_JNA = "ai.djl.mxnet.jna.JnaUtils";
    private static final String JNA_POINTER = "com.sun.jna.Pointer";

    private EngineStateSupport() {}

    /**
     * Describes the calling thread's recording state: PyTorch's grad mode, or MXNet's recording and
     * training flags.
     */
    static String recordingState() {
        if (isPyTorch()) {
            return "gradMode=" + invoke(PT_JNI, "isGradMode", new Class<?>[0]);
        }
        return "recording="
                + invoke(MX_COLLECTOR, "isRecording", new Class<?>[0])
                + ", training="
                + invoke(MX_COLLECTOR, "isTraining", new Class<?>[0]);
    }

    /** Whether the engine itself marks the array as requiring a gradient. */
    static boolean nativeRequiresGradient(NDArray array) {
        if (isPyTorch()) {
            return (Boolean) invoke(PT_JNI, "requiresGrad", new Class<?>[] {type(PT_ARRAY)}, array);
        }
        Object handle = invokeOn(array, "getHandle");
        Class<?> pointer = type(JNA_POINTER);
        Object gradient = invoke(MX_JNA, "getGradient", new Class<?>[] {pointer}, handle);
        if (gradient == null) {
            return false;
        }
        // MXNDArrayGetGrad hands out a new handle that the caller frees
        invoke(MX_JNA, "freeNdArray", new Class<?>[] {pointer}, gradient);
        return true;
    }

    /**
     * Returns the bytes of an array's gradient buffer, or {@code null} where the engine has none
     * (PyTorch's {@code .grad} still undefined; DJL would show zeros instead).
     */
    static byte[] gradientBytes(NDArray array) {
        NDArray gradient;
        if (isPyTorch()) {
            gradient =
                    (NDArray) invoke(PT_JNI, "getGradient", new Class<?>[] {type(PT_ARRAY)}, array);
            if (gradient == null) {
                return null;
            }
        } else {
            gradient = array.getGradient();
        }
        try {
            return gradient.toByteArray();
        } finally {
            gradient.close();
        }
    }

    private static boolean isPyTorch() {
        return "PyTorch".equals(EngineSupport.name());
    }

    private static Class<?> type(String name) {
        try {
            return Class.forName(name);
        } catch (ClassNotFoundException e) {
            throw new IllegalStateException(name + " is not on the test classpath", e);
        }
    }

    private static Object invokeOn(Object target, String method) {
        try {
            return target.getClass().getMethod(method).invoke(target);
        } catch (NoSuchMethodException | IllegalAccessException e) {
            throw new IllegalStateException("Cannot call " + method, e);
        } catch (InvocationTargetException e) {
            throw new IllegalStateException(method + " failed", e.getCause());
        }
    }

    private static Object invoke(String owner, String name, Class<?>[] types, Object... args) {
        try {
            Method method = type(owner).getMethod(name, types);
            return method.invoke(null, args);
        } catch (NoSuchMethodException | IllegalAccessException e) {
            throw new IllegalStateException("Cannot call " + owner + "." + name, e);
        } catch (InvocationTargetException e) {
            throw new IllegalStateException(owner + "." + name + " failed", e.getCause());
        }
    }
}
