package org.secorder.structured.internal.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DiagonalColumns;

/**
 * DJL's {@code L2Loss}: {@code weight * mean((label - prediction)^2)} over all elements, whose
 * per-sample Hessian is {@code 2 weight / count} times the identity.
 */
public final class SquaredErrorCurvature extends LossCurvature {

    private final float weight;

    /**
     * Creates the curvature of an {@code L2Loss}.
     *
     * @param weight the loss's weight
     */
    public SquaredErrorCurvature(float weight) {
        super("L2Loss(weight " + weight + ")");
        this.weight = weight;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray value() {
        return getPredictions().sub(targets()).square().mul(weight).mean();
    }

    /** {@inheritDoc} */
    @Override
    public NDArray gradient() {
        NDArray predictions = getPredictions();
        return predictions.sub(targets()).mul(2.0 * weight / totalElements());
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet factor() {
        NDArray predictions = getPredictions();
        long batch = predictions.getShape().get(0);
        double coefficient = 2.0 * weight / totalElements();
        NDArray scales =
                predictions
                        .getManager()
                        .full(new Shape(batch, featureCount()), 1f, predictions.getDataType())
                        .mul(Math.sqrt(Math.abs(coefficient)));
        NDArray signs = weight < 0 ? scales.onesLike().neg() : null;
        return DiagonalColumns.of(scales, signs, features());
    }
}
