package org.secorder.tests;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.secorder.core.HessianTrace;
import org.secorder.core.ProbeDistribution;
import org.secorder.core.TraceEstimate;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * Traces of an explicit dense operator: exact, Hutchinson and Hutch++, unbiased, calibrated,
 * Hutch++ better where a few eigenvalues dominate, and the warning on a large relative error.
 */
public class TraceEstimateTest {

    private static SeedStatistics overSeeds(
            DenseOperator operator,
            HessianTrace.Method method,
            ProbeDistribution distribution,
            int probes) {
        SeedStatistics statistics = new SeedStatistics(1);
        for (int seed = 0; seed < HutchinsonTest.SEEDS; seed++) {
            TraceEstimate trace =
                    HessianTrace.builder()
                            .optMethod(method)
                            .optProbes(probes)
                            .optSeed(seed)
                            .optProbeDistribution(distribution)
                            .optRelativeErrorWarning(Double.POSITIVE_INFINITY)
                            .build()
                            .compute(operator);
            Assert.assertEquals(trace.getProducts(), probes, "products");
            statistics.add(
                    new double[] {trace.getTrace()}, new double[] {trace.getStandardError()});
        }
        return statistics;
    }

    /** The exact trace equals the sum of the matrix's diagonal, one product per element. */
    @Test
    public void exactTraceIsTheSumOfTheDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT64, DenseOperator.random(21));
            TraceEstimate trace =
                    HessianTrace.builder()
                            .optMethod(HessianTrace.Method.EXACT)
                            .build()
                            .compute(operator);
            Assert.assertEquals(trace.getTrace(), operator.trace(), 1e-12 * operator.trace());
            Assert.assertEquals(trace.getStandardError(), 0.0);
            Assert.assertEquals(trace.getProducts(), DenseOperator.dimension());
        }
    }

    /** Hutchinson's and Hutch++'s traces are unbiased for both probe distributions. */
    @Test
    public void stochasticTracesAreUnbiased() {
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT64, DenseOperator.random(22));
            for (HessianTrace.Method method :
                    new HessianTrace.Method[] {
                        HessianTrace.Method.HUTCHINSON, HessianTrace.Method.HUTCH_PLUS_PLUS
                    }) {
                for (ProbeDistribution distribution : ProbeDistribution.values()) {
                    overSeeds(operator, method, distribution, 9)
                            .assertUnbiased(
                                    new double[] {operator.trace()}, method + ", " + distribution);
                }
            }
        }
    }

    /** The reported standard errors match the spread across seeds within a factor 1.3. */
    @Test
    public void standardErrorsAreCalibrated() {
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT64, DenseOperator.spectrum(23, 3, 20));
            for (HessianTrace.Method method :
                    new HessianTrace.Method[] {
                        HessianTrace.Method.HUTCHINSON, HessianTrace.Method.HUTCH_PLUS_PLUS
                    }) {
                for (ProbeDistribution distribution : ProbeDistribution.values()) {
                    overSeeds(operator, method, distribution, 15)
                            .assertCalibrated(1.3, method + ", " + distribution);
                }
            }
        }
    }

    /** At 12 products Hutch++'s error is far below Hutchinson's on a matrix of dominant rank 3. */
    @Test
    public void hutchPlusPlusBeatsHutchinsonOnADominantLowRankPart() {
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT64, DenseOperator.spectrum(24, 3, 20));
            double[] exact = {operator.trace()};
            double plusPlus =
                    overSeeds(
                                    operator,
                                    HessianTrace.Method.HUTCH_PLUS_PLUS,
                                    ProbeDistribution.RADEMACHER,
                                    12)
                            .rootMeanSquareError(exact);
            double hutchinson =
                    overSeeds(
                                    operator,
                                    HessianTrace.Method.HUTCHINSON,
                                    ProbeDistribution.RADEMACHER,
                                    12)
                            .rootMeanSquareError(exact);
            Assert.assertTrue(
                    plusPlus < hutchinson / 3,
                    "Hutch++ error " + plusPlus + ", Hutchinson error " + hutchinson);
        }
    }

    /** The same seed gives the same trace; another seed another. */
    @Test
    public void sameSeedGivesSameResult() {
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT32, DenseOperator.random(25));
            double[] traces = new double[3];
            long[] seeds = {3, 3, 4};
            for (int r = 0; r < 3; r++) {
                traces[r] =
                        HessianTrace.builder()
                                .optMethod(HessianTrace.Method.HUTCH_PLUS_PLUS)
                                .optProbes(9)
                                .optSeed(seeds[r])
                                .build()
                                .compute(operator)
                                .getTrace();
            }
            Assert.assertEquals(traces[1], traces[0]);
            Assert.assertNotEquals(traces[2], traces[0]);
        }
    }

    /**
     * A relative standard error above the threshold is logged as an SLF4J warning (slf4j-simple
     * writes to standard error), and nothing is logged below it.
     */
    @Test
    public void largeRelativeErrorIsWarnedAbout() {
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT64, DenseOperator.random(26));
            String above = captureStandardError(() -> trace(operator, 1e-6));
            Assert.assertTrue(
                    above.contains("WARN") && above.contains("optRelativeErrorWarning"), above);
            String below = captureStandardError(() -> trace(operator, 1e6));
            Assert.assertFalse(below.contains("optRelativeErrorWarning"), below);
        }
    }

    private static TraceEstimate trace(DenseOperator operator, double threshold) {
        TraceEstimate trace =
                HessianTrace.builder()
                        .optProbes(4)
                        .optRelativeErrorWarning(threshold)
                        .build()
                        .compute(operator);
        Assert.assertTrue(trace.getRelativeStandardError() > 1e-6);
        Assert.assertTrue(trace.getRelativeStandardError() < 1e6);
        return trace;
    }

    private static String captureStandardError(Runnable call) {
        PrintStream original = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            call.run();
        } finally {
            System.setErr(original);
        }
        return captured.toString(StandardCharsets.UTF_8);
    }

    /** Bad settings are rejected, naming the setting and what is expected. */
    @Test
    public void badSettingsAreRejected() {
        expect(() -> HessianTrace.builder().optProbes(0).build(), "probes must be at least 1");
        expect(
                () -> HessianTrace.builder().optProbes(1).build(),
                "HUTCHINSON needs at least 2 probes");
        expect(
                () ->
                        HessianTrace.builder()
                                .optMethod(HessianTrace.Method.HUTCH_PLUS_PLUS)
                                .optProbes(5)
                                .build(),
                "HUTCH_PLUS_PLUS needs at least 6");
        expect(
                () -> HessianTrace.builder().optRelativeErrorWarning(0).build(),
                "relativeErrorWarning must be positive");
        expect(
                () -> HessianTrace.builder().optRelativeErrorWarning(Double.NaN).build(),
                "relativeErrorWarning must be positive");
        expect(() -> HessianTrace.builder().optMethod(null).build(), "method must not be null");
        expect(
                () -> HessianTrace.builder().optMemoryBudget(0).build(),
                "memoryBudget must be a positive");
        expect(
                () ->
                        HessianTrace.builder()
                                .build()
                                .compute((org.secorder.operator.CurvatureOperator) null),
                "operator must not be null");
    }

    static void expect(Assert.ThrowingRunnable call, String fragment) {
        IllegalArgumentException e = Assert.expectThrows(IllegalArgumentException.class, call);
        Assert.assertTrue(e.getMessage().contains(fragment), e.getMessage());
    }
}
