package org.secorder.structured.internal.losses;

import ai.djl.training.loss.L1Loss;
import ai.djl.training.loss.L2Loss;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SigmoidBinaryCrossEntropyLoss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import org.secorder.structured.internal.PrivateFields;

/** Finds the curvature rules of a DJL loss. */
public final class LossCurvatures {

    /** The losses the structured method supports, for messages. */
    public static final String SUPPORTED =
            "L2Loss (any weight), L1Loss, SoftmaxCrossEntropyLoss on (batch, classes) predictions"
                    + " (sparse or dense labels, logits or log-probabilities),"
                    + " SigmoidBinaryCrossEntropyLoss on logits (fromSigmoid=false, soft targets"
                    + " too)";

    private LossCurvatures() {}

    /**
     * Returns the curvature rules of a loss.
     *
     * @param loss the loss
     * @return the rules
     * @throws UnsupportedOperationException if the loss is not supported
     */
    public static LossCurvature of(Loss loss) {
        Class<?> type = loss.getClass();
        if (type == L2Loss.class) {
            return new SquaredErrorCurvature(PrivateFields.readFloat(loss, L2Loss.class, "weight"));
        }
        if (type == L1Loss.class) {
            return new AbsoluteErrorCurvature(
                    PrivateFields.readFloat(loss, L1Loss.class, "weight"));
        }
        if (type == SoftmaxCrossEntropyLoss.class) {
            Class<?> owner = SoftmaxCrossEntropyLoss.class;
            return new SoftmaxCrossEntropyCurvature(
                    PrivateFields.readFloat(loss, owner, "weight"),
                    PrivateFields.readInt(loss, owner, "classAxis"),
                    PrivateFields.readBoolean(loss, owner, "sparseLabel"),
                    PrivateFields.readBoolean(loss, owner, "fromLogit"));
        }
        if (type == SigmoidBinaryCrossEntropyLoss.class) {
            Class<?> owner = SigmoidBinaryCrossEntropyLoss.class;
            if (PrivateFields.readBoolean(loss, owner, "fromSigmoid")) {
                throw unsupported(
                        loss,
                        "SigmoidBinaryCrossEntropyLoss with fromSigmoid=true (DJL 0.36.0 evaluates"
                                + " it as +[t log p + (1 - t) log(1 - p)], without the minus sign);"
                                + " pass logits with fromSigmoid=false");
            }
            return new SigmoidCrossEntropyCurvature(PrivateFields.readFloat(loss, owner, "weight"));
        }
        throw unsupported(loss, type.getName());
    }

    private static UnsupportedOperationException unsupported(Loss loss, String what) {
        return new UnsupportedOperationException(
                "The structured Hessian diagonal does not support the loss '"
                        + loss.getName()
                        + "' ("
                        + what
                        + "). Supported losses: "
                        + SUPPORTED
                        + ". Use Method.AUTOGRAD or Method.FINITE_DIFFERENCE for other losses.");
    }
}
