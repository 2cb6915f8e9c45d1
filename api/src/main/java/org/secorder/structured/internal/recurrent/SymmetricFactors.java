package org.secorder.structured.internal.recurrent;

/**
 * Signed factors of small symmetric matrices by Jacobi rotations: {@code A = sum_e sign_e w_e
 * w_e^T} with {@code w_e = sqrt|lambda_e| v_e} for the eigenpairs {@code (lambda_e, v_e)}.
 */
final class SymmetricFactors {

    private static final int MAX_SWEEPS = 64;

    private SymmetricFactors() {}

    /**
     * Factors matrices stored one after another, row-major.
     *
     * @param matrices {@code count} matrices of {@code size x size}
     * @param size the order of each matrix
     * @param values receives, per matrix {@code m} and factor {@code e}, the factor's entries at
     *     {@code (m size + e) size + l}
     * @param signs receives the factors' signs at {@code m size + e}: +1, -1 or 0
     */
    static void factor(double[] matrices, int size, double[] values, double[] signs) {
        int count = matrices.length / (size * size);
        double[] a = new double[size * size];
        double[] v = new double[size * size];
        for (int m = 0; m < count; m++) {
            System.arraycopy(matrices, m * size * size, a, 0, size * size);
            eigen(a, v, size);
            for (int e = 0; e < size; e++) {
                double lambda = a[e * size + e];
                double scale = Math.sqrt(Math.abs(lambda));
                signs[m * size + e] = Math.signum(lambda);
                for (int l = 0; l < size; l++) {
                    // column e of v is the eigenvector of lambda_e
                    values[(m * size + e) * size + l] = scale * v[l * size + e];
                }
            }
        }
    }

    /** Diagonalizes {@code a} in place (cyclic Jacobi); {@code v} receives the eigenvectors. */
    private static void eigen(double[] a, double[] v, int n) {
        for (int i = 0; i < n * n; i++) {
            v[i] = i % (n + 1) == 0 ? 1 : 0;
        }
        for (int sweep = 0; sweep < MAX_SWEEPS; sweep++) {
            double off = 0;
            double total = 0;
            for (int p = 0; p < n; p++) {
                for (int q = 0; q < n; q++) {
                    double x = a[p * n + q] * a[p * n + q];
                    total += x;
                    if (p != q) {
                        off += x;
                    }
                }
            }
            if (off <= 1e-30 * total || off == 0) {
                return;
            }
            for (int p = 0; p < n - 1; p++) {
                for (int q = p + 1; q < n; q++) {
                    rotate(a, v, n, p, q);
                }
            }
        }
    }

    private static void rotate(double[] a, double[] v, int n, int p, int q) {
        double apq = a[p * n + q];
        if (apq == 0) {
            return;
        }
        double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        double t = Math.signum(theta) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        if (theta == 0) {
            t = 1;
        }
        double c = 1 / Math.sqrt(t * t + 1);
        double s = t * c;
        for (int k = 0; k < n; k++) {
            double akp = a[k * n + p];
            double akq = a[k * n + q];
            a[k * n + p] = c * akp - s * akq;
            a[k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; k++) {
            double apk = a[p * n + k];
            double aqk = a[q * n + k];
            a[p * n + k] = c * apk - s * aqk;
            a[q * n + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; k++) {
            double vkp = v[k * n + p];
            double vkq = v[k * n + q];
            v[k * n + p] = c * vkp - s * vkq;
            v[k * n + q] = s * vkp + c * vkq;
        }
    }
}
