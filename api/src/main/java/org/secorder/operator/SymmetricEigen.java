package org.secorder.operator;

/**
 * Eigenvalues and eigenvectors of a small dense symmetric matrix by cyclic Jacobi rotations: slow
 * for large matrices, but simple, and accurate to rounding for the tridiagonal matrices of Lanczos.
 */
final class SymmetricEigen {

    private static final int MAX_SWEEPS = 100;

    private final double[] values;
    private final double[][] vectors;

    private SymmetricEigen(double[] values, double[][] vectors) {
        this.values = values;
        this.vectors = vectors;
    }

    /**
     * Decomposes the symmetric tridiagonal matrix with a diagonal and an off-diagonal.
     *
     * @param diagonal the {@code m} diagonal entries
     * @param offDiagonal the {@code m - 1} entries next to the diagonal
     * @return the decomposition
     */
    static SymmetricEigen tridiagonal(double[] diagonal, double[] offDiagonal) {
        int m = diagonal.length;
        double[][] a = new double[m][m];
        for (int i = 0; i < m; i++) {
            a[i][i] = diagonal[i];
            if (i + 1 < m) {
                a[i][i + 1] = offDiagonal[i];
                a[i + 1][i] = offDiagonal[i];
            }
        }
        return of(a);
    }

    /**
     * Decomposes a symmetric matrix, which is overwritten.
     *
     * @param a the matrix
     * @return the decomposition
     */
    static SymmetricEigen of(double[][] a) {
        int m = a.length;
        double[][] v = new double[m][m];
        double scale = 0;
        for (int i = 0; i < m; i++) {
            v[i][i] = 1;
            for (int j = 0; j < m; j++) {
                scale += a[i][j] * a[i][j];
            }
        }
        double threshold = Math.max(scale, Double.MIN_NORMAL) * 1e-32;
        for (int sweep = 0; sweep < MAX_SWEEPS; sweep++) {
            if (offDiagonalSquares(a) <= threshold) {
                break;
            }
            for (int p = 0; p < m; p++) {
                for (int q = p + 1; q < m; q++) {
                    rotate(a, v, p, q);
                }
            }
        }
        double[] values = new double[m];
        for (int i = 0; i < m; i++) {
            values[i] = a[i][i];
        }
        return new SymmetricEigen(values, v);
    }

    /**
     * Returns the eigenvalues, in no particular order.
     *
     * @return the eigenvalues
     */
    double[] getValues() {
        return values;
    }

    /**
     * Returns the component {@code row} of the eigenvector of eigenvalue {@code index}.
     *
     * @param row the component
     * @param index the eigenvalue's index in {@link #getValues()}
     * @return the component
     */
    double vector(int row, int index) {
        return vectors[row][index];
    }

    private static double offDiagonalSquares(double[][] a) {
        double sum = 0;
        for (int p = 0; p < a.length; p++) {
            for (int q = p + 1; q < a.length; q++) {
                sum += 2 * a[p][q] * a[p][q];
            }
        }
        return sum;
    }

    /** Zeros {@code a[p][q]} by the rotation {@code a <- J^T a J}, {@code v <- v J}. */
    private static void rotate(double[][] a, double[][] v, int p, int q) {
        if (a[p][q] == 0) {
            return;
        }
        double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        double t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        double c = 1 / Math.sqrt(t * t + 1);
        double s = t * c;
        int m = a.length;
        for (int k = 0; k < m; k++) {
            double akp = a[k][p];
            double akq = a[k][q];
            a[k][p] = c * akp - s * akq;
            a[k][q] = s * akp + c * akq;
        }
        for (int k = 0; k < m; k++) {
            double apk = a[p][k];
            double aqk = a[q][k];
            a[p][k] = c * apk - s * aqk;
            a[q][k] = s * apk + c * aqk;
        }
        for (int k = 0; k < m; k++) {
            double vkp = v[k][p];
            double vkq = v[k][q];
            v[k][p] = c * vkp - s * vkq;
            v[k][q] = s * vkp + c * vkq;
        }
    }
}
