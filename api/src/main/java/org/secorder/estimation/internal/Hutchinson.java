package org.secorder.estimation.internal;

import org.secorder.operator.CurvatureOperator;

/**
 * Hutchinson's estimators of the diagonal and the trace.
 *
 * <p>For probes {@code z} with independent entries of mean zero and variance one, {@code E[z_i z_j]
 * = delta_ij}, so {@code E[z_i (A z)_i] = sum_j A_ij E[z_i z_j] = A_ii} and {@code E[z^T A z] =
 * tr(A)}: the plain mean {@code (1/m) sum_k z_k * (A z_k)} (elementwise products) is unbiased for
 * Rademacher and Gaussian probes alike. The ratio {@code sum_k z_k * (A z_k) / sum_k z_k * z_k},
 * sometimes used to "normalise" Gaussian probes, is not: its numerator and denominator are
 * dependent, so its expectation differs from {@code A_ii} by a term of order {@code 1/m} (for
 * Rademacher probes the denominator is exactly {@code m} and both forms agree).
 *
 * <p>The standard error is the sample standard deviation of the {@code m} independent per-probe
 * terms over {@code sqrt(m)}. Its variance, for reference: {@code sum_{j != i} A_ij^2} per diagonal
 * element for Rademacher probes, plus {@code 2 A_ii^2} for Gaussian ones.
 */
public final class Hutchinson {

    private Hutchinson() {}

    /**
     * Estimates the diagonal.
     *
     * @param space the operator's parameter space
     * @param operator the operator
     * @param probes how many probes (products)
     * @param random the probe stream
     * @param batch the most probes on the devices at once
     * @return the estimate
     */
    public static FlatEstimate diagonal(
            ParameterSpace space,
            CurvatureOperator operator,
            int probes,
            Probes random,
            int batch) {
        int n = space.dimension();
        RunningMoments moments = new RunningMoments(n);
        for (int start = 0; start < probes; start += batch) {
            double[][] z = random.next(Math.min(batch, probes - start), n);
            double[][] az = space.multiply(operator, z, batch);
            for (int k = 0; k < z.length; k++) {
                moments.addProduct(z[k], az[k]);
            }
        }
        return moments.estimate(probes);
    }

    /**
     * Estimates the trace.
     *
     * @param space the operator's parameter space
     * @param operator the operator
     * @param probes how many probes (products)
     * @param random the probe stream
     * @param batch the most probes on the devices at once
     * @return the estimate
     */
    public static ScalarEstimate trace(
            ParameterSpace space,
            CurvatureOperator operator,
            int probes,
            Probes random,
            int batch) {
        int n = space.dimension();
        double[] terms = new double[probes];
        for (int start = 0; start < probes; start += batch) {
            double[][] z = random.next(Math.min(batch, probes - start), n);
            double[][] az = space.multiply(operator, z, batch);
            for (int k = 0; k < z.length; k++) {
                terms[start + k] = HostAlgebra.dot(z[k], az[k]);
            }
        }
        return RunningMoments.of(terms, 0, probes);
    }

    /**
     * Computes the exact trace as {@code sum_j e_j^T A e_j}, one product per unit vector.
     *
     * @param space the operator's parameter space
     * @param operator the operator
     * @param batch the most vectors on the devices at once
     * @return the trace, with a standard error of zero
     */
    public static ScalarEstimate exactTrace(
            ParameterSpace space, CurvatureOperator operator, int batch) {
        int n = space.dimension();
        double trace = 0;
        for (int start = 0; start < n; start += batch) {
            double[][] units = new double[Math.min(batch, n - start)][n];
            for (int k = 0; k < units.length; k++) {
                units[k][start + k] = 1;
            }
            double[][] columns = space.multiply(operator, units, batch);
            for (int k = 0; k < units.length; k++) {
                trace += columns[k][start + k];
            }
        }
        return new ScalarEstimate(trace, 0, n);
    }
}
