package org.secorder.core;

import ai.djl.ndarray.NDList;

/**
 * An estimate of a curvature diagonal with its standard error and its cost.
 *
 * <p>The arrays are attached to the parameters' managers and belong to this estimate: {@link
 * #close()} closes them. Detach or copy what must outlive it.
 */
public final class DiagonalEstimate implements AutoCloseable {

    private final NDList diagonal;
    private final NDList standardError;
    private final long products;

    DiagonalEstimate(NDList diagonal, NDList standardError, long products) {
        this.diagonal = diagonal;
        this.standardError = standardError;
        this.products = products;
    }

    /**
     * Returns the estimated diagonal.
     *
     * @return one array per parameter, shaped like it, of its data type and on its device
     */
    public NDList getDiagonal() {
        return diagonal;
    }

    /**
     * Returns the standard error of each element of the diagonal: zeros for an exact method; for a
     * stochastic one the standard deviation of the estimator as a statistician would report it from
     * the sample (see each method's documentation).
     *
     * @return one array per parameter, shaped like the diagonal
     */
    public NDList getStandardError() {
        return standardError;
    }

    /**
     * Returns what the estimate cost: matrix-vector products for the operator methods, gradient
     * evaluations (backward passes) for {@link HessianDiagonal.Method#MONTE_CARLO} and {@link
     * HessianDiagonal.Method#FINITE_DIFFERENCE}, Hessian-vector products (one per element) for
     * {@link HessianDiagonal.Method#AUTOGRAD}, loss columns per example for the structured methods.
     *
     * @return the cost
     */
    public long getProducts() {
        return products;
    }

    /** Closes the diagonal and the standard error. */
    @Override
    public void close() {
        diagonal.close();
        standardError.close();
    }
}
