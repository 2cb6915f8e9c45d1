package org.secorder.structured.internal.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DenseColumns;

/**
 * DJL's {@code SoftmaxCrossEntropyLoss} on {@code (batch, classes)} predictions, with sparse (class
 * index) or dense (one-hot or soft) labels.
 *
 * <p>On logits, each sample's Hessian is {@code t w / N (diag(p) - p p^T)}, {@code t} the sum of
 * its label, a matrix of rank {@code C - 1} with a signed square root of {@code C - 1} columns (see
 * {@link SoftmaxRoot}). On log-probabilities ({@code fromLogit=false}) the loss is linear.
 */
public final class SoftmaxCrossEntropyCurvature extends LossCurvature {

    private final float weight;
    private final int classAxis;
    private final boolean sparseLabel;
    private final boolean fromLogit;
    private NDArray target;
    private NDArray probabilities;

    /**
     * Creates the curvature of a {@code SoftmaxCrossEntropyLoss}.
     *
     * @param weight the loss's weight
     * @param classAxis the class axis
     * @param sparseLabel whether labels are class indices
     * @param fromLogit whether predictions are logits rather than log-probabilities
     */
    public SoftmaxCrossEntropyCurvature(
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
    public void evaluate(NDArray predictions, NDArray labels, long totalBatch) {
        Shape shape = predictions.getShape();
        if (shape.dimension() != 2 || Math.floorMod(classAxis, 2) != 1) {
            throw new UnsupportedOperationException(
                    getDescription()
                            + " on predictions of shape "
                            + shape
                            + ": the structured method supports (batch, classes) predictions"
                            + " with the classes on axis 1 (or -1)");
        }
        super.evaluate(predictions, labels, totalBatch);
        target = null;
        probabilities = null;
    }

    private long batch() {
        return getPredictions().getShape().get(0);
    }

    private int classes() {
        return Math.toIntExact(getPredictions().getShape().get(1));
    }

    private NDArray target() {
        if (target == null) {
            DataType type = getPredictions().getDataType();
            if (sparseLabel) {
                NDArray indices = getLabels().reshape(batch()).toType(DataType.INT64, false);
                target = indices.oneHot(classes(), type);
            } else {
                target = targets();
            }
        }
        return target;
    }

    private NDArray probabilities() {
        if (probabilities == null) {
            probabilities = getPredictions().softmax(1);
        }
        return probabilities;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray value() {
        NDArray logProbabilities = fromLogit ? getPredictions().logSoftmax(1) : getPredictions();
        return logProbabilities.mul(target()).sum(new int[] {1}).neg().mul(weight).mean();
    }

    /** {@inheritDoc} */
    @Override
    public NDArray gradient() {
        double scale = (double) weight / getTotalBatch();
        if (!fromLogit) {
            return target().mul(-scale);
        }
        NDArray weighted =
                sparseLabel
                        ? probabilities()
                        : probabilities().mul(target().sum(new int[] {1}, true));
        return weighted.sub(target()).mul(scale);
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet factor() {
        if (!fromLogit || classes() == 1) {
            return null;
        }
        double scale = Math.abs((double) weight) / getTotalBatch();
        NDArray values;
        NDArray signs = null;
        if (sparseLabel) {
            values = SoftmaxRoot.of(probabilities(), Math.sqrt(scale));
            if (weight < 0) {
                signs = values.get(":, :, 0").onesLike().neg();
            }
        } else {
            NDArray root = SoftmaxRoot.of(probabilities(), 1);
            NDArray coefficients = target().sum(new int[] {1}, true).mul(weight < 0 ? -1 : 1);
            values = root.mul(coefficients.abs().mul(scale).sqrt().expandDims(2));
            signs = coefficients.sign().mul(values.get(":, :, 0").onesLike());
        }
        return new DenseColumns(values, signs, new Shape(classes()));
    }
}
