package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.training.loss.L2Loss;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SigmoidBinaryCrossEntropyLoss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import java.util.Random;
import org.secorder.core.DiagonalEstimate;
import org.secorder.core.HessianDiagonal;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * The Monte-Carlo GGN diagonal against the exact GGN diagonal ({@code Method.GGN}), on every engine
 * (first-order gradients only), for DJL's L2, softmax and sigmoid cross-entropy losses.
 */
public class MonteCarloGgnTest {

    private static final int SAMPLES = 600;

    private static DiagonalEstimate monteCarlo(
            Block model, Loss loss, NDList inputs, NDList targets, int samples, long seed) {
        return HessianDiagonal.builder()
                .optMethod(HessianDiagonal.Method.MONTE_CARLO)
                .optProbes(samples)
                .optSeed(seed)
                .build()
                .estimate(model, loss, inputs, targets);
    }

    /**
     * Asserts that one estimate of {@link #SAMPLES} samples is unbiased for the GGN diagonal: every
     * element within four of its standard errors (a family-wise bound: with some 40 elements per
     * network and 4 losses, three standard errors would fail by chance in a good share of runs; a
     * wrong scale of even 20 per cent puts elements 5 or more standard errors off), and every
     * standard error below half the element.
     */
    private static void checkAgainstGgn(Block model, Loss loss, NDArray inputs, NDArray targets) {
        NDList in = new NDList(inputs);
        NDList labels = new NDList(targets);
        NDList exact =
                HessianDiagonal.builder()
                        .optMethod(HessianDiagonal.Method.GGN)
                        .build()
                        .compute(model, loss, in, labels);
        double[] truth = SeedStatistics.flat(exact);
        exact.close();
        try (DiagonalEstimate estimate = monteCarlo(model, loss, in, labels, SAMPLES, 1)) {
            Assert.assertEquals(estimate.getProducts(), SAMPLES);
            double[] mean = SeedStatistics.flat(estimate.getDiagonal());
            double[] error = SeedStatistics.flat(estimate.getStandardError());
            for (int i = 0; i < truth.length; i++) {
                String what =
                        loss.getName()
                                + ": element "
                                + i
                                + ": estimate "
                                + mean[i]
                                + " +/- "
                                + error[i]
                                + ", exact GGN "
                                + truth[i];
                double z = (mean[i] - truth[i]) / error[i];
                Assert.assertTrue(Math.abs(z) <= 4, what);
                Assert.assertTrue(error[i] < 0.5 * Math.abs(truth[i]), what);
            }
        }
    }

