package org.secorder.operator;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import java.util.List;

/**
 * Eigenvalues of a {@link CurvatureOperator} of the largest magnitude, largest first, with their
 * unit eigenvectors and the residual norm {@code ||A v - lambda v||} of each, as a solver found
 * them.
 *
 * <p>The eigenvectors live in a manager of their own (a sub-manager of the first parameter's);
 * {@link #close()} frees them.
 */
public final class Eigenpairs implements AutoCloseable {

    private final double[] eigenvalues;
    private final double[] residualNorms;
    private final List<NDList> eigenvectors;
    private final long products;
    private final int iterations;
    private final boolean converged;
    private final NDManager manager;

    Eigenpairs(
            double[] eigenvalues,
            double[] residualNorms,
            List<NDList> eigenvectors,
            long products,
            int iterations,
            boolean converged,
            NDManager manager) {
        this.eigenvalues = eigenvalues;
        this.residualNorms = residualNorms;
        this.eigenvectors = eigenvectors;
        this.products = products;
        this.iterations = iterations;
        this.converged = converged;
        this.manager = manager;
    }

    /**
     * Returns the eigenvalues, largest magnitude first.
     *
     * @return a copy of the eigenvalues
     */
    public double[] getEigenvalues() {
        return eigenvalues.clone();
    }

    /**
     * Returns {@code ||A v - lambda v||} of each eigenpair, computed with one more product each
     * after the iteration ended, in the same order as the eigenvalues.
     *
     * @return a copy of the residual norms
     */
    public double[] getResidualNorms() {
        return residualNorms.clone();
    }

    /**
     * Returns the unit eigenvectors (Euclidean norm over all parameters), one array per parameter
     * each, in the same order as the eigenvalues; they stay valid until this object is closed.
     *
     * @return the eigenvectors
     */
    public List<NDList> getEigenvectors() {
        return eigenvectors;
    }

    /**
     * Returns the number of operator products the computation used, the residual checks included.
     *
     * @return the number of products
     */
    public long getProducts() {
        return products;
    }

    /**
     * Returns the number of Lanczos iterations, the dimension of the Krylov space built.
     *
     * @return the number of iterations
     */
    public int getIterations() {
        return iterations;
    }

    /**
     * Returns whether every residual norm is within the tolerance, relative to its eigenvalue.
     *
     * @return whether the solver converged
     */
    public boolean isConverged() {
        return converged;
    }

    /** Frees the eigenvectors. */
    @Override
    public void close() {
        manager.close();
    }
}
