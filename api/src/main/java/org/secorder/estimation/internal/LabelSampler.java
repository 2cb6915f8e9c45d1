package org.secorder.estimation.internal;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.loss.L2Loss;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SigmoidBinaryCrossEntropyLoss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import java.util.SplittableRandom;
import org.secorder.evaluation.HostArrays;

/**
 * Draws labels from a model's predictive distribution under a DJL loss, and knows the scale that
 * makes the squared gradient at those labels unbiased for the generalized Gauss-Newton diagonal.
 *
 * <p>A mean-reduced DJL loss is {@code L = sum_n c * nll(f_n, y_n)}: {@code c} times a negative
 * log-likelihood per term {@code n} (a sample, or an element of it), where the Hessian of {@code
 * nll} in the output equals the Fisher information {@code E[grad nll grad nll^T]} with {@code y}
 * drawn from the model's distribution (exponential families in their natural parameters). With
 * labels drawn independently per term, the gradient {@code g = sum_n J_n^T c grad nll_n} has mean
 * zero per term and no cross terms, so {@code E[g g^T] = c sum_n J_n^T c Fisher_n J_n = c GGN}: the
 * estimate is {@code g * g / c}.
 *
 * <ul>
 *   <li>{@code L2Loss(w)} is {@code w mean((p - y)^2)} over all {@code N} elements: a Gaussian of
 *       unit variance, {@code y = p + eps}, and {@code c = 2w / N} (the loss's Hessian per element
 *       is {@code 2w / N}, and {@code c^2} that of a unit Gaussian's Fisher).
 *   <li>{@code SoftmaxCrossEntropyLoss(w)} on logits {@code (B, C)} is {@code w mean_b(-log
 *       softmax(p_b)[y_b])}: {@code y_b} categorical with probabilities {@code softmax(p_b)},
 *       {@code c = w / B}; sparse labels (class indices) or dense (one-hot), as the caller's
 *       targets are.
 *   <li>{@code SigmoidBinaryCrossEntropyLoss(w)} on logits is {@code w} times the mean over all
 *       {@code N} elements: {@code y} Bernoulli with probability {@code sigmoid(p)}, {@code c = w /
 *       N}.
 * </ul>
 *
 * <p>The weight {@code w} and the form of the loss are measured, not read from private fields: the
 * loss is evaluated at two points where the assumed formula gives known values, and a loss that
 * does not match (log-probabilities instead of logits, probabilities instead of logits, a
 * non-positive weight) is rejected.
 */
final class LabelSampler {

    static final String SUPPORTED =
            "L2Loss, SoftmaxCrossEntropyLoss on (batch, classes) logits (fromLogit=true; sparse or"
                + " one-hot labels), SigmoidBinaryCrossEntropyLoss on logits (fromSigmoid=false)";

    private enum Kind {
        SQUARED_ERROR,
        SOFTMAX,
        SIGMOID
    }

    private final Kind kind;
    private final double[] predictions;
    private final Shape predictionShape;
    private final Shape labelShape;
    private final DataType labelType;
    private final boolean sparse;
    private final double scale;

    private LabelSampler(
            Kind kind,
            double[] predictions,
            Shape predictionShape,
            NDArray targets,
            boolean sparse,
            double weight) {
        this.kind = kind;
        this.predictions = predictions;
        this.predictionShape = predictionShape;
        this.labelShape = targets.getShape();
        this.labelType = targets.getDataType();
        this.sparse = sparse;
        long n = predictionShape.size();
        switch (kind) {
            case SQUARED_ERROR:
                scale = 2 * weight / n;
                break;
            case SOFTMAX:
                scale = weight / predictionShape.get(0);
                break;
            default:
                scale = weight / n;
                break;
        }
    }

