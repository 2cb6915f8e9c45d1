package org.secorder.structured.internal.losses;

import ai.djl.ndarray.NDArray;
import org.secorder.structured.internal.columns.ColumnSet;

/**
 * DJL's {@code L1Loss}: {@code mean(|label - prediction|)}, piecewise linear, so its Hessian is
 * zero.
 *
 * <p>With a weight other than 1, DJL 0.36.0's {@code L1Loss.evaluate} returns {@code mean(label *
 * weight)}, which does not depend on the prediction; these rules follow what DJL computes.
 */
public final class AbsoluteErrorCurvature extends LossCurvature {

    private final float weight;

    /**
     * Creates the curvature of an {@code L1Loss}.
     *
     * @param weight the loss's weight
     */
    public AbsoluteErrorCurvature(float weight) {
        super("L1Loss(weight " + weight + ")");
        this.weight = weight;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray value() {
        if (weight != 1) {
            return targets().mul(weight).mean();
        }
        return getPredictions().sub(targets()).abs().mean();
    }

    /** {@inheritDoc} */
    @Override
    public NDArray gradient() {
        NDArray predictions = getPredictions();
        if (weight != 1) {
            return predictions.zerosLike();
        }
        return predictions.sub(targets()).sign().div(totalElements());
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet factor() {
        return null;
    }
}
