package org.secorder.training;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Block;
import ai.djl.training.loss.Loss;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.secorder.core.HessianVectorProduct;
import org.secorder.evaluation.HostArrays;
import org.secorder.operator.CurvatureOperator;

/**
 * Hutchinson's estimate of the Hessian diagonal, {@code mean_s z_s * (H z_s)} over Rademacher
 * vectors {@code z_s}: unbiased, one Hessian-vector product per vector. The vectors come from a
 * random generator of its own, so the engine's random numbers (dropout, initialization) are not
 * drawn.
 */
final class Hutchinson implements HessianEstimator {

    /** The most vectors multiplied in one evaluation of the loss, to bound memory. */
    private static final int CHUNK = 16;

    private final HessianVectorProduct hessianVectorProducts =
            HessianVectorProduct.builder().build();
    private final int samples;
    private final SplittableRandom random;

    Hutchinson(int samples, long seed) {
        this.samples = samples;
        this.random = new SplittableRandom(seed);
    }

    /** {@inheritDoc} */
    @Override
    public NDList estimate(Block model, Loss loss, NDList inputs, NDList labels) {
        CurvatureOperator operator = hessianVectorProducts.operator(model, loss, inputs, labels);
        NDList parameters = operator.getParameters();
        NDArray[] sums = new NDArray[parameters.size()];
        NDManager owner = parameters.get(0).getManager();
        try (NDManager work = owner.newSubManager()) {
            for (int done = 0; done < samples; done += CHUNK) {
                List<NDList> vectors = new ArrayList<>();
                for (int s = done; s < Math.min(samples, done + CHUNK); s++) {
                    vectors.add(rademacher(parameters, work));
                }
                List<NDList> products = multiply(operator, vectors);
                for (int s = 0; s < vectors.size(); s++) {
                    NDList vector = vectors.get(s);
                    NDList product = products.get(s);
                    product.attach(work);
                    for (int i = 0; i < sums.length; i++) {
                        NDArray term = vector.get(i).mul(product.get(i));
                        if (sums[i] == null) {
                            sums[i] = term;
                        } else {
                            sums[i].addi(term);
                            term.close();
                        }
                    }
                    product.close();
                    vector.close();
                }
            }
            NDList result = new NDList(sums.length);
            for (NDArray sum : sums) {
                result.add(samples == 1 ? sum : sum.divi(samples));
            }
            result.attach(owner);
            return result;
        }
    }

    /** All the products in one evaluation of the loss, with the way out where there are none. */
    private static List<NDList> multiply(CurvatureOperator operator, List<NDList> vectors) {
        try {
            return operator.multiplyAll(vectors);
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
    }

    /** One vector of independent signs, each +1 or -1 with probability 1/2, per parameter. */
    private NDList rademacher(NDList parameters, NDManager work) {
        NDList vector = new NDList(parameters.size());
        for (NDArray parameter : parameters) {
            int size = Math.toIntExact(parameter.size());
            float[] signs = new float[size];
            synchronized (random) {
                long bits = 0;
                for (int i = 0; i < size; i++) {
                    if (i % 64 == 0) {
                        bits = random.nextLong();
                    }
                    signs[i] = (bits & 1) == 0 ? 1f : -1f;
                    bits >>>= 1;
                }
            }
            NDArray created = HostArrays.create(work, signs, parameter.getShape());
            NDArray typed =
                    parameter.getDataType() == DataType.FLOAT32
                            ? created
                            : created.toType(parameter.getDataType(), false);
            NDArray placed = typed.toDevice(parameter.getDevice(), false);
            placed.attach(work);
            vector.add(placed);
        }
        return vector;
    }
}
