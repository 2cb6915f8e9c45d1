package org.secorder.structured.internal.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.loss.Loss;
import java.util.Collections;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * Evaluates the curvature rules of a loss and checks them against DJL's own loss value, so that a
 * loss whose settings were misread fails loudly instead of giving a wrong diagonal.
 *
 * <p>The settings of a DJL loss cannot change after construction, so each loss object is checked
 * once per engine and data type.
 */
public final class LossCheck {

    private static final double DOUBLE_TOLERANCE = 1e-10;
    private static final double FLOAT_TOLERANCE = 1e-4;

    private static final Map<Loss, String> CHECKED =
            Collections.synchronizedMap(new WeakHashMap<>());

    private LossCheck() {}

    /**
     * Evaluates the rules on a batch of its own and compares their loss with {@code loss.evaluate}.
     *
     * @param curvature the rules
     * @param loss the DJL loss
     * @param predictions the model's output
     * @param labels the labels
     * @throws UnsupportedOperationException if the values differ
     */
    public static void check(
            LossCurvature curvature, Loss loss, NDArray predictions, NDArray labels) {
        curvature.evaluate(predictions, labels, predictions.getShape().get(0));
        String key =
                curvature.getDescription()
                        + " on "
                        + predictions.getManager().getEngine().getEngineName()
                        + " "
                        + predictions.getDataType();
        if (key.equals(CHECKED.get(loss))) {
            // a loss's settings cannot change, and these rules were checked against them already
            return;
        }
        NDArray djl = loss.evaluate(new NDList(labels), new NDList(predictions));
        double expected = djl.toType(DataType.FLOAT64, false).getDouble();
        double actual = curvature.value().toType(DataType.FLOAT64, false).getDouble();
        double tolerance =
                predictions.getDataType() == DataType.FLOAT64 ? DOUBLE_TOLERANCE : FLOAT_TOLERANCE;
        if (!(Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)))) {
            throw new UnsupportedOperationException(
                    "The loss '"
                            + loss.getName()
                            + "' evaluates to "
                            + expected
                            + " but the structured rules for "
                            + curvature.getDescription()
                            + " give "
                            + actual
                            + "; the loss does not behave as DJL 0.36.0's does");
        }
        CHECKED.put(loss, key);
    }
}