    /**
     * Recognizes a loss and measures its weight.
     *
     * @param loss the loss
     * @param prediction the model's output
     * @param targets the caller's labels, whose shape and data type sampled labels take
     * @param scratch a manager for the measurements
     * @return the sampler
     * @throws UnsupportedOperationException for a loss or form that is not supported
     */
    static LabelSampler of(Loss loss, NDArray prediction, NDArray targets, NDManager scratch) {
        Shape shape = prediction.getShape();
        double[] values = prediction.toType(DataType.FLOAT64, false).toDoubleArray();
        DataType type = prediction.getDataType();
        if (loss instanceof L2Loss) {
            requireSize(targets, shape.size(), loss);
            double weight = value(loss, scratch, type, new float[] {1}, new float[] {0}, 1);
            double check = value(loss, scratch, type, new float[] {3}, new float[] {1}, 1);
            requireMatch(loss, weight, check, 4 * weight);
            return new LabelSampler(Kind.SQUARED_ERROR, values, shape, targets, false, weight);
        }
        if (loss instanceof SoftmaxCrossEntropyLoss) {
            if (shape.dimension() != 2) {
                throw unsupported(loss, "predictions of shape " + shape + ", not (batch, classes)");
            }
            boolean sparse = targets.size() != shape.size();
            requireSize(targets, sparse ? shape.get(0) : shape.size(), loss);
            float[] zeroLabel = sparse ? new float[] {0} : new float[] {1, 0};
            float[] oneLabel = sparse ? new float[] {1} : new float[] {0, 1};
            double weight =
                    value(loss, scratch, type, zeroLabel, new float[] {0, 0}, 2) / Math.log(2);
            double check = value(loss, scratch, type, oneLabel, new float[] {1, 0}, 2);
            requireMatch(loss, weight, check, weight * Math.log(1 + Math.E));
            return new LabelSampler(Kind.SOFTMAX, values, shape, targets, sparse, weight);
        }
        if (loss instanceof SigmoidBinaryCrossEntropyLoss) {
            requireSize(targets, shape.size(), loss);
            double weight =
                    value(loss, scratch, type, new float[] {0}, new float[] {0}, 1) / Math.log(2);
            double check = value(loss, scratch, type, new float[] {1}, new float[] {2}, 1);
            requireMatch(loss, weight, check, weight * Math.log1p(Math.exp(-2)));
            return new LabelSampler(Kind.SIGMOID, values, shape, targets, false, weight);
        }
        throw unsupported(loss, loss.getClass().getName());
    }

    /** The scale {@code c}: the estimate is the squared gradient over it. */
    double scale() {
        return scale;
    }

    /**
     * Draws one set of labels for the whole batch.
     *
     * @param random the random stream
     * @param manager where the labels land
     * @return labels of the caller's targets' shape and data type
     */
    NDArray sample(SplittableRandom random, NDManager manager) {
        double[] labels = new double[(int) labelShape.size()];
        switch (kind) {
            case SQUARED_ERROR:
                for (int i = 0; i < labels.length; i++) {
                    labels[i] = predictions[i] + random.nextGaussian();
                }
                break;
            case SOFTMAX:
                sampleClasses(random, labels);
                break;
            default:
                for (int i = 0; i < labels.length; i++) {
                    double probability = 1 / (1 + Math.exp(-predictions[i]));
                    labels[i] = random.nextDouble() < probability ? 1 : 0;
                }
                break;
        }
        NDArray array = HostArrays.create(manager, labels, labelShape);
        return array.getDataType() == labelType ? array : array.toType(labelType, false);
    }

    private void sampleClasses(SplittableRandom random, double[] labels) {
        int classes = (int) predictionShape.get(1);
        int batch = (int) predictionShape.get(0);
        for (int b = 0; b < batch; b++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int k = 0; k < classes; k++) {
                max = Math.max(max, predictions[b * classes + k]);
            }
            double total = 0;
            for (int k = 0; k < classes; k++) {
                total += Math.exp(predictions[b * classes + k] - max);
            }
            double u = random.nextDouble() * total;
            int chosen = classes - 1;
            for (int k = 0; k < classes; k++) {
                u -= Math.exp(predictions[b * classes + k] - max);
                if (u < 0) {
                    chosen = k;
                    break;
                }
            }
            if (sparse) {
                labels[b] = chosen;
            } else {
                labels[b * classes + chosen] = 1;
            }
        }
    }

    /** Evaluates the loss at one tiny sample. */
    private static double value(
            Loss loss,
            NDManager scratch,
            DataType type,
            float[] label,
            float[] prediction,
            int classes) {
        NDArray labels =
                HostArrays.create(scratch, label, new Shape(1, label.length)).toType(type, false);
        NDArray predictions =
                HostArrays.create(scratch, prediction, new Shape(1, classes)).toType(type, false);
        if (label.length == 1 && classes == 2) {
            labels = labels.reshape(1);
        }
        NDArray value = loss.evaluate(new NDList(labels), new NDList(predictions));
        return value.toType(DataType.FLOAT64, false).getDouble();
    }

    private static void requireSize(NDArray targets, long expected, Loss loss) {
        if (targets.size() != expected) {
            throw new IllegalArgumentException(
                    "targets: "
                            + loss.getName()
                            + " needs "
                            + expected
                            + " label elements for these predictions, got shape "
                            + targets.getShape());
        }
    }

    private static void requireMatch(Loss loss, double weight, double actual, double expected) {
        if (!(weight > 0) || Math.abs(actual - expected) > 1e-3 * Math.abs(expected)) {
            throw unsupported(
                    loss,
                    "its values do not match the supported form: weight "
                            + weight
                            + ", value "
                            + actual
                            + " where "
                            + expected
                            + " was expected");
        }
    }

    private static UnsupportedOperationException unsupported(Loss loss, String what) {
        return new UnsupportedOperationException(
                "MONTE_CARLO does not support the loss '"
                        + loss.getName()
                        + "' ("
                        + what
                        + "). Supported: "
                        + SUPPORTED
                        + ". Use Method.STRUCTURED with Curvature.GGN, or HUTCHINSON, for other"
                        + " losses.");
    }
}
