package org.secorder.evaluation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.List;
import java.util.function.Supplier;
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngine;

/**
 * A scalar loss that can be evaluated many times without leaking native memory.
 *
 * <p>Each evaluation temporarily attaches the caller's arrays (parameters, inputs, targets) to a
 * fresh sub-manager, so that every array the loss computation derives from them lands there and is
 * freed when the evaluation closes.
 */
public final class LossFunction {

    private final SecondOrderEngine engine;
    private final Supplier<NDArray> func;
    private final String source;
    private final NDArray[] callerArrays;

    /**
     * Creates a loss function.
     *
     * @param engine the engine adapter of the arrays involved
     * @param func computes the scalar loss
     * @param source names {@code func} in error messages, as the caller knows it
     * @param callerArrays the caller's arrays that {@code func} computes from; the first one's
     *     manager is the parent of every evaluation's scope
     */
    public LossFunction(
            SecondOrderEngine engine,
            Supplier<NDArray> func,
            String source,
            List<NDArray> callerArrays) {
        this.engine = engine;
        this.func = func;
        this.source = source;
        this.callerArrays = CallerArrays.distinct(callerArrays);
    }

    /**
     * Returns the engine adapter of this loss.
     *
     * @return the engine adapter
     */
    public SecondOrderEngine getEngine() {
        return engine;
    }

    /**
     * Evaluates the loss with gradient recording on.
     *
     * @return the evaluation, which the caller must close
     * @throws IllegalArgumentException if the loss is not a scalar of the same engine
     */
    public Evaluation evaluate() {
        NDManager scope = callerArrays[0].getManager().newSubManager();
        RecordingScope recording = null;
        Evaluation evaluation = null;
        try {
            scope.tempAttachAll(callerArrays);
            recording = engine.recording(true);
            NDArray loss = func.get();
            NDArray scalar = toScalar(loss, scope);
            evaluation = new Evaluation(scope, recording, scalar);
            return evaluation;
        } finally {
            // also for checked exceptions that other JVM languages throw through a Supplier
            if (evaluation == null) {
                try {
                    if (recording != null) {
                        recording.close();
                    }
                } finally {
                    scope.close();
                }
            }
        }
    }

    private NDArray toScalar(NDArray loss, NDManager scope) {
        if (loss == null) {
            throw new IllegalArgumentException(
                    source + " must return a scalar loss, but returned null");
        }
        if (loss.isReleased()) {
            throw new IllegalArgumentException(source + " returned a closed array as the loss");
        }
        String lossEngine = loss.getManager().getEngine().getEngineName();
        if (!engine.getEngineName().equals(lossEngine)) {
            throw new IllegalArgumentException(
                    source
                            + " must return a loss of the parameters' engine "
                            + engine.getEngineName()
                            + ", but returned one of "
                            + lossEngine);
        }
        if (loss.size() != 1) {
            throw new IllegalArgumentException(
                    source
                            + " must return a scalar loss (shape () or a single element), but"
                            + " returned"
                            + " shape "
                            + loss.getShape());
        }
        if (!loss.getDataType().isFloating()) {
            throw new IllegalArgumentException(
                    source
                            + " must return a floating-point loss, but returned "
                            + loss.getDataType());
        }
        boolean callerArray = isCallerArray(loss);
        if (!callerArray && loss.getManager() != scope) {
            // Created by func from arrays that are not ours to scope; it is still a temporary.
            loss.attach(scope);
        }
        // A caller's array (a parameter itself, say) is never handed on as the loss: engines
        // address their arguments by name, and the caller's array is not ours to close.
        return loss.getShape().isScalar() && !callerArray ? loss : loss.reshape(new Shape());
    }

    private boolean isCallerArray(NDArray array) {
        for (NDArray callerArray : callerArrays) {
            if (callerArray == array) {
                return true;
            }
        }
        return false;
    }
}
