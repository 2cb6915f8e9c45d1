package org.secorder.structured.internal.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.training.loss.Loss;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DenseColumns;

/**
 * A signed square root of the Hessian of a supported DJL loss with respect to the model's output,
 * per sample: {@code H_n = sum_k sign_nk s_nk s_nk^T}, with DJL's mean reduction included.
 *
 * <p>This is the factor the structured methods start from, for callers outside this package: the
 * exact generalized Gauss-Newton-vector product on engines without second derivatives is built on
 * it. The supported losses are those of {@link org.secorder.structured.StructuredDiagonal}.
 */
public final class LossHessianFactor {

    /** The losses whose factor is known, for messages. */
    public static final String SUPPORTED_LOSSES = LossCurvatures.SUPPORTED;

    private final NDArray values;
    private final NDArray signs;

    private LossHessianFactor(NDArray values, NDArray signs) {
        this.values = values;
        this.signs = signs;
    }

    /**
     * Computes the factor of a loss at some predictions, after checking the rules against DJL's own
     * value of the loss; the arrays land in the predictions' manager.
     *
     * @param loss the DJL loss
     * @param predictions the model's output for the whole batch, {@code (N, ...)}
     * @param labels the labels
     * @return the factor, or {@code null} where the loss is linear in the predictions
     * @throws UnsupportedOperationException if the loss is not supported; the message lists the
     *     supported losses
     */
    public static LossHessianFactor of(Loss loss, NDArray predictions, NDArray labels) {
        LossCurvature curvature = LossCurvatures.of(loss);
        LossCheck.check(curvature, loss, predictions, labels);
        ColumnSet columns = curvature.factor();
        if (columns == null) {
            return null;
        }
        DenseColumns dense = columns.dense();
        return new LossHessianFactor(dense.shapedValues(), dense.getSigns());
    }

    /**
     * Returns the columns.
     *
     * @return {@code (N, K, ...)}: column {@code k} of sample {@code n}, shaped like one sample's
     *     predictions
     */
    public NDArray getValues() {
        return values;
    }

    /**
     * Returns the signs of the columns.
     *
     * @return {@code (N, K)} of {@code +1} and {@code -1}, or {@code null} where all are {@code +1}
     */
    public NDArray getSigns() {
        return signs;
    }
}
