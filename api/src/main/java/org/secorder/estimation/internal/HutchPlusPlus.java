package org.secorder.estimation.internal;

import java.util.ArrayList;
import java.util.List;
import org.secorder.operator.CurvatureOperator;

/**
 * Hutch++ (Meyer, Musco, Musco and Woodruff, "Hutch++: optimal stochastic trace estimation", SOSA
 * 2021): the trace of a low-rank approximation exactly, and Hutchinson's estimator on the rest.
 *
 * <p>Of {@code m} products, {@code k = floor(m/3)} sketch {@code A S} and give an orthonormal basis
 * {@code Q} of its range, {@code k} more give {@code tr(Q^T A Q)} exactly, and the remaining {@code
 * l = m - 2k} go to Hutchinson's estimator of {@code tr((I - QQ^T) A (I - QQ^T))} with probes
 * {@code g_j} independent of {@code Q}. Given {@code Q}, the estimator is unbiased for every probe
 * distribution with {@code E[g g^T] = I}, since {@code tr(Q^T A Q) + tr((I - QQ^T) A (I - QQ^T)) =
 * tr(A)}.
 *
 * <p>Standard error: given {@code Q} the only randomness left is that of the {@code l} independent
 * Hutchinson terms, so the sample standard deviation of those terms over {@code sqrt(l)} estimates
 * the conditional standard error. And because the conditional mean is {@code tr(A)} for every
 * {@code Q}, the total variance is the expected conditional variance: the reported standard error
 * is an honest estimate of the unconditional one.
 */
public final class HutchPlusPlus {

    private HutchPlusPlus() {}

    /**
     * Estimates the trace.
     *
     * @param space the operator's parameter space
     * @param operator the operator
     * @param products {@code m}, the products to spend; at least 6
     * @param random the probe stream
     * @param batch the most vectors on the devices at once
     * @return the estimate
     */
    public static ScalarEstimate trace(
            ParameterSpace space,
            CurvatureOperator operator,
            int products,
            Probes random,
            int batch) {
        int n = space.dimension();
        int k = Math.min(products / 3, n);
        int l = products - 2 * k;
        double[][] sketch = space.multiply(operator, random.next(k, n), batch);
        double[][] q = HostAlgebra.orthonormalize(sketch, new double[k][k]);
        List<double[]> basis = new ArrayList<>();
        for (double[] column : q) {
            if (HostAlgebra.dot(column, column) > 0) {
                basis.add(column);
            }
        }
        double[][] kept = basis.toArray(new double[0][]);
        double[][] aq = space.multiply(operator, kept, batch);
        double lowRank = 0;
        for (int a = 0; a < kept.length; a++) {
            lowRank += HostAlgebra.dot(kept[a], aq[a]);
        }
        double[][] g = random.next(l, n);
        for (double[] probe : g) {
            for (int pass = 0; pass < 2; pass++) {
                for (double[] column : kept) {
                    HostAlgebra.axpy(-HostAlgebra.dot(column, probe), column, probe);
                }
            }
        }
        double[][] ag = space.multiply(operator, g, batch);
        double[] terms = new double[l];
        for (int j = 0; j < l; j++) {
            terms[j] = HostAlgebra.dot(g[j], ag[j]);
        }
        return RunningMoments.of(terms, lowRank, (long) k + kept.length + l);
    }
}
