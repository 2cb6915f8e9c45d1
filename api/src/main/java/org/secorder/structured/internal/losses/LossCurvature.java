package org.secorder.structured.internal.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import org.secorder.structured.internal.columns.ColumnSet;

/**
 * The first and second derivatives of a DJL loss with respect to the model's predictions, with
 * DJL's mean reduction included.
 *
 * <p>{@link #evaluate(NDArray, NDArray)} takes the predictions and labels; the value, the gradient
 * and the factor are computed when first asked for, since a method may not need all of them.
 */
public abstract class LossCurvature {

    private final String description;
    private NDArray predictions;
    private NDArray labels;
    private long totalBatch;

    /**
     * Creates the curvature of a loss.
     *
     * @param description the loss and its settings, for messages
     */
    public LossCurvature(String description) {
        this.description = description;
    }

    /**
     * Returns the loss and its settings.
     *
     * @return the description
     */
    public final String getDescription() {
        return description;
    }

    /**
     * Takes the predictions and labels the other methods work on.
     *
     * @param predictions the model's output for some samples of a batch
     * @param labels their labels
     * @param totalBatch the number of samples of the whole batch, whose mean the loss takes
     */
    public void evaluate(NDArray predictions, NDArray labels, long totalBatch) {
        this.predictions = predictions;
        this.labels = labels;
        this.totalBatch = totalBatch;
    }

    /**
     * Returns the number of samples of the whole batch.
     *
     * @return the batch size the mean divides by
     */
    public final long getTotalBatch() {
        return totalBatch;
    }

    /**
     * Returns the number of elements of the whole batch's predictions, over which the mean of an
     * elementwise loss is taken.
     *
     * @return the element count
     */
    public final double totalElements() {
        return (double) totalBatch * featureCount();
    }

    /**
     * Returns the predictions.
     *
     * @return the predictions
     */
    public final NDArray getPredictions() {
        return predictions;
    }

    /**
     * Returns the labels.
     *
     * @return the labels
     */
    public final NDArray getLabels() {
        return labels;
    }

    /**
     * Returns the labels in the predictions' shape and data type.
     *
     * @return the labels as targets
     */
    public final NDArray targets() {
        return labels.reshape(predictions.getShape()).toType(predictions.getDataType(), false);
    }

    /**
     * Returns the loss as these rules see it, to compare with DJL's own value.
     *
     * @return a scalar
     */
    public abstract NDArray value();

    /**
     * Returns the gradient of the loss with respect to the predictions.
     *
     * @return shaped like the predictions
     */
    public abstract NDArray gradient();

    /**
     * Returns a signed square root of the per-sample Hessian with respect to the predictions.
     *
     * @return the columns, or {@code null} where the Hessian is zero
     */
    public abstract ColumnSet factor();

    /**
     * Returns the per-sample feature shape of the predictions.
     *
     * @return the shape without the batch axis
     */
    public final Shape features() {
        return predictions.getShape().slice(1);
    }

    /**
     * Returns the number of predictions per sample.
     *
     * @return the feature count
     */
    public final long featureCount() {
        return features().size();
    }
}
