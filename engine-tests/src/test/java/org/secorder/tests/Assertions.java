package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import org.testng.Assert;

/** Numeric comparisons with messages that show both sides. */
final class Assertions {

    private Assertions() {}

    /** Returns an array's elements as doubles, whatever its floating-point type. */
    static double[] values(NDArray array) {
        try (NDArray asDouble = array.toType(DataType.FLOAT64, true)) {
            return asDouble.toDoubleArray();
        }
    }

    /** Asserts elementwise {@code |actual - expected| <= tolerance * max(1, |expected|)}. */
    static void assertClose(double[] actual, double[] expected, double tolerance) {
        assertClose(actual, expected, tolerance, "values");
    }

    /** Asserts elementwise closeness as above, naming what is compared in the message. */
    static void assertClose(double[] actual, double[] expected, double tolerance, String what) {
        Assert.assertEquals(actual.length, expected.length, what + ": number of elements");
        for (int i = 0; i < actual.length; i++) {
            double bound = tolerance * Math.max(1.0, Math.abs(expected[i]));
            if (!(Math.abs(actual[i] - expected[i]) <= bound)) {
                Assert.fail(
                        what
                                + ": element "
                                + i
                                + ": expected "
                                + expected[i]
                                + " but got "
                                + actual[i]
                                + " (tolerance "
                                + bound
                                + ")");
            }
        }
    }

    /** Asserts elementwise {@code |actual - expected| <= tolerance * max(1, |expected|)}. */
    static void assertClose(NDArray actual, double[] expected, double tolerance) {
        assertClose(values(actual), expected, tolerance);
    }
}
