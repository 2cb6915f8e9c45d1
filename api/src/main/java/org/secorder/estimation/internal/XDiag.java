package org.secorder.estimation.internal;

import org.secorder.operator.CurvatureOperator;

/**
 * XDiag (Epperly, Tropp and Webber, "XTrace: making the most of every sample in stochastic trace
 * estimation", SIAM J. Matrix Anal. Appl. 45, 2024): a low-rank approximation of the operator from
 * half of the products, with Hutchinson's estimator on the rest, every probe used for both in turn.
 *
 * <p>With {@code s} probes {@code Omega = [w_1 ... w_s]} and {@code Y = A Omega = Q R}, the
 * estimator averages, over {@code i}, the leave-one-out estimates
 *
 * <pre>
 * t_i = diag(Q_i Q_i^T A) + w_i * ((I - Q_i Q_i^T) A w_i)      (* elementwise)
 * </pre>
 *
 * where {@code Q_i} is an orthonormal basis of the columns of {@code Y} other than {@code y_i}. It
 * depends on the other probes only, so {@code E[w_i * (B w_i)] = diag(B)} for {@code B = (I - Q_i
 * Q_i^T) A} by the argument of Hutchinson's estimator, and {@code E[t_i] = diag(A)}: unbiased for
 * every probe distribution with independent entries of mean zero and variance one, Rademacher and
 * Gaussian alike. No division by {@code w_i * w_i} is needed or wanted: that ratio form is biased
 * for Gaussian probes (the normalisation curvlinops#198 got wrong).
 *
 * <p>Every {@code t_i} costs nothing extra: {@code Y_{-i}} is orthogonal to {@code Q s_i}, {@code
 * s_i} the normalised {@code i}-th column of {@code R^{-T}} (as {@code Y^T Q R^{-T} = I}), so
 * {@code Q_i Q_i^T = Q (I - s_i s_i^T) Q^T}. With {@code Z = A Q} and {@code T = Z^T Omega}:
 *
 * <pre>
 * t_i = rowsum(Q * Z) - (Q s_i) * (Z s_i) + w_i * (y_i - Q T_i) + w_i * (Q s_i) (s_i^T T_i)
 * </pre>
 *
 * ({@code y_i - Q T_i} is zero in exact arithmetic and kept for rounding). The cost is {@code 2s}
 * products.
 *
 * <p>The standard error reported is the sample standard deviation of the {@code t_i} over {@code
 * sqrt(s)}, the error estimate the XTrace paper gives for its exchangeable estimators. The {@code
 * t_i} share all but one probe, so they are not independent; but once the low-rank part is captured
 * their fluctuations come from the residual Hutchinson terms, which are, and the tests check the
 * calibration empirically (reported against observed spread across seeds, within a factor 1.3).
 */
public final class XDiag {

    private XDiag() {}

    /**
     * Estimates the diagonal.
     *
     * @param space the operator's parameter space
     * @param operator the operator
     * @param probes {@code s}, the probes; the estimate costs {@code 2s} products
     * @param random the probe stream
     * @param batch the most vectors on the devices at once
     * @return the estimate
     * @throws IllegalArgumentException if {@code s} exceeds the dimension, or the operator's range
     *     is too small for {@code s} probes
     */
    public static FlatEstimate diagonal(
            ParameterSpace space,
            CurvatureOperator operator,
            int probes,
            Probes random,
            int batch) {
        int n = space.dimension();
        if (probes > n) {
            throw new IllegalArgumentException(
                    "probes: XDIAG uses probes/2 sketch vectors, which must not exceed the "
                            + n
                            + " parameter elements; got "
                            + probes
                            + " sketch vectors");
        }
        double[][] omega = random.next(probes, n);
        double[][] y = space.multiply(operator, omega, batch);
        double[][] r = new double[probes][probes];
        double[][] q = HostAlgebra.orthonormalize(y, r);
        for (int j = 0; j < probes; j++) {
            if (r[j][j] == 0) {
                throw new IllegalArgumentException(
                        "probes: the operator's range is (numerically) smaller than the "
                                + probes
                                + " sketch vectors of XDIAG; use fewer probes or HUTCHINSON");
            }
        }
        double[][] z = space.multiply(operator, q, batch);
        double[][] t = new double[probes][probes];
        for (int a = 0; a < probes; a++) {
            for (int i = 0; i < probes; i++) {
                t[a][i] = HostAlgebra.dot(z[a], omega[i]);
            }
        }
        double[][] inverse = HostAlgebra.invertUpper(r);
        // s_i: the normalised i-th column of R^{-T}, the i-th row of R^{-1}; S[a][i] = (s_i)_a
        double[][] s = new double[probes][probes];
        for (int i = 0; i < probes; i++) {
            double norm = Math.sqrt(HostAlgebra.dot(inverse[i], inverse[i]));
            for (int a = 0; a < probes; a++) {
                s[a][i] = inverse[i][a] / norm;
            }
        }
        double[][] qs = HostAlgebra.times(q, s);
        double[][] zs = HostAlgebra.times(z, s);
        double[][] qt = HostAlgebra.times(q, t);
        double[] rowSum = new double[n];
        for (int a = 0; a < probes; a++) {
            for (int k = 0; k < n; k++) {
                rowSum[k] += q[a][k] * z[a][k];
            }
        }
        RunningMoments moments = new RunningMoments(n);
        double[] term = new double[n];
        for (int i = 0; i < probes; i++) {
            double c = 0;
            for (int a = 0; a < probes; a++) {
                c += s[a][i] * t[a][i];
            }
            for (int k = 0; k < n; k++) {
                term[k] =
                        rowSum[k]
                                - qs[i][k] * zs[i][k]
                                + omega[i][k] * (y[i][k] - qt[i][k] + qs[i][k] * c);
            }
            moments.add(term);
        }
        return moments.estimate(2L * probes);
    }
}
