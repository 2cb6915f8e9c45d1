package org.secorder.structured.internal.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Activation;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DiagonalColumns;

/**
 * DJL's {@code SigmoidBinaryCrossEntropyLoss} on logits, with hard or soft targets: {@code weight *
 * mean(softplus(x) - x t)} over all elements, whose Hessian is the diagonal {@code weight
 * sigmoid(x) (1 - sigmoid(x)) / count}.
 */
public final class SigmoidCrossEntropyCurvature extends LossCurvature {

    private final float weight;

    /**
     * Creates the curvature of a {@code SigmoidBinaryCrossEntropyLoss} on logits.
     *
     * @param weight the loss's weight
     */
    public SigmoidCrossEntropyCurvature(float weight) {
        super("SigmoidBinaryCrossEntropyLoss(weight " + weight + ", fromSigmoid false)");
        this.weight = weight;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray value() {
        NDArray x = getPredictions();
        NDArray elementwise =
                Activation.relu(x).sub(x.mul(targets())).add(Activation.softPlus(x.abs().neg()));
        return elementwise.mul(weight).mean();
    }

    /** {@inheritDoc} */
    @Override
    public NDArray gradient() {
        NDArray x = getPredictions();
        return Activation.sigmoid(x).sub(targets()).mul(weight / totalElements());
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet factor() {
        NDArray x = getPredictions();
        long batch = x.getShape().get(0);
        NDArray probabilities = Activation.sigmoid(x);
        double coefficient = Math.abs((double) weight) / totalElements();
        NDArray scales =
                probabilities
                        .mul(probabilities.neg().add(1))
                        .mul(coefficient)
                        .sqrt()
                        .reshape(batch, featureCount());
        NDArray signs = weight < 0 ? scales.onesLike().neg() : null;
        return DiagonalColumns.of(scales, signs, features());
    }
}
