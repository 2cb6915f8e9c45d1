package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import org.testng.Assert;

/** Numeric comparisons with messages that show both sides. */
final class Assertions {

    private Assertions() {}

    /** Asserts elementwise {@code |actual - expected| <= tolerance * max(1, |expected|)}. */
    static void assertClose(NDArray actual, double[] expected, double tolerance) {
        double[] values = actual.toType(DataType.FLOAT64, false).toDoubleArray();
        Assert.assertEquals(values.length, expected.length, "number of elements");
        for (int i = 0; i < values.length; i++) {
            double bound = tolerance * Math.max(1.0, Math.abs(expected[i]));
            if (!(Math.abs(values[i] - expected[i]) <= bound)) {
                Assert.fail(
                        "element "
                                + i
                                + ": expected "
                                + expected[i]
                                + " but got "
                                + values[i]
                                + " (tolerance "
                                + bound
                                + ")");
            }
        }
    }
}
