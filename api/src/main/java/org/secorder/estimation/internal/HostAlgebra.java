package org.secorder.estimation.internal;

/**
 * The small dense linear algebra of the sketching estimators, on the host in float64: vectors are
 * {@code double[]}, a tall matrix is an array of its columns.
 */
final class HostAlgebra {

    private HostAlgebra() {}

    static double dot(double[] a, double[] b) {
        double sum = 0;
        for (int i = 0; i < a.length; i++) {
            sum += a[i] * b[i];
        }
        return sum;
    }

    /** {@code y += alpha * x}. */
    static void axpy(double alpha, double[] x, double[] y) {
        for (int i = 0; i < x.length; i++) {
            y[i] += alpha * x[i];
        }
    }

    /**
     * Orthonormalizes columns by Gram-Schmidt with one reorthogonalization (CGS2), which keeps the
     * columns orthogonal to working precision: {@code Y = Q R}, {@code R} upper triangular.
     *
     * @param columns the columns of {@code Y}, left unchanged
     * @param r receives {@code R}, {@code r[i][j]} for row {@code i} and column {@code j}; its
     *     diagonal is zero where a column lies (numerically) in the span of the earlier ones
     * @return the columns of {@code Q}; a column whose diagonal entry of {@code R} is zero is zero
     */
    static double[][] orthonormalize(double[][] columns, double[][] r) {
        int count = columns.length;
        double[][] q = new double[count][];
        for (int j = 0; j < count; j++) {
            double[] v = columns[j].clone();
            double norm = Math.sqrt(dot(v, v));
            for (int pass = 0; pass < 2; pass++) {
                for (int i = 0; i < j; i++) {
                    double coefficient = dot(q[i], v);
                    r[i][j] += coefficient;
                    axpy(-coefficient, q[i], v);
                }
            }
            double remaining = Math.sqrt(dot(v, v));
            if (!(remaining > 1e-12 * norm) || remaining == 0) {
                r[j][j] = 0;
                q[j] = new double[v.length];
                continue;
            }
            r[j][j] = remaining;
            for (int i = 0; i < v.length; i++) {
                v[i] /= remaining;
            }
            q[j] = v;
        }
        return q;
    }

    /**
     * Inverts an upper triangular matrix with a nonzero diagonal by back substitution.
     *
     * @param r the matrix, {@code r[i][j]} for row {@code i} and column {@code j}
     * @return its inverse, also upper triangular
     */
    static double[][] invertUpper(double[][] r) {
        int n = r.length;
        double[][] inverse = new double[n][n];
        for (int j = 0; j < n; j++) {
            inverse[j][j] = 1 / r[j][j];
            for (int i = j - 1; i >= 0; i--) {
                double sum = 0;
                for (int k = i + 1; k <= j; k++) {
                    sum += r[i][k] * inverse[k][j];
                }
                inverse[i][j] = -sum / r[i][i];
            }
        }
        return inverse;
    }

    /**
     * Returns the tall matrix {@code M C}: {@code M} given by its columns, {@code C} small with
     * {@code c[i][j]} for row {@code i} and column {@code j}.
     */
    static double[][] times(double[][] m, double[][] c) {
        int rows = m[0].length;
        int columns = c[0].length;
        double[][] result = new double[columns][rows];
        for (int j = 0; j < columns; j++) {
            for (int i = 0; i < m.length; i++) {
                if (c[i][j] != 0) {
                    axpy(c[i][j], m[i], result[j]);
                }
            }
        }
        return result;
    }
}
