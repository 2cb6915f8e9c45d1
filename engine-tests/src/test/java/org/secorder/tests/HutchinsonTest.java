package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.util.List;
import org.secorder.core.DiagonalEstimate;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.ProbeDistribution;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * Hutchinson's diagonal estimator against an explicit dense operator: unbiased for both probe
 * distributions over parameters of ranks 1 to 5, its standard error calibrated, reproducible.
 */
public class HutchinsonTest {

    static final int SEEDS = 200;

    /** Runs an estimator over {@link #SEEDS} seeds on an operator. */
    static SeedStatistics overSeeds(
            DenseOperator operator,
            HessianDiagonal.Method method,
            ProbeDistribution distribution,
            int probes) {
        SeedStatistics statistics = new SeedStatistics(DenseOperator.dimension());
        for (int seed = 0; seed < SEEDS; seed++) {
            HessianDiagonal hessian =
                    HessianDiagonal.builder()
                            .optMethod(method)
                            .optProbes(probes)
                            .optSeed(seed)
                            .optProbeDistribution(distribution)
                            .build();
            try (DiagonalEstimate estimate = hessian.estimate(operator)) {
                statistics.add(
                        SeedStatistics.flat(estimate.getDiagonal()),
                        SeedStatistics.flat(estimate.getStandardError()));
            }
        }
        return statistics;
    }

    private static void checkUnbiased(ProbeDistribution distribution) {
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT64, DenseOperator.random(1));
            overSeeds(operator, HessianDiagonal.Method.HUTCHINSON, distribution, 8)
                    .assertUnbiased(operator.diagonal(), "Hutchinson, " + distribution);
        }
    }

    /** With Rademacher probes the mean over 200 seeds is the exact diagonal. */
    @Test
    public void diagonalIsUnbiasedWithRademacherProbes() {
        checkUnbiased(ProbeDistribution.RADEMACHER);
    }

    /** With Gaussian probes the plain mean of z * (A z), not a ratio, is unbiased. */
    @Test
    public void diagonalIsUnbiasedWithGaussianProbes() {
        checkUnbiased(ProbeDistribution.GAUSSIAN);
    }

    /** The reported standard error matches the spread across seeds within a factor 1.3. */
    @Test
    public void standardErrorIsCalibrated() {
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT64, DenseOperator.random(2));
            for (ProbeDistribution distribution : ProbeDistribution.values()) {
                overSeeds(operator, HessianDiagonal.Method.HUTCHINSON, distribution, 16)
                        .assertCalibrated(1.3, "Hutchinson, " + distribution);
            }
        }
    }

    /**
     * The standard error is that of the theory: for Rademacher probes the variance of one term is
     * {@code sum_{j != i} A_ij^2}, for Gaussian ones {@code 2 A_ii^2} more.
     */
    @Test
    public void spreadMatchesTheVarianceOfTheTheory() {
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT64, DenseOperator.random(3));
            int probes = 16;
            for (ProbeDistribution distribution : ProbeDistribution.values()) {
                SeedStatistics statistics =
                        overSeeds(
                                operator, HessianDiagonal.Method.HUTCHINSON, distribution, probes);
                for (int i = 0; i < DenseOperator.dimension(); i++) {
                    double variance = 0;
                    for (int j = 0; j < DenseOperator.dimension(); j++) {
                        double a = operator.matrix[i][j];
                        variance += j == i ? 0 : a * a;
                    }
                    if (distribution == ProbeDistribution.GAUSSIAN) {
                        variance += 2 * operator.matrix[i][i] * operator.matrix[i][i];
                    }
                    double expected = Math.sqrt(variance / probes);
                    double ratio = statistics.spread(i) / expected;
                    Assert.assertTrue(
                            ratio > 1 / 1.3 && ratio < 1.3,
                            distribution
                                    + ": element "
                                    + i
                                    + ": spread "
                                    + statistics.spread(i)
                                    + ", theory "
                                    + expected);
                }
            }
        }
    }

    /** The same seed gives the same estimate bit for bit; another seed another estimate. */
    @Test
    public void sameSeedGivesSameResult() {
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT64, DenseOperator.random(4));
            double[][] runs = new double[3][];
            long[] seeds = {7, 7, 8};
            for (int r = 0; r < 3; r++) {
                HessianDiagonal hessian =
                        HessianDiagonal.builder()
                                .optMethod(HessianDiagonal.Method.HUTCHINSON)
                                .optProbes(5)
                                .optSeed(seeds[r])
                                .build();
                try (DiagonalEstimate estimate = hessian.estimate(operator)) {
                    runs[r] = SeedStatistics.flat(estimate.getDiagonal());
                }
            }
            Assert.assertEquals(runs[1], runs[0], "same seed");
            Assert.assertNotEquals(runs[2], runs[0], "another seed");
        }
    }

    /** The batch size that the memory budget sets changes nothing but the number of copies. */
    @Test
    public void memoryBudgetDoesNotChangeTheResult() {
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT64, DenseOperator.random(5));
            double[][] runs = new double[2][];
            long[] budgets = {1, HessianDiagonal.DEFAULT_MEMORY_BUDGET};
            for (int r = 0; r < 2; r++) {
                for (HessianDiagonal.Method method :
                        new HessianDiagonal.Method[] {
                            HessianDiagonal.Method.HUTCHINSON, HessianDiagonal.Method.XDIAG
                        }) {
                    HessianDiagonal hessian =
                            HessianDiagonal.builder()
                                    .optMethod(method)
                                    .optProbes(12)
                                    .optMemoryBudget(budgets[r])
                                    .build();
                    try (DiagonalEstimate estimate = hessian.estimate(operator)) {
                        runs[r] = SeedStatistics.flat(estimate.getDiagonal());
                        Assert.assertEquals(estimate.getProducts(), 12, method + ": products");
                    }
                }
            }
            Assert.assertEquals(runs[1], runs[0]);
            Assert.assertEquals(operator.products.get(), 48, "products the operator saw");
        }
    }

    private static void assertLikeParameters(NDList arrays, NDList parameters, DataType type) {
        for (int i = 0; i < parameters.size(); i++) {
            NDArray array = arrays.get(i);
            NDArray parameter = parameters.get(i);
            Assert.assertEquals(array.getShape(), parameter.getShape());
            Assert.assertEquals(array.getDataType(), type);
            Assert.assertEquals(array.getDevice(), parameter.getDevice());
            Assert.assertSame(array.getManager(), parameter.getManager());
        }
    }

    /**
     * Probes reach the operator in each parameter's shape, data type and device, and the estimate
     * comes back in them; in float32 too.
     */
    @Test
    public void probesHaveTheParametersShapeTypeAndDevice() {
        try (NDManager manager = NDManager.newBaseManager()) {
            for (DataType type : new DataType[] {DataType.FLOAT32, DataType.FLOAT64}) {
                DenseOperator operator = DenseOperator.of(manager, type, DenseOperator.random(6));
                for (ProbeDistribution distribution : ProbeDistribution.values()) {
                    HessianDiagonal hessian =
                            HessianDiagonal.builder()
                                    .optMethod(HessianDiagonal.Method.XDIAG)
                                    .optProbes(6)
                                    .optProbeDistribution(distribution)
                                    .build();
                    try (DiagonalEstimate estimate = hessian.estimate(operator)) {
                        assertLikeParameters(estimate.getDiagonal(), operator.parameters, type);
                        assertLikeParameters(
                                estimate.getStandardError(), operator.parameters, type);
                    }
                }
                Assert.assertEquals(operator.violations, List.of(), type.toString());
            }
        }
    }
}