    /** L2 loss (weight 1/2 by default): labels drawn around the predictions. */
    @Test
    public void squaredErrorMatchesTheExactGgn() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = EstimationFixtures.network(manager, 3, 1);
            NDArray inputs = EstimationFixtures.inputs(manager, 2);
            NDArray targets =
                    EstimationFixtures.normal(
                            manager, new Random(3), new Shape(EstimationFixtures.BATCH, 3), 1);
            checkAgainstGgn(model, new L2Loss(), inputs, targets);
        }
    }

    /** A weight other than DJL's default is measured and honoured. */
    @Test
    public void weightedSquaredErrorMatchesTheExactGgn() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = EstimationFixtures.network(manager, 2, 4);
            NDArray inputs = EstimationFixtures.inputs(manager, 5);
            NDArray targets =
                    EstimationFixtures.normal(
                            manager, new Random(6), new Shape(EstimationFixtures.BATCH, 2), 1);
            checkAgainstGgn(model, new L2Loss("weighted", 3f), inputs, targets);
        }
    }

    /** Softmax cross-entropy with sparse labels: classes drawn from the softmax. */
    @Test
    public void softmaxCrossEntropyMatchesTheExactGgn() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = EstimationFixtures.network(manager, 4, 7);
            NDArray inputs = EstimationFixtures.inputs(manager, 8);
            checkAgainstGgn(
                    model,
                    new SoftmaxCrossEntropyLoss(),
                    inputs,
                    EstimationFixtures.classes(manager, 4));
        }
    }

    /** Sigmoid binary cross-entropy on logits: labels drawn from the sigmoid. */
    @Test
    public void sigmoidCrossEntropyMatchesTheExactGgn() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = EstimationFixtures.network(manager, 3, 9);
            NDArray inputs = EstimationFixtures.inputs(manager, 10);
            checkAgainstGgn(
                    model,
                    new SigmoidBinaryCrossEntropyLoss(),
                    inputs,
                    EstimationFixtures.binary(manager, 3));
        }
    }

    /**
     * The reported standard error matches the spread of the estimates across 100 seeds within a
     * factor 1.3, element by element.
     */
    @Test
    public void standardErrorIsCalibrated() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = EstimationFixtures.network(manager, 3, 17);
            NDList inputs = new NDList(EstimationFixtures.inputs(manager, 18));
            NDList targets = new NDList(EstimationFixtures.classes(manager, 3));
            Loss loss = new SoftmaxCrossEntropyLoss();
            SeedStatistics statistics = null;
            for (int seed = 0; seed < HutchinsonTest.SEEDS; seed++) {
                try (DiagonalEstimate estimate =
                        monteCarlo(model, loss, inputs, targets, 16, seed)) {
                    double[] mean = SeedStatistics.flat(estimate.getDiagonal());
                    if (statistics == null) {
                        statistics = new SeedStatistics(mean.length);
                    }
                    statistics.add(mean, SeedStatistics.flat(estimate.getStandardError()));
                }
            }
            statistics.assertCalibrated(1.3, "Monte-Carlo GGN");
        }
    }

    /** The same seed gives the same estimate, another seed another. */
    @Test
    public void sameSeedGivesSameResult() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = EstimationFixtures.network(manager, 4, 11);
            NDList inputs = new NDList(EstimationFixtures.inputs(manager, 12));
            NDList targets = new NDList(EstimationFixtures.classes(manager, 4));
            Loss loss = new SoftmaxCrossEntropyLoss();
            double[][] runs = new double[3][];
            long[] seeds = {5, 5, 6};
            for (int r = 0; r < 3; r++) {
                try (DiagonalEstimate estimate =
                        monteCarlo(model, loss, inputs, targets, 3, seeds[r])) {
                    runs[r] = SeedStatistics.flat(estimate.getDiagonal());
                }
            }
            Assert.assertEquals(runs[1], runs[0]);
            Assert.assertNotEquals(runs[2], runs[0]);
        }
    }

    /**
     * Nothing is left behind: parameters, gradients, flags, names, the recording state and the
     * number of open arrays are as they were.
     */
    @Test
    public void leavesNoTrace() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = EstimationFixtures.network(manager, 3, 13);
            NDArray inputs = EstimationFixtures.inputs(manager, 14);
            NDArray targets = EstimationFixtures.binary(manager, 3);
            NDList parameters = new NDList();
            for (var entry : model.getParameters()) {
                parameters.add(entry.getValue().getArray());
            }
            parameters.add(inputs);
            parameters.add(targets);
            TraceSupport.Trace trace =
                    TraceSupport.capture(manager, parameters.toArray(new NDArray[0]));
            try (DiagonalEstimate estimate =
                    monteCarlo(
                            model,
                            new SigmoidBinaryCrossEntropyLoss(),
                            new NDList(inputs),
                            new NDList(targets),
                            4,
                            0)) {
                Assert.assertEquals(estimate.getDiagonal().size(), 4);
            }
            trace.assertUnchanged("after MONTE_CARLO");
        }
    }

    /** A loss the sampler does not know is a clear error, naming the supported ones. */
    @Test
    public void unsupportedLossIsAClearError() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = EstimationFixtures.network(manager, 3, 15);
            NDArray inputs = EstimationFixtures.inputs(manager, 16);
            NDArray targets = EstimationFixtures.binary(manager, 3);
            UnsupportedOperationException e =
                    Assert.expectThrows(
                            UnsupportedOperationException.class,
                            () ->
                                    monteCarlo(
                                            model,
                                            new ai.djl.training.loss.L1Loss(),
                                            new NDList(inputs),
                                            new NDList(targets),
                                            2,
                                            0));
            Assert.assertTrue(e.getMessage().contains("SoftmaxCrossEntropyLoss"), e.getMessage());
            UnsupportedOperationException logProbabilities =
                    Assert.expectThrows(
                            UnsupportedOperationException.class,
                            () ->
                                    monteCarlo(
                                            model,
                                            new SoftmaxCrossEntropyLoss("lp", 1, -1, true, false),
                                            new NDList(inputs),
                                            new NDList(EstimationFixtures.classes(manager, 3)),
                                            2,
                                            0));
            Assert.assertTrue(
                    logProbabilities.getMessage().contains("do not match"),
                    logProbabilities.getMessage());
        }
    }
}
