package org.secorder.structured;

import ai.djl.ndarray.NDArray;

/**
 * DJL's {@code L1Loss}: {@code mean(|label - prediction|)}, piecewise linear, so its Hessian is
 * zero.
 *
 * <p>With a weight other than 1, DJL 0.36.0's {@code L1Loss.evaluate} returns {@code mean(label *
 * weight)}, which does not depend on the prediction; these rules follow what DJL computes.
 */
final class AbsoluteErrorCurvature extends LossCurvature {

    private final float weight;
    private NDArray value;
    private NDArray gradient;

    /**
     * Creates the curvature of an {@code L1Loss}.
     *
     * @param weight the loss's weight
     */
    AbsoluteErrorCurvature(float weight) {
        super("L1Loss(weight " + weight + ")");
        this.weight = weight;
    }

    /** {@inheritDoc} */
    @Override
    void evaluate(NDArray predictions, NDArray labels) {
        NDArray target =
                labels.reshape(predictions.getShape()).toType(predictions.getDataType(), false);
        NDArray difference = predictions.sub(target);
        if (weight == 1) {
            value = difference.abs().mean();
            gradient = difference.sign().div(predictions.size());
        } else {
            value = target.mul(weight).mean();
            gradient = predictions.zerosLike();
        }
    }

    /** {@inheritDoc} */
    @Override
    NDArray value() {
        return value;
    }

    /** {@inheritDoc} */
    @Override
    NDArray gradient() {
        return gradient;
    }

    /** {@inheritDoc} */
    @Override
    ColumnSet factor() {
        return null;
    }
}
