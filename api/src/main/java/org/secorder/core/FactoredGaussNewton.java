package org.secorder.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.training.loss.Loss;
import java.util.function.LongConsumer;
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngine;
import org.secorder.structured.LossHessianFactor;

/**
 * The exact generalized Gauss-Newton-vector product from first derivatives only, for engines
 * without a double backward.
 *
 * <p>With the loss Hessian of each sample factored as {@code H_n = sum_k sign_nk s_nk s_nk^T} (see
 * {@link LossHessianFactor}), {@code G v = sum_{n,k} sign_nk g_nk (g_nk . v)} where {@code g_nk =
 * J_n^T s_nk} is the gradient of {@code z_n . s_nk}, {@code z_n} the model's output for sample
 * {@code n}: one vector-Jacobian product through the recorded forward pass of the whole batch per
 * sample and factor column. That is exact for any model, samples coupled or not, and costs about
 * {@code N K} gradient evaluations of the batch.
 */
final class FactoredGaussNewton {

    private FactoredGaussNewton() {}

    /**
     * Returns the number of vector-Jacobian products one product costs.
     *
     * @param factor the loss Hessian's factor
     * @return {@code N K}
     */
    static long products(LossHessianFactor factor) {
        return factor.getValues().getShape().get(0) * factor.getValues().getShape().get(1);
    }

    /**
     * Computes the product.
     *
     * @param engine the engine adapter
     * @param loss the DJL loss
     * @param output the model's output, recorded
     * @param labels the labels
     * @param variables the parameters the product is over
     * @param vectors one vector per variable
     * @param results the manager the products are attached to
     * @param costly called with the number of vector-Jacobian products before they run
     * @return one product per variable, or {@code null} for a variable the output does not depend
     *     on
     */
    static NDArray[] compute(
            SecondOrderEngine engine,
            Loss loss,
            NDArray output,
            NDArray labels,
            NDArray[] variables,
            NDArray[] vectors,
            NDManager results,
            LongConsumer costly) {
        LossHessianFactor factor;
        RecordingScope off = engine.recording(false);
        try {
            factor = LossHessianFactor.of(loss, output, labels);
        } finally {
            off.close();
        }
        NDArray[] sums = new NDArray[variables.length];
        if (factor == null) {
            // the loss is linear in the output: the product is zero wherever the output reaches
            return zerosWhereUsed(engine, output, variables, sums, results);
        }
        NDArray values = factor.getValues();
        NDArray signs = factor.getSigns();
        long samples = values.getShape().get(0);
        long columns = values.getShape().get(1);
        costly.accept(samples * columns);
        boolean[] used = new boolean[variables.length];
        for (long n = 0; n < samples; n++) {
            for (long k = 0; k < columns; k++) {
                try (NDManager step = results.newSubManager()) {
                    step.tempAttachAll(output, values);
                    if (signs != null) {
                        step.tempAttachAll(signs);
                    }
                    NDArray sign = signs == null ? null : signs.get(new NDIndex(n, k));
                    NDArray column = values.get(new NDIndex(n, k));
                    addColumn(engine, output.get(n), column, sign, variables, vectors, sums, used);
                    for (NDArray sum : sums) {
                        if (sum != null && sum.getManager() == step) {
                            sum.attach(results);
                        }
                    }
                }
            }
        }
        for (int i = 0; i < variables.length; i++) {
            if (used[i] && sums[i] == null) {
                sums[i] = zeros(variables[i], results);
            }
        }
        return sums;
    }

    /** Adds {@code sign g (g . v)} for {@code g} the gradient of {@code output . column}. */
    private static void addColumn(
            SecondOrderEngine engine,
            NDArray output,
            NDArray column,
            NDArray sign,
            NDArray[] variables,
            NDArray[] vectors,
            NDArray[] sums,
            boolean[] used) {
        NDArray scalar;
        RecordingScope on = engine.recording(true);
        try {
            scalar = output.mul(column).sum();
        } finally {
            on.close();
        }
        NDArray[] g = engine.gradient(scalar, variables, false);
        RecordingScope quiet = engine.recording(false);
        try {
            NDArray dot = null;
            for (int i = 0; i < variables.length; i++) {
                if (g[i] != null) {
                    used[i] = true;
                    NDArray term = g[i].mul(vectors[i]).sum();
                    dot = dot == null ? term : dot.add(term);
                }
            }
            if (dot == null) {
                return;
            }
            NDArray coefficient = sign == null ? dot : dot.mul(sign);
            for (int i = 0; i < variables.length; i++) {
                if (g[i] == null) {
                    continue;
                }
                NDArray contribution = g[i].mul(coefficient);
                if (sums[i] == null) {
                    sums[i] = contribution;
                } else {
                    sums[i].addi(contribution);
                }
            }
        } finally {
            quiet.close();
        }
    }

    private static NDArray[] zerosWhereUsed(
            SecondOrderEngine engine,
            NDArray output,
            NDArray[] variables,
            NDArray[] sums,
            NDManager results) {
        try (NDManager step = results.newSubManager()) {
            step.tempAttachAll(output);
            NDArray scalar;
            RecordingScope on = engine.recording(true);
            try {
                scalar = output.sum();
            } finally {
                on.close();
            }
            NDArray[] g = engine.gradient(scalar, variables, false);
            for (int i = 0; i < variables.length; i++) {
                if (g[i] != null) {
                    sums[i] = zeros(variables[i], results);
                }
            }
        }
        return sums;
    }

    private static NDArray zeros(NDArray like, NDManager manager) {
        return manager.zeros(like.getShape(), like.getDataType(), like.getDevice());
    }
}
