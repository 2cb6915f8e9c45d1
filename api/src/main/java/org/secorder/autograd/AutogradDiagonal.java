package org.secorder.autograd;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.secorder.evaluation.Evaluation;
import org.secorder.evaluation.LossFunction;

/**
 * The exact Hessian diagonal by double backward: one Hessian-vector product with a unit vector per
 * parameter element, as the engine's autograd computes it.
 */
public final class AutogradDiagonal {

    private AutogradDiagonal() {}

    /**
     * Computes the diagonal of each variable's own block of the Hessian.
     *
     * @param loss the loss to differentiate
     * @param variables arrays that require gradients
     * @param createGraph whether the diagonals must be differentiable
     * @param results the manager the diagonals are attached to
     * @return one diagonal per variable, or {@code null} for a variable the loss does not depend on
     * @throws UnsupportedOperationException if the engine cannot differentiate the loss twice
     */
    public static NDArray[] compute(
            LossFunction loss, NDArray[] variables, boolean createGraph, NDManager results) {
        try (Evaluation evaluation = loss.evaluate()) {
            NDArray[] diagonals =
                    loss.getEngine().hessianDiagonal(evaluation.getLoss(), variables, createGraph);
            for (NDArray diagonal : diagonals) {
                if (diagonal != null) {
                    diagonal.attach(results);
                }
            }
            return diagonals;
        }
    }
}
