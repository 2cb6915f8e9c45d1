package org.secorder.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;

/**
 * The first and second derivatives of a DJL loss with respect to the model's predictions, with
 * DJL's mean reduction included.
 */
abstract class LossCurvature {

    private final String description;

    /**
     * Creates the curvature of a loss.
     *
     * @param description the loss and its settings, for messages
     */
    LossCurvature(String description) {
        this.description = description;
    }

    /**
     * Returns the loss and its settings.
     *
     * @return the description
     */
    final String getDescription() {
        return description;
    }

    /**
     * Computes and caches what the other methods return.
     *
     * @param predictions the model's output
     * @param labels the labels
     */
    abstract void evaluate(NDArray predictions, NDArray labels);

    /**
     * Returns the loss as these rules see it, to compare with DJL's own value.
     *
     * @return a scalar
     */
    abstract NDArray value();

    /**
     * Returns the gradient of the loss with respect to the predictions.
     *
     * @return shaped like the predictions
     */
    abstract NDArray gradient();

    /**
     * Returns a signed square root of the per-sample Hessian with respect to the predictions.
     *
     * @return the columns, or {@code null} where the Hessian is zero
     */
    abstract ColumnSet factor();

    /**
     * Returns the per-sample feature shape of the predictions.
     *
     * @param predictions the predictions
     * @return the shape without the batch axis
     */
    static Shape features(NDArray predictions) {
        return predictions.getShape().slice(1);
    }

    /**
     * Returns an array of the shape of {@code like} holding a float loss weight as the engine
     * applies it in {@code array.mul(weight)}.
     *
     * @param like the shape and data type
     * @param weight the weight
     * @return the weights
     */
    static NDArray weights(NDArray like, float weight) {
        return like.onesLike().mul(weight);
    }
}
