package org.secorder.training;

import ai.djl.ndarray.NDList;
import ai.djl.nn.Block;
import ai.djl.training.loss.Loss;
import org.secorder.core.HessianDiagonal;

/**
 * Where {@link AdaHessian} gets the Hessian diagonal of a training batch's loss from: an unbiased
 * estimate or an exact diagonal.
 */
@FunctionalInterface
public interface HessianEstimator {

    /**
     * Estimates the Hessian diagonal of a model's loss on one batch.
     *
     * @param model the model, whose parameters must be left as they are
     * @param loss the loss, evaluated as {@code loss.evaluate(labels, predictions)}
     * @param inputs the batch's inputs, on the device of the model's parameters
     * @param labels the batch's labels, on that device
     * @return one array per entry of {@code model.getParameters()}, shaped like it, which the
     *     caller owns
     */
    NDList estimate(Block model, Loss loss, NDList inputs, NDList labels);

    /**
     * Returns an estimator that computes a diagonal exactly with {@link HessianDiagonal}, for
     * example {@link HessianDiagonal.Method#STRUCTURED}, which needs only first derivatives and so
     * works on engines without Hessian-vector products, such as MXNet.
     *
     * @param diagonal the configured diagonal
     * @return the estimator
     */
    static HessianEstimator exact(HessianDiagonal diagonal) {
        if (diagonal == null) {
            throw new IllegalArgumentException("diagonal must not be null");
        }
        return diagonal::compute;
    }
}
