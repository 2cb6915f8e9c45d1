package org.secorder.engine;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import java.lang.reflect.InvocationTargetException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Finds the {@link SecondOrderEngine} for the engine of a given array.
 *
 * <p>Adapters are looked up by class name, so an engine's classes are loaded only when arrays of
 * that engine are actually used.
 */
public final class SecondOrderEngines {

    private static final Map<String, String> ADAPTERS =
            Map.of(
                    "PyTorch", "org.secorder.engine.pytorch.PtSecondOrderEngine",
                    "MXNet", "org.secorder.engine.mxnet.MxSecondOrderEngine");

    private static final Map<String, SecondOrderEngine> LOADED = new ConcurrentHashMap<>();

    private SecondOrderEngines() {}

    /**
     * Returns the adapter for the engine that owns an array.
     *
     * @param array an array of the engine wanted
     * @return the adapter for that engine
     * @throws UnsupportedOperationException if Secorder has no adapter for the engine
     */
    public static SecondOrderEngine of(NDArray array) {
        return forEngine(array.getManager().getEngine());
    }

    /**
     * Returns the adapter for a DJL engine.
     *
     * @param engine the DJL engine
     * @return the adapter for that engine
     * @throws UnsupportedOperationException if Secorder has no adapter for the engine
     */
    public static SecondOrderEngine forEngine(Engine engine) {
        String name = engine.getEngineName();
        String className = ADAPTERS.get(name);
        if (className == null) {
            throw new UnsupportedOperationException(
                    "Secorder has no second-order adapter for the DJL engine "
                            + name
                            + "; supported engines: "
                            + String.join(", ", ADAPTERS.keySet()));
        }
        return LOADED.computeIfAbsent(name, k -> instantiate(className));
    }

    private static SecondOrderEngine instantiate(String className) {
        try {
            return Class.forName(className)
                    .asSubclass(SecondOrderEngine.class)
                    .getDeclaredConstructor()
                    .newInstance();
        } catch (ClassNotFoundException
                | NoSuchMethodException
                | InstantiationException
                | IllegalAccessException e) {
            throw new IllegalStateException("Cannot load the engine adapter " + className, e);
        } catch (InvocationTargetException e) {
            throw new IllegalStateException(
                    "The engine adapter " + className + " failed to start", e.getCause());
        }
    }
}
