package org.secorder.training;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Block;
import ai.djl.training.loss.Loss;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianVectorProduct;
import org.secorder.estimation.internal.FlatEstimate;
import org.secorder.estimation.internal.Hutchinson;
import org.secorder.estimation.internal.ParameterSpace;
import org.secorder.estimation.internal.Probes;
import org.secorder.operator.CurvatureOperator;

/**
 * Hutchinson's estimate of the Hessian diagonal, {@code mean_s z_s * (H z_s)} over Rademacher
 * vectors {@code z_s}: unbiased, one Hessian-vector product per vector, computed by the same
 * estimator as {@link HessianDiagonal.Method#HUTCHINSON}. The vectors come from a stream of its own
 * that goes on from one call to the next, so every training step gets new vectors and the engine's
 * random numbers (dropout, initialization) are not drawn.
 */
final class HutchinsonEstimator implements HessianEstimator {

    private final HessianVectorProduct hessianVectorProducts =
            HessianVectorProduct.builder().build();
    private final int samples;
    private final Probes probes;

    HutchinsonEstimator(int samples, long seed) {
        this.samples = samples;
        this.probes = new Probes(seed, false);
    }

    /** {@inheritDoc} */
    @Override
    public NDList estimate(Block model, Loss loss, NDList inputs, NDList labels) {
        CurvatureOperator operator = hessianVectorProducts.operator(model, loss, inputs, labels);
        ParameterSpace space = new ParameterSpace(operator.getParameters().toArray(new NDArray[0]));
        int batch = space.batchSize(HessianDiagonal.DEFAULT_MEMORY_BUDGET, samples);
        FlatEstimate estimate;
        try {
            // one stream: calls from several threads take their vectors in turn
            synchronized (probes) {
                estimate = Hutchinson.diagonal(space, operator, samples, probes, batch);
            }
        } catch (UnsupportedOperationException e) {
            throw new UnsupportedOperationException(
                    "Hutchinson's estimate needs Hessian-vector products, which this"
                            + " engine does not give for this model ("
                            + e.getMessage()
                            + "); use an exact diagonal that needs first derivatives"
                            + " only: HessianEstimator.exact(HessianDiagonal.builder()"
                            + ".optMethod(HessianDiagonal.Method.STRUCTURED).build())",
                    e);
        }
        return space.toParameters(estimate.getMean());
    }
}
