package org.secorder.tests.structured;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Arrays;
import java.util.Random;
import org.secorder.structured.internal.propagation.Tangents;
import org.testng.Assert;
import org.testng.annotations.Test;

/** The quadratic forms of grouped tangents against loops over their written-out directions. */
public class TangentsTest {

    /** Few tangents and columns: the forms from every tangent's products with the columns. */
    @Test
    public void columnSquaresFromProductsMatchLoops() {
        checkColumnSquares(2, 3, 2, 12, 3);
    }

    /** Many tangents and columns on short blocks: the forms through the blocks' Gram matrices. */
    @Test
    public void columnSquaresFromGramMatricesMatchLoops() {
        checkColumnSquares(2, 4, 9, 8, 10);
    }

    /** One group of all tangents holds every tangent's block at its place, zeros elsewhere. */
    @Test
    public void ungroupedWritesOutEveryBlock() {
        try (NDManager manager = NDManager.newBaseManager()) {
            int samples = 2;
            int groups = 3;
            int count = 2;
            int features = 12;
            double[] values = random(samples * groups * count * (features / groups), 7);
            Tangents tangents =
                    new Tangents(
                            manager.create(
                                    values, new Shape(samples, groups, count, features / groups)),
                            new Shape(features));
            Tangents ungrouped = tangents.ungrouped();
            Assert.assertEquals(ungrouped.getGroups(), 1);
            Assert.assertEquals(ungrouped.getCount(), groups * count);
            double[] actual = ungrouped.getValues().toDoubleArray();
            double[][][] full = writeOut(values, samples, groups, count, features);
            for (int n = 0; n < samples; n++) {
                for (int k = 0; k < groups * count; k++) {
                    int at = (n * groups * count + k) * features;
                    Assert.assertEquals(
                            Arrays.copyOfRange(actual, at, at + features), full[n][k], 0.0, "" + k);
                }
            }
        }
    }

    /** The forms with a diagonal weigh every entry's square. */
    @Test
    public void weightedSquaresMatchLoops() {
        try (NDManager manager = NDManager.newBaseManager()) {
            int samples = 2;
            int groups = 3;
            int count = 2;
            int features = 9;
            double[] values = random(samples * groups * count * (features / groups), 5);
            double[] weights = random(samples * features, 6);
            Tangents tangents =
                    new Tangents(
                            manager.create(
                                    values, new Shape(samples, groups, count, features / groups)),
                            new Shape(3, 3));
            double[] actual =
                    tangents.weightedSquares(manager.create(weights, new Shape(samples, features)))
                            .toDoubleArray();
            double[][][] full = writeOut(values, samples, groups, count, features);
            for (int n = 0; n < samples; n++) {
                for (int k = 0; k < groups * count; k++) {
                    double expected = weightedForm(full[n][k], weights, n * features);
                    Assert.assertEquals(
                            actual[n * groups * count + k], expected, 1e-12, "form " + k);
                }
            }
        }
    }

    private static void checkColumnSquares(
            int samples, int groups, int count, int features, int columns) {
        try (NDManager manager = NDManager.newBaseManager()) {
            double[] values = random(samples * groups * count * (features / groups), 1);
            double[] vectors = random(samples * columns * features, 2);
            double[] signs = new double[samples * columns];
            for (int i = 0; i < signs.length; i++) {
                signs[i] = i % 3 == 0 ? -1 : 1;
            }
            Tangents tangents =
                    new Tangents(
                            manager.create(
                                    values, new Shape(samples, groups, count, features / groups)),
                            new Shape(features));
            double[] actual =
                    tangents.columnSquares(
                                    manager.create(vectors, new Shape(samples, columns, features)),
                                    manager.create(signs, new Shape(samples, columns)))
                            .toDoubleArray();
            double[][][] full = writeOut(values, samples, groups, count, features);
            for (int n = 0; n < samples; n++) {
                for (int k = 0; k < groups * count; k++) {
                    double expected = 0;
                    for (int c = 0; c < columns; c++) {
                        double dot = dot(full[n][k], vectors, (n * columns + c) * features);
                        expected += signs[n * columns + c] * dot * dot;
                    }
                    Assert.assertEquals(
                            actual[n * groups * count + k],
                            expected,
                            1e-10 * Math.max(1, Math.abs(expected)),
                            "form " + k);
                }
            }
        }
    }

    /** Every tangent as a whole feature vector: zeros outside its group's block. */
    private static double[][][] writeOut(
            double[] values, int samples, int groups, int count, int features) {
        int block = features / groups;
        double[][][] full = new double[samples][groups * count][features];
        for (int n = 0; n < samples; n++) {
            for (int k = 0; k < groups * count; k++) {
                // tangent k is tangent k % count of group k / count
                int from = (n * groups * count + k) * block;
                System.arraycopy(values, from, full[n][k], k / count * block, block);
            }
        }
        return full;
    }

    private static double dot(double[] tangent, double[] vectors, int offset) {
        double sum = 0;
        for (int i = 0; i < tangent.length; i++) {
            sum += tangent[i] * vectors[offset + i];
        }
        return sum;
    }

    private static double weightedForm(double[] tangent, double[] weights, int offset) {
        double sum = 0;
        for (int i = 0; i < tangent.length; i++) {
            sum += weights[offset + i] * tangent[i] * tangent[i];
        }
        return sum;
    }

    private static double[] random(int size, long seed) {
        Random random = new Random(seed);
        double[] values = new double[size];
        for (int i = 0; i < size; i++) {
            values[i] = random.nextGaussian();
        }
        return values;
    }
}
