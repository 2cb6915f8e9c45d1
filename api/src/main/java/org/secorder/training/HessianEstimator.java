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
     * Returns Hutchinson's estimate, {@code mean_s z_s * (H z_s)} over {@code samples} Rademacher
     * vectors {@code z_s}: unbiased, one Hessian-vector product ({@link
     * org.secorder.core.HessianVectorProduct}) per vector, so it needs an engine with second
     * derivatives (PyTorch); elsewhere it throws an {@link UnsupportedOperationException} that
     * names {@link #exact} as the way out. The vectors come from a generator of its own seeded with
     * {@code seed}, not from the engine's random numbers.
     *
     * @param samples the number of vectors per estimate, at least 1
     * @param seed the seed of the vectors
     * @return the estimator
     */
    static HessianEstimator hutchinson(int samples, long seed) {
        if (samples < 1) {
            throw new IllegalArgumentException(
                    "samples must be a positive number of vectors, got " + samples);
        }
        return new HutchinsonEstimator(samples, seed);
    }

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
