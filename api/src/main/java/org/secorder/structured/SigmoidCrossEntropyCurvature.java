package org.secorder.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Activation;

/**
 * DJL's {@code SigmoidBinaryCrossEntropyLoss} on logits, with hard or soft targets: {@code weight *
 * mean(softplus(x) - x t)} over all elements, whose Hessian is the diagonal {@code weight
 * sigmoid(x) (1 - sigmoid(x)) / count}.
 */
final class SigmoidCrossEntropyCurvature extends LossCurvature {

    private final float weight;
    private NDArray value;
    private NDArray gradient;
    private ColumnSet factor;

    /**
     * Creates the curvature of a {@code SigmoidBinaryCrossEntropyLoss} on logits.
     *
     * @param weight the loss's weight
     */
    SigmoidCrossEntropyCurvature(float weight) {
        super("SigmoidBinaryCrossEntropyLoss(weight " + weight + ", fromSigmoid false)");
        this.weight = weight;
    }

    /** {@inheritDoc} */
    @Override
    void evaluate(NDArray predictions, NDArray labels) {
        NDArray target =
                labels.reshape(predictions.getShape()).toType(predictions.getDataType(), false);
        double count = predictions.size();
        NDArray weights = weights(predictions, weight);
        NDArray elementwise =
                Activation.relu(predictions)
                        .sub(predictions.mul(target))
                        .add(Activation.softPlus(predictions.abs().neg()));
        value = elementwise.mul(weight).mean();
        NDArray probabilities = Activation.sigmoid(predictions);
        gradient = probabilities.sub(target).mul(weights).div(count);
        long batch = predictions.getShape().get(0);
        NDArray coefficients =
                probabilities
                        .mul(probabilities.neg().add(1))
                        .mul(weights)
                        .div(count)
                        .reshape(batch, -1);
        factor =
                DiagonalColumns.of(
                        coefficients.abs().sqrt(),
                        weight < 0 ? weights.sign().reshape(batch, -1) : null,
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
