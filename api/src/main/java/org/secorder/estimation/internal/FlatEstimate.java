package org.secorder.estimation.internal;

/** An estimate of a vector on the host: its mean, its standard error and its cost. */
public final class FlatEstimate {

    private final double[] mean;
    private final double[] standardError;
    private final long products;

    /**
     * Creates an estimate.
     *
     * @param mean the estimate, one entry per parameter element
     * @param standardError the standard error of each entry
     * @param products the operator products (or gradients) it cost
     */
    public FlatEstimate(double[] mean, double[] standardError, long products) {
        this.mean = mean;
        this.standardError = standardError;
        this.products = products;
    }

    /**
     * Returns the estimate.
     *
     * @return one entry per parameter element
     */
    public double[] getMean() {
        return mean;
    }

    /**
     * Returns the standard error of each entry.
     *
     * @return one entry per parameter element
     */
    public double[] getStandardError() {
        return standardError;
    }

    /**
     * Returns the cost.
     *
     * @return the operator products (or gradients) it cost
     */
    public long getProducts() {
        return products;
    }
}
