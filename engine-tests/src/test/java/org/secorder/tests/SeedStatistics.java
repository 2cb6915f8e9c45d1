package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import org.testng.Assert;

/**
 * Estimates over many seeds: their mean and spread element by element, and the standard errors the
 * estimator reported, to check unbiasedness and calibration.
 */
final class SeedStatistics {

    private final int dimension;
    private final double[] sum;
    private final double[] squares;
    private final double[] reportedSquares;
    private int count;

    SeedStatistics(int dimension) {
        this.dimension = dimension;
        sum = new double[dimension];
        squares = new double[dimension];
        reportedSquares = new double[dimension];
    }

    /** Concatenates the flattened arrays of a list in float64. */
    static double[] flat(NDList list) {
        int n = 0;
        for (NDArray array : list) {
            n += (int) array.size();
        }
        double[] values = new double[n];
        int offset = 0;
        for (NDArray array : list) {
            try (NDArray asDouble = array.toType(DataType.FLOAT64, true)) {
                double[] part = asDouble.toDoubleArray();
                System.arraycopy(part, 0, values, offset, part.length);
                offset += part.length;
            }
        }
        return values;
    }

    /** Adds one seed's estimate and its reported standard error. */
    void add(double[] estimate, double[] standardError) {
        Assert.assertEquals(estimate.length, dimension, "estimate length");
        count++;
        for (int i = 0; i < dimension; i++) {
            sum[i] += estimate[i];
            squares[i] += estimate[i] * estimate[i];
            reportedSquares[i] += standardError[i] * standardError[i];
        }
    }

    double mean(int i) {
        return sum[i] / count;
    }

    /** The spread of the estimates across seeds: their sample standard deviation. */
    double spread(int i) {
        double mean = mean(i);
        return Math.sqrt(Math.max(0, (squares[i] - count * mean * mean) / (count - 1)));
    }

    /** The root mean square of the reported standard errors. */
    double reported(int i) {
        return Math.sqrt(reportedSquares[i] / count);
    }

    /** The root mean square error against the truth. */
    double rootMeanSquareError(double[] truth) {
        double total = 0;
        for (int i = 0; i < dimension; i++) {
            double mean = mean(i);
            double variance = squares[i] / count - mean * mean;
            double bias = mean - truth[i];
            total += variance + bias * bias;
        }
        return Math.sqrt(total / dimension);
    }

    /**
     * Asserts that the mean over seeds of every element is within three standard errors of the mean
     * (the spread across seeds over the square root of their number) of the truth.
     */
    void assertUnbiased(double[] truth, String what) {
        assertUnbiased(truth, 3, what);
    }

    /**
     * Asserts that the mean over seeds of every element is within {@code bound} standard errors of
     * the mean of the truth: a family-wise bound for vectors with many elements.
     */
    void assertUnbiased(double[] truth, double bound, String what) {
        for (int i = 0; i < dimension; i++) {
            double standardError = spread(i) / Math.sqrt(count);
            double error = Math.abs(mean(i) - truth[i]);
            Assert.assertTrue(
                    error <= bound * standardError + 1e-12 * Math.max(1, Math.abs(truth[i])),
                    what
                            + ": element "
                            + i
                            + ": mean over "
                            + count
                            + " seeds "
                            + mean(i)
                            + ", exact "
                            + truth[i]
                            + ", more than "
                            + bound
                            + " standard errors ("
                            + standardError
                            + ") apart");
        }
    }

    /**
     * Asserts that the reported standard error matches the spread across seeds within a factor for
     * every element with a spread.
     */
    void assertCalibrated(double factor, String what) {
        for (int i = 0; i < dimension; i++) {
            double ratio = reported(i) / spread(i);
            Assert.assertTrue(
                    ratio <= factor && ratio >= 1 / factor,
                    what
                            + ": element "
                            + i
                            + ": reported standard error "
                            + reported(i)
                            + " against a spread of "
                            + spread(i)
                            + " across "
                            + count
                            + " seeds (ratio "
                            + ratio
                            + ", allowed within a factor "
                            + factor
                            + ")");
        }
    }
}
