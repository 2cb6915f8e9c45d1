package org.secorder.evaluation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngine;

/**
 * Copies of parameter values, put back bit for bit by {@link #restore()}.
 *
 * <p>Values are copied and copied back, never recomputed, so no rounding can creep in.
 */
public final class ParameterSnapshot implements AutoCloseable {

    private final SecondOrderEngine engine;
    private final NDArray[] parameters;
    private final NDArray[] copies;
    private final NDManager manager;

    /**
     * Takes a snapshot of parameter values.
     *
     * @param engine the engine adapter of the parameters
     * @param parameters the arrays to snapshot
     * @param manager the manager under which the copies are kept
     */
    public ParameterSnapshot(SecondOrderEngine engine, NDArray[] parameters, NDManager manager) {
        this.engine = engine;
        this.parameters = parameters.clone();
        this.manager = manager.newSubManager();
        this.copies = new NDArray[parameters.length];
        RecordingScope recording = engine.recording(false);
        try {
            for (int i = 0; i < parameters.length; i++) {
                copies[i] =
                        this.manager.create(parameters[i].getShape(), parameters[i].getDataType());
                parameters[i].copyTo(copies[i]);
            }
        } finally {
            recording.close();
        }
    }

    /** Writes the saved values back into the parameters, in place. */
    public void restore() {
        RecordingScope recording = engine.recording(false);
        try {
            for (int i = 0; i < parameters.length; i++) {
                copies[i].copyTo(parameters[i]);
            }
        } finally {
            recording.close();
        }
    }

    /** {@inheritDoc} */
    @Override
    public void close() {
        manager.close();
    }
}
