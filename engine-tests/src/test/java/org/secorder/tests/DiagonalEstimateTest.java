package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.training.loss.L2Loss;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import java.util.Random;
import org.secorder.core.Curvature;
import org.secorder.core.DiagonalEstimate;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianTrace;
import org.secorder.core.ProbeDistribution;
import org.secorder.core.TraceEstimate;
import org.testng.Assert;
import org.testng.SkipException;
import org.testng.annotations.Test;

/**
 * {@code estimate} for every method: exact methods with zero standard error and the diagonal of
 * {@code compute}, stochastic ones through Hessian-vector products of a real loss, the trace of a
 * model's GGN, and the validation of the new settings.
 */
public class DiagonalEstimateTest {

    /** Exact methods through {@code estimate}: the diagonal of {@code compute}, zero error. */
    @Test
    public void exactMethodsGiveZeroErrorAndTheDiagonalOfCompute() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x =
                    manager.create(
                            new float[] {0.1f, -0.7f, 1.3f, 2.1f, -1.9f, 0.35f}, new Shape(2, 3));
            NDArray y = manager.create(new float[] {0.3f, -1.1f, 1.7f});
            x.setRequiresGradient(true);
            y.setRequiresGradient(true);
            java.util.function.Supplier<NDArray> func =
                    () -> x.mul(0.9f).tanh().sum().add(y.pow(3).sum());
            NDList params = new NDList(x, y);
            HessianDiagonal hessian =
                    HessianDiagonal.builder().optMethod(EngineSupport.workingMethod()).build();
            double[] computed = SeedStatistics.flat(hessian.compute(func, params));
            try (DiagonalEstimate estimate = hessian.estimate(func, params)) {
                Assert.assertEquals(SeedStatistics.flat(estimate.getDiagonal()), computed);
                for (double error : SeedStatistics.flat(estimate.getStandardError())) {
                    Assert.assertEquals(error, 0.0);
                }
                long elements = 6 + 3;
                long expected =
                        EngineSupport.workingMethod() == HessianDiagonal.Method.FINITE_DIFFERENCE
                                ? 2 * elements
                                : elements;
                Assert.assertEquals(estimate.getProducts(), expected);
            }
            Block model = EstimationFixtures.network(manager, 4, 21);
            NDList inputs = new NDList(EstimationFixtures.inputs(manager, 22));
            NDList targets = new NDList(EstimationFixtures.classes(manager, 4));
            Loss loss = new SoftmaxCrossEntropyLoss();
            HessianDiagonal ggn =
                    HessianDiagonal.builder().optMethod(HessianDiagonal.Method.GGN).build();
            double[] exact = SeedStatistics.flat(ggn.compute(model, loss, inputs, targets));
            try (DiagonalEstimate estimate = ggn.estimate(model, loss, inputs, targets)) {
                Assert.assertEquals(SeedStatistics.flat(estimate.getDiagonal()), exact);
                for (double error : SeedStatistics.flat(estimate.getStandardError())) {
                    Assert.assertEquals(error, 0.0);
                }
                Assert.assertEquals(estimate.getProducts(), 4, "loss columns per example");
            }
        }
    }

    /**
     * Hutchinson's diagonal of a real network's Hessian, through Hessian-vector products: unbiased
     * over 200 seeds against the exact diagonal by double backward (PyTorch; skipped where the
     * engine has no double backward, whose clear error {@code HessianVectorProductTest} checks).
     */
    @Test
    public void hutchinsonOfARealLossIsUnbiased() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = EstimationFixtures.network(manager, 2, 23);
            NDList inputs = new NDList(EstimationFixtures.inputs(manager, 24));
            NDList targets =
                    new NDList(
                            EstimationFixtures.normal(
                                    manager,
                                    new Random(25),
                                    new Shape(EstimationFixtures.BATCH, 2),
                                    1));
            Loss loss = new L2Loss();
            double[] exact;
            try {
                exact =
                        SeedStatistics.flat(
                                HessianDiagonal.builder()
                                        .optMethod(HessianDiagonal.Method.AUTOGRAD)
                                        .build()
                                        .compute(model, loss, inputs, targets));
            } catch (UnsupportedOperationException e) {
                throw new SkipException(
                        EngineSupport.name()
                                + " has no Hessian-vector products: "
                                + e.getMessage());
            }
            SeedStatistics statistics = new SeedStatistics(exact.length);
            for (int seed = 0; seed < HutchinsonTest.SEEDS; seed++) {
                try (DiagonalEstimate estimate =
                        HessianDiagonal.builder()
                                .optMethod(HessianDiagonal.Method.HUTCHINSON)
                                .optProbes(3)
                                .optSeed(seed)
                                .build()
                                .estimate(model, loss, inputs, targets)) {
                    statistics.add(
                            SeedStatistics.flat(estimate.getDiagonal()),
                            SeedStatistics.flat(estimate.getStandardError()));
                }
            }
            // 36 elements: four standard errors keep the chance of a false alarm below 1 in 400
            statistics.assertUnbiased(exact, 4, "Hutchinson of an MLP's Hessian");
        }
    }

    /**
     * The GGN trace of a model on every engine: exact equals the sum of {@code Method.GGN}'s
     * diagonal, and Hutchinson's estimate is unbiased over 200 seeds.
     */
    @Test
    public void ggnTraceOfAModel() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = EstimationFixtures.network(manager, 3, 26);
            NDList inputs = new NDList(EstimationFixtures.inputs(manager, 27));
            NDList targets = new NDList(EstimationFixtures.classes(manager, 3));
            Loss loss = new SoftmaxCrossEntropyLoss();
            double sum = 0;
            for (double d :
                    SeedStatistics.flat(
                            HessianDiagonal.builder()
                                    .optMethod(HessianDiagonal.Method.GGN)
                                    .build()
                                    .compute(model, loss, inputs, targets))) {
                sum += d;
            }
            TraceEstimate exact =
                    HessianTrace.builder()
                            .optMethod(HessianTrace.Method.EXACT)
                            .optCurvature(Curvature.GGN)
                            .build()
                            .compute(model, loss, inputs, targets);
            Assert.assertEquals(exact.getTrace(), sum, 1e-9 * sum);
            SeedStatistics statistics = new SeedStatistics(1);
            for (int seed = 0; seed < HutchinsonTest.SEEDS; seed++) {
                TraceEstimate trace =
                        HessianTrace.builder()
                                .optProbes(2)
                                .optSeed(seed)
                                .optProbeDistribution(ProbeDistribution.GAUSSIAN)
                                .optCurvature(Curvature.GGN)
                                .optRelativeErrorWarning(Double.POSITIVE_INFINITY)
                                .build()
                                .compute(model, loss, inputs, targets);
                statistics.add(
                        new double[] {trace.getTrace()}, new double[] {trace.getStandardError()});
            }
            statistics.assertUnbiased(new double[] {sum}, "Hutchinson trace of the GGN");
        }
    }

    /**
     * With {@code optCurvature(Curvature.GGN)}, Hutchinson's diagonal estimates the GGN's diagonal,
     * not the Hessian's, on every engine: unbiased for the exact {@code STRUCTURED} GGN diagonal
     * over 200 seeds.
     */
    @Test
    public void hutchinsonWithGgnCurvatureEstimatesTheGgnDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = EstimationFixtures.network(manager, 3, 31);
            NDList inputs = new NDList(EstimationFixtures.inputs(manager, 32));
            NDList targets = new NDList(EstimationFixtures.classes(manager, 3));
            Loss loss = new SoftmaxCrossEntropyLoss();
            double[] exact =
                    SeedStatistics.flat(
                            HessianDiagonal.builder()
                                    .optMethod(HessianDiagonal.Method.STRUCTURED)
                                    .optCurvature(Curvature.GGN)
                                    .build()
                                    .compute(model, loss, inputs, targets));
            SeedStatistics statistics = new SeedStatistics(exact.length);
            for (int seed = 0; seed < HutchinsonTest.SEEDS; seed++) {
                try (DiagonalEstimate estimate =
                        HessianDiagonal.builder()
                                .optMethod(HessianDiagonal.Method.HUTCHINSON)
                                .optCurvature(Curvature.GGN)
                                .optProbes(2)
                                .optSeed(seed)
                                .build()
                                .estimate(model, loss, inputs, targets)) {
                    statistics.add(
                            SeedStatistics.flat(estimate.getDiagonal()),
                            SeedStatistics.flat(estimate.getStandardError()));
                }
            }
            statistics.assertUnbiased(exact, 4, "Hutchinson of an MLP's GGN");
        }
    }

    /**
     * The GGN of a plain loss has no model output to factor: a clear error naming the curvature.
     */
    @Test
    public void ggnCurvatureOfAPlainLossIsRejected() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = manager.create(new double[] {1, 2, 3});
            x.setRequiresGradient(true);
            HessianDiagonal hutchinson =
                    HessianDiagonal.builder()
                            .optMethod(HessianDiagonal.Method.HUTCHINSON)
                            .optCurvature(Curvature.GGN)
                            .build();
            IllegalArgumentException e =
                    Assert.expectThrows(
                            IllegalArgumentException.class,
                            () -> hutchinson.estimate(() -> x.pow(3).sum(), new NDList(x)));
            Assert.assertTrue(
                    e.getMessage().toLowerCase().contains("ggn")
                            || e.getMessage().contains("curvature"),
                    e.getMessage());
        }
    }

    /** {@code compute} with a stochastic method returns the diagonal {@code estimate} gives. */
    @Test
    public void stochasticComputeReturnsTheEstimatedDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = EstimationFixtures.network(manager, 3, 28);
            NDList inputs = new NDList(EstimationFixtures.inputs(manager, 29));
            NDList targets = new NDList(EstimationFixtures.classes(manager, 3));
            Loss loss = new SoftmaxCrossEntropyLoss();
            HessianDiagonal hessian =
                    HessianDiagonal.builder()
                            .optMethod(HessianDiagonal.Method.MONTE_CARLO)
                            .optProbes(3)
                            .optSeed(9)
                            .build();
            double[] computed = SeedStatistics.flat(hessian.compute(model, loss, inputs, targets));
            try (DiagonalEstimate estimate = hessian.estimate(model, loss, inputs, targets)) {
                Assert.assertEquals(SeedStatistics.flat(estimate.getDiagonal()), computed);
            }
        }
    }

    /** Vectors {@code v} scale the diagonal by {@code v} and the standard error by {@code |v|}. */
    @Test
    public void vectorsScaleTheEstimate() {
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT64, DenseOperator.random(31));
            NDList v = new NDList();
            for (NDArray parameter : operator.parameters) {
                v.add(manager.full(parameter.getShape(), -2f, DataType.FLOAT64));
            }
            HessianDiagonal.Builder builder =
                    HessianDiagonal.builder()
                            .optMethod(HessianDiagonal.Method.HUTCHINSON)
                            .optProbes(4);
            try (DiagonalEstimate plain = builder.build().estimate(operator);
                    DiagonalEstimate scaled = builder.optVectors(v).build().estimate(operator)) {
                double[] d = SeedStatistics.flat(plain.getDiagonal());
                double[] e = SeedStatistics.flat(plain.getStandardError());
                double[] sd = SeedStatistics.flat(scaled.getDiagonal());
                double[] se = SeedStatistics.flat(scaled.getStandardError());
                for (int i = 0; i < d.length; i++) {
                    Assert.assertEquals(sd[i], -2 * d[i], 1e-12);
                    Assert.assertEquals(se[i], 2 * e[i], 1e-12);
                }
            }
        }
    }

    /** Bad settings and calls are rejected, naming the setting and what is expected. */
    @Test
    public void badSettingsAreRejected() {
        TraceEstimateTest.expect(
                () -> HessianDiagonal.builder().optProbes(0).build(), "probes must be at least 1");
        TraceEstimateTest.expect(
                () ->
                        HessianDiagonal.builder()
                                .optMethod(HessianDiagonal.Method.XDIAG)
                                .optProbes(3)
                                .build(),
                "XDIAG needs at least 4 probes");
        TraceEstimateTest.expect(
                () ->
                        HessianDiagonal.builder()
                                .optMethod(HessianDiagonal.Method.HUTCHINSON)
                                .optCreateGraph(true)
                                .build(),
                "createGraph");
        TraceEstimateTest.expect(
                () -> HessianDiagonal.builder().optProbeDistribution(null).build(),
                "probeDistribution must not be null");
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT64, DenseOperator.random(32));
            TraceEstimateTest.expect(
                    () -> HessianDiagonal.builder().build().estimate(operator),
                    "HUTCHINSON or Method.XDIAG");
            TraceEstimateTest.expect(
                    () ->
                            HessianDiagonal.builder()
                                    .optMethod(HessianDiagonal.Method.XDIAG)
                                    .optProbes(4)
                                    .build()
                                    .estimate((org.secorder.operator.CurvatureOperator) null),
                    "operator must not be null");
            NDArray x = manager.create(new double[] {1, 2});
            x.setRequiresGradient(true);
            TraceEstimateTest.expect(
                    () ->
                            HessianDiagonal.builder()
                                    .optMethod(HessianDiagonal.Method.MONTE_CARLO)
                                    .build()
                                    .estimate(() -> x.mul(x).sum(), new NDList(x)),
                    "estimate(Block, Loss, NDList, NDList)");
        }
    }
}
