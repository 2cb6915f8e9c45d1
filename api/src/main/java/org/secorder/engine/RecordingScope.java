package org.secorder.engine;

/** A change to the calling thread's gradient recording that is undone when the scope closes. */
public interface RecordingScope extends AutoCloseable {

    /** Puts back the recording state that was in force when this scope was opened. */
    @Override
    void close();
}
