package org.secorder.estimation.internal;

/**
 * The running mean and sample variance of independent vector-valued terms, element by element
 * (Welford's update, stable in float64).
 */
final class RunningMoments {

    private final double[] mean;
    private final double[] squares;
    private int count;

    RunningMoments(int dimension) {
        mean = new double[dimension];
        squares = new double[dimension];
    }

    /** Adds one term. */
    void add(double[] term) {
        count++;
        for (int i = 0; i < mean.length; i++) {
            double delta = term[i] - mean[i];
            mean[i] += delta / count;
            squares[i] += delta * (term[i] - mean[i]);
        }
    }

    /** Adds the elementwise product of {@code a} and {@code b} as a term. */
    void addProduct(double[] a, double[] b) {
        double[] term = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            term[i] = a[i] * b[i];
        }
        add(term);
    }

    /**
     * Returns the estimate: the mean with its standard error, the sample standard deviation of the
     * terms over the square root of their number (NaN for fewer than two terms).
     */
    FlatEstimate estimate(long products) {
        double[] standardError = new double[mean.length];
        for (int i = 0; i < mean.length; i++) {
            standardError[i] = count < 2 ? Double.NaN : Math.sqrt(squares[i] / (count - 1) / count);
        }
        return new FlatEstimate(mean.clone(), standardError, products);
    }

    /** The mean and standard error of scalar terms. */
    static ScalarEstimate of(double[] terms, double offset, long products) {
        RunningMoments moments = new RunningMoments(1);
        for (double term : terms) {
            moments.add(new double[] {term});
        }
        FlatEstimate flat = moments.estimate(products);
        return new ScalarEstimate(offset + flat.getMean()[0], flat.getStandardError()[0], products);
    }
}
