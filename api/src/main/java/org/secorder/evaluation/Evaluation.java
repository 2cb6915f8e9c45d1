package org.secorder.evaluation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.secorder.engine.RecordingScope;

/**
 * One evaluation of a {@link LossFunction}: the scalar loss, recorded for differentiation, and the
 * scope that owns every array the evaluation created.
 *
 * <p>Closing it frees those arrays, hands the caller's arrays back to their own managers and
 * restores the recording state. Attach anything that must outlive it to another manager first.
 */
public final class Evaluation implements AutoCloseable {

    private final NDManager scope;
    private final RecordingScope recording;
    private final NDArray loss;

    Evaluation(NDManager scope, RecordingScope recording, NDArray loss) {
        this.scope = scope;
        this.recording = recording;
        this.loss = loss;
    }

    /**
     * Returns the loss as a 0-d array.
     *
     * @return the loss
     */
    public NDArray getLoss() {
        return loss;
    }

    /**
     * Returns the manager that owns the arrays of this evaluation.
     *
     * @return the evaluation's manager
     */
    public NDManager getManager() {
        return scope;
    }

    /** {@inheritDoc} */
    @Override
    public void close() {
        try {
            recording.close();
        } finally {
            scope.close();
        }
    }
}
