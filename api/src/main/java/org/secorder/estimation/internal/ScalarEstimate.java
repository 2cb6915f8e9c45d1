package org.secorder.estimation.internal;

/** An estimate of a number: its value, its standard error and its cost. */
public final class ScalarEstimate {

    private final double value;
    private final double standardError;
    private final long products;

    /**
     * Creates an estimate.
     *
     * @param value the estimate
     * @param standardError its standard error
     * @param products the operator products it cost
     */
    public ScalarEstimate(double value, double standardError, long products) {
        this.value = value;
        this.standardError = standardError;
        this.products = products;
    }

    /**
     * Returns the estimate.
     *
     * @return the estimate
     */
    public double getValue() {
        return value;
    }

    /**
     * Returns its standard error.
     *
     * @return the standard error
     */
    public double getStandardError() {
        return standardError;
    }

    /**
     * Returns the cost.
     *
     * @return the operator products it cost
     */
    public long getProducts() {
        return products;
    }
}
