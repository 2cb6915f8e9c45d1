package org.secorder.structured;

import ai.djl.ndarray.NDArray;

/** DJL's {@code L2Loss}: {@code weight * mean((label - prediction)^2)} over all elements. */
final class SquaredErrorCurvature extends LossCurvature {

    private final float weight;
    private NDArray value;
    private NDArray gradient;
    private ColumnSet factor;

    /**
     * Creates the curvature of an {@code L2Loss}.
     *
     * @param weight the loss's weight
     */
    SquaredErrorCurvature(float weight) {
        super("L2Loss(weight " + weight + ")");
        this.weight = weight;
    }

    /** {@inheritDoc} */
    @Override
    void evaluate(NDArray predictions, NDArray labels) {
        NDArray target =
                labels.reshape(predictions.getShape()).toType(predictions.getDataType(), false);
        NDArray difference = predictions.sub(target);
        double count = predictions.size();
        NDArray weights = weights(predictions, weight);
        value = difference.square().mul(weight).mean();
        gradient = difference.mul(weights).mul(2 / count);
        long batch = predictions.getShape().get(0);
        NDArray coefficients = weights.mul(2 / count).reshape(batch, -1);
        factor =
                DiagonalColumns.of(
                        coefficients.abs().sqrt(),
                        weight < 0 ? coefficients.sign() : null,
                        features(predictions));
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
        return factor;
    }
}
