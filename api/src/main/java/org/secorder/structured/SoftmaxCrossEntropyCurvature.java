package org.secorder.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * DJL's {@code SoftmaxCrossEntropyLoss} on {@code (batch, classes)} predictions, with sparse (class
 * index) or dense (one-hot or soft) labels.
 *
 * <p>On logits, each sample's Hessian is {@code t w / N (diag(p) - p p^T)}, {@code t} the sum of
 * its label, with the signed square root {@code sqrt(t w / N) (diag(sqrt p) - p sqrt(p)^T)}: one
 * column per class. On log-probabilities ({@code fromLogit=false}) the loss is linear.
 */
final class SoftmaxCrossEntropyCurvature extends LossCurvature {

    private final float weight;
    private final int classAxis;
    private final boolean sparseLabel;
    private final boolean fromLogit;
    private NDArray value;
    private NDArray gradient;
    private ColumnSet factor;

    /**
     * Creates the curvature of a {@code SoftmaxCrossEntropyLoss}.
     *
     * @param weight the loss's weight
     * @param classAxis the class axis
     * @param sparseLabel whether labels are class indices
     * @param fromLogit whether predictions are logits rather than log-probabilities
     */
    SoftmaxCrossEntropyCurvature(
            float weight, int classAxis, boolean sparseLabel, boolean fromLogit) {
        super(
                "SoftmaxCrossEntropyLoss(weight "
                        + weight
                        + ", classAxis "
                        + classAxis
                        + ", sparseLabel "
                        + sparseLabel
                        + ", fromLogit "
                        + fromLogit
                        + ")");
        this.weight = weight;
        this.classAxis = classAxis;
        this.sparseLabel = sparseLabel;
        this.fromLogit = fromLogit;
    }

    /** {@inheritDoc} */
    @Override
    void evaluate(NDArray predictions, NDArray labels) {
        Shape shape = predictions.getShape();
        if (shape.dimension() != 2 || Math.floorMod(classAxis, 2) != 1) {
            throw new UnsupportedOperationException(
                    getDescription()
                            + " on predictions of shape "
                            + shape
                            + ": the structured method supports (batch, classes) predictions"
                            + " with the classes on axis 1 (or -1)");
        }
        long batch = shape.get(0);
        int classes = Math.toIntExact(shape.get(1));
        DataType type = predictions.getDataType();
        NDArray target;
        if (sparseLabel) {
            target = labels.reshape(batch).toType(DataType.INT64, false).oneHot(classes, type);
        } else {
            target = labels.reshape(shape).toType(type, false);
        }
        NDArray weights = weights(predictions, weight);
        if (!fromLogit) {
            value = predictions.mul(target).sum(new int[] {1}).neg().mul(weight).mean();
            gradient = target.mul(weights).div(-batch);
            factor = null;
            return;
        }
        NDArray logProbabilities = predictions.logSoftmax(1);
        NDArray probabilities = logProbabilities.exp();
        NDArray totals = target.sum(new int[] {1}, true);
        value = logProbabilities.mul(target).sum(new int[] {1}).neg().mul(weight).mean();
        gradient = probabilities.mul(totals).sub(target).mul(weights).div(batch);
        NDArray coefficients = totals.mul(weights.get(":, 0:1")).div(batch);
        NDArray roots = probabilities.sqrt();
        NDArray diagonal =
                predictions
                        .getManager()
                        .eye(classes, classes, 0, type)
                        .expandDims(0)
                        .mul(roots.expandDims(1));
        NDArray values = diagonal.sub(roots.expandDims(2).mul(probabilities.expandDims(1)));
        values = values.mul(coefficients.abs().sqrt().expandDims(2));
        NDArray signs =
                weight < 0 || !sparseLabel ? coefficients.sign().mul(target.onesLike()) : null;
        factor = new DenseColumns(values, signs, new Shape(classes));
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
