package org.secorder.core;

/** An estimate of the trace of a curvature matrix, with its standard error and its cost. */
public final class TraceEstimate {

    private final double trace;
    private final double standardError;
    private final long products;

    TraceEstimate(double trace, double standardError, long products) {
        this.trace = trace;
        this.standardError = standardError;
        this.products = products;
    }

    /**
     * Returns the estimated trace.
     *
     * @return the trace
     */
    public double getTrace() {
        return trace;
    }

    /**
     * Returns the standard error of the estimate; zero for an exact method.
     *
     * @return the standard error
     */
    public double getStandardError() {
        return standardError;
    }

    /**
     * Returns the standard error relative to the magnitude of the trace: infinite for a trace of
     * zero with a positive standard error, zero for an exact method.
     *
     * @return {@code standardError / |trace|}
     */
    public double getRelativeStandardError() {
        if (standardError == 0) {
            return 0;
        }
        return standardError / Math.abs(trace);
    }

    /**
     * Returns how many matrix-vector products the estimate cost.
     *
     * @return the products
     */
    public long getProducts() {
        return products;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return trace + " +/- " + standardError + " (" + products + " products)";
    }
}
