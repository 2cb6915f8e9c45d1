package org.secorder.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.training.loss.Loss;
import java.util.function.LongConsumer;
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngine;
import org.secorder.structured.internal.losses.LossHessianFactor;

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
     * @param vectors one group per product, each with one vector per variable
     * @param results the manager the products are attached to
     * @param costly called with the number of vector-Jacobian products before they run
     * @return one group of products per group of vectors, one per variable, or {@code null} for a
     *     variable the output does not depend on
     */
    static NDArray[][] compute(
            SecondOrderEngine engine,
            Loss loss,
            NDArray output,
            NDArray labels,
            NDArray[] variables,
            NDArray[][] vectors,
            NDManager results,
            LongConsumer costly) {
        LossHessianFactor factor = factor(engine, loss, output, labels);
        NDArray[][] sums = new NDArray[vectors.length][variables.length];
        if (factor == null) {
            // the loss is linear in the output: the product is zero wherever the output reaches
            for (NDArray[] group : sums) {
                zerosWhereUsed(engine, output, variables, group, results);
            }
            return sums;
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
                    keep(sums, step, results);
                }
            }
        }
        for (NDArray[] group : sums) {
            zerosWhereUnset(group, used, variables, results);
        }
        return sums;
    }

    private static LossHessianFactor factor(
            SecondOrderEngine engine, Loss loss, NDArray output, NDArray labels) {
        RecordingScope off = engine.recording(false);
        try {
            return LossHessianFactor.of(loss, output, labels);
        } catch (UnsupportedOperationException e) {
            throw new UnsupportedOperationException(
                    "The exact Gauss-Newton-vector product from first derivatives"
                            + " (Method.FACTORED, what AUTO picks on engines without second"
                            + " derivatives) needs the Hessian of the loss with respect to the"
                            + " model's output, which Secorder knows for: "
                            + LossHessianFactor.SUPPORTED_LOSSES
                            + ". Run on the PyTorch engine for any other loss ("
                            + e.getMessage()
                            + ")",
                    e);
        } finally {
            off.close();
        }
    }

    /** Moves the sums a step created out of its scope. */
    private static void keep(NDArray[][] sums, NDManager step, NDManager results) {
        for (NDArray[] group : sums) {
            for (NDArray sum : group) {
                if (sum != null && sum.getManager() == step) {
                    sum.attach(results);
                }
            }
        }
    }

    private static void zerosWhereUnset(
            NDArray[] sums, boolean[] used, NDArray[] variables, NDManager results) {
        for (int i = 0; i < variables.length; i++) {
            if (used[i] && sums[i] == null) {
                sums[i] = zeros(variables[i], results);
            }
        }
    }

    /**
     * Adds {@code sign g (g . v)} to each group's sums, for {@code g} the gradient of {@code output
     * . column}, computed once for all groups.
     */
    private static void addColumn(
            SecondOrderEngine engine,
            NDArray output,
            NDArray column,
            NDArray sign,
            NDArray[] variables,
            NDArray[][] vectors,
            NDArray[][] sums,
            boolean[] used) {
        NDArray scalar;
        RecordingScope on = engine.recording(true);
        try {
            scalar = output.mul(column).sum();
        } finally {
            on.close();
        }
        NDArray[] g = engine.gradient(scalar, variables, false);
        for (int i = 0; i < variables.length; i++) {
            used[i] |= g[i] != null;
        }
        RecordingScope quiet = engine.recording(false);
        try {
            for (int j = 0; j < vectors.length; j++) {
                addProjection(g, sign, vectors[j], sums[j]);
            }
        } finally {
            quiet.close();
        }
    }

    /** Adds {@code sign g (g . v)} to the sums of one vector. */
    private static void addProjection(NDArray[] g, NDArray sign, NDArray[] vector, NDArray[] sums) {
        NDArray dot = null;
        for (int i = 0; i < g.length; i++) {
            if (g[i] != null) {
                NDArray term = g[i].mul(vector[i]).sum();
                dot = dot == null ? term : dot.add(term);
            }
        }
        if (dot == null) {
            return;
        }
        NDArray coefficient = sign == null ? dot : dot.mul(sign);
        for (int i = 0; i < g.length; i++) {
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
