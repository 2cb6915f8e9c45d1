package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.secorder.core.Curvature;
import org.secorder.core.HessianEigenvalues;
import org.secorder.operator.CurvatureOperator;
import org.secorder.operator.Eigenpairs;
import org.testng.Assert;
import org.testng.SkipException;
import org.testng.annotations.Test;

/**
 * The eigenvalues of largest magnitude against those of dense matrices built by other routes and
 * decomposed by Jacobi rotations in the test.
 */
public class HessianEigenvaluesTest {

    /** Relative tolerance for eigenvalues against the dense references. */
    private static final double RELATIVE = 1e-6;

    @Test
    public void topThreeOfTheNetworkHessianMatchTheDenseHessian() {
        EngineSupport.requireSecondDerivatives();
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianVectorProductTest.Network network =
                    HessianVectorProductTest.Network.create(manager);
            double[] expected =
                    CurvatureReference.eigenvalues(
                            CurvatureReference.hessian(
                                    network.model,
                                    network.loss,
                                    network.input,
                                    network.target,
                                    1e-3));
            try (Eigenpairs top =
                    HessianEigenvalues.builder()
                            .optCount(3)
                            .build()
                            .compute(
                                    network.model,
                                    network.loss,
                                    new NDList(network.input),
                                    new NDList(network.target))) {
                assertTopEigenvalues(top, expected, 3);
                assertEigenpairs(top, network.parameters(), 1e-8);
            }
        }
    }

    @Test
    public void topThreeOfTheNetworkGaussNewtonMatchTheDenseGaussNewton() {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianVectorProductTest.Network network =
                    HessianVectorProductTest.Network.create(manager);
            double[] expected =
                    CurvatureReference.eigenvalues(
                            CurvatureReference.gaussNewton(
                                    CurvatureReference.jacobian(network.model, network.input),
                                    CurvatureReference.softmaxCrossEntropyHessians(
                                            network.model, network.input)));
            try (Eigenpairs top =
                    HessianEigenvalues.builder()
                            .optCount(3)
                            .optCurvature(Curvature.GGN)
                            .build()
                            .compute(
                                    network.model,
                                    network.loss,
                                    new NDList(network.input),
                                    new NDList(network.target))) {
                assertTopEigenvalues(top, expected, 3);
                for (double value : top.getEigenvalues()) {
                    Assert.assertTrue(value > 0, "GGN eigenvalues are not negative: " + value);
                }
                assertEigenpairs(top, network.parameters(), 1e-8);
            }
        }
    }

    @Test
    public void negativeEigenvaluesOfLargestMagnitudeComeFirst() {
        try (NDManager manager = NDManager.newBaseManager()) {
            double[] spectrum = {0.5, -4, 3, 1, -0.25, 0.1};
            Dense operator = Dense.rotated(manager, spectrum);
            try (Eigenpairs top =
                    HessianEigenvalues.builder().optCount(3).build().compute(operator)) {
                Assertions.assertClose(
                        top.getEigenvalues(), new double[] {-4, 3, 1}, 1e-10, "eigenvalues");
                assertEigenpairs(top, operator.getParameters(), 1e-8);
            }
        }
    }

    @Test
    public void anInvariantKrylovSpaceRestartsAndFindsRepeatedEigenvalues() {
        try (NDManager manager = NDManager.newBaseManager()) {
            // one start vector spans only a 2-dimensional Krylov space of diag(3, 3, 3, -2.5)
            Dense operator = Dense.rotated(manager, new double[] {3, 3, 3, -2.5});
            try (Eigenpairs top =
                    HessianEigenvalues.builder().optCount(3).build().compute(operator)) {
                Assertions.assertClose(
                        top.getEigenvalues(), new double[] {3, 3, 3}, 1e-10, "eigenvalues");
                assertEigenpairs(top, operator.getParameters(), 1e-8);
                double overlap = 0;
                double[] first = Assertions.values(top.getEigenvectors().get(0).head());
                double[] second = Assertions.values(top.getEigenvectors().get(1).head());
                for (int i = 0; i < first.length; i++) {
                    overlap += first[i] * second[i];
                }
                Assert.assertEquals(overlap, 0, 1e-10, "eigenvectors of 3 are orthogonal");
            }
        }
    }

    @Test
    public void theToleranceDecidesWhenTheIterationStops() {
        try (NDManager manager = NDManager.newBaseManager()) {
            double[] spectrum = new double[40];
            for (int i = 0; i < spectrum.length; i++) {
                spectrum[i] = 1.0 / (1 + i) * (i % 3 == 1 ? -1 : 1);
            }
            Dense operator = Dense.rotated(manager, spectrum);
            HessianEigenvalues.Builder builder = HessianEigenvalues.builder().optCount(2);
            try (Eigenpairs loose = builder.optTolerance(1e-2).build().compute(operator);
                    Eigenpairs tight = builder.optTolerance(1e-10).build().compute(operator)) {
                Assert.assertTrue(loose.isConverged());
                Assert.assertTrue(tight.isConverged());
                Assert.assertTrue(
                        loose.getProducts() < tight.getProducts(),
                        loose.getProducts() + " products for 1e-2, " + tight.getProducts());
                double[] exact = {1, -0.5};
                for (int i = 0; i < 2; i++) {
                    double looseResidual = loose.getResidualNorms()[i];
                    Assert.assertTrue(looseResidual <= 1e-2 * Math.abs(exact[i]) * 1.01);
                    // a symmetric matrix has an eigenvalue within the residual norm
                    Assert.assertTrue(
                            Math.abs(loose.getEigenvalues()[i] - exact[i]) <= looseResidual,
                            "eigenvalue " + i + " within its residual");
                    Assert.assertEquals(tight.getEigenvalues()[i], exact[i], 1e-12);
                    Assert.assertTrue(tight.getResidualNorms()[i] <= 1e-10 * Math.abs(exact[i]));
                }
            }
        }
    }

    @Test
    public void theSameSeedGivesTheSameResult() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Dense operator = Dense.rotated(manager, new double[] {2, -1.5, 1, 0.5, 0.25});
            HessianEigenvalues solver =
                    HessianEigenvalues.builder().optCount(2).optSeed(17).optTolerance(1e-3).build();
            try (Eigenpairs first = solver.compute(operator);
                    Eigenpairs second = solver.compute(operator)) {
                Assert.assertEquals(first.getEigenvalues(), second.getEigenvalues());
                Assert.assertEquals(first.getResidualNorms(), second.getResidualNorms());
                Assert.assertEquals(first.getProducts(), second.getProducts());
            }
        }
    }

    @Test
    public void badSettingsAreRejectedWithTheirNames() {
        expectArgumentError(() -> HessianEigenvalues.builder().optCount(0).build(), "count");
        expectArgumentError(
                () -> HessianEigenvalues.builder().optTolerance(-1).build(), "tolerance");
        expectArgumentError(
                () -> HessianEigenvalues.builder().optTolerance(Double.NaN).build(), "tolerance");
        expectArgumentError(
                () -> HessianEigenvalues.builder().optCount(5).optMaxIterations(4).build(),
                "maxIterations must be at least count (5), got 4");
        expectArgumentError(
                () -> HessianEigenvalues.builder().optCurvature(null).build(), "curvature");
        try (NDManager manager = NDManager.newBaseManager()) {
            Dense operator = Dense.rotated(manager, new double[] {2, 1});
            expectArgumentError(
                    () -> HessianEigenvalues.builder().optCount(3).build().compute(operator),
                    "count must be between 1 and the number of parameter elements, 2, got 3");
            expectArgumentError(
                    () -> HessianEigenvalues.builder().build().compute((CurvatureOperator) null),
                    "operator must not be null");
        }
    }

    @Test
    public void withoutSecondDerivativesTheHessianIsAClearError() {
        if (EngineSupport.hasSecondDerivatives()) {
            throw new SkipException("PyTorch has second derivatives; the eigenvalues are tested");
        }
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianVectorProductTest.Network network =
                    HessianVectorProductTest.Network.create(manager);
            UnsupportedOperationException e =
                    Assert.expectThrows(
                            UnsupportedOperationException.class,
                            () ->
                                    HessianEigenvalues.builder()
                                            .build()
                                            .compute(
                                                    network.model,
                                                    network.loss,
                                                    new NDList(network.input),
                                                    new NDList(network.target)));
            Assert.assertTrue(e.getMessage().contains("Curvature.GGN"), e.getMessage());
        }
    }

    private static void assertTopEigenvalues(Eigenpairs top, double[] expected, int count) {
        double[] actual = top.getEigenvalues();
        Assert.assertEquals(actual.length, count);
        for (int i = 0; i < count; i++) {
            double error = Math.abs(actual[i] - expected[i]);
            Assert.assertTrue(
                    error <= RELATIVE * Math.abs(expected[i]),
                    "eigenvalue "
                            + i
                            + ": expected "
                            + expected[i]
                            + " but got "
                            + actual[i]
                            + " (all expected: "
                            + java.util.Arrays.toString(java.util.Arrays.copyOf(expected, 5))
                            + ")");
        }
        Assert.assertTrue(top.isConverged());
        Assert.assertEquals(top.getProducts(), top.getIterations() + count);
    }

    /** Residual norms are small, and eigenvectors are unit vectors shaped like the parameters. */
    private static void assertEigenpairs(Eigenpairs top, NDList parameters, double relative) {
        double[] values = top.getEigenvalues();
        for (int i = 0; i < values.length; i++) {
            Assert.assertTrue(
                    top.getResidualNorms()[i] <= relative * Math.abs(values[i]),
                    "residual norm " + i + ": " + top.getResidualNorms()[i]);
            NDList vector = top.getEigenvectors().get(i);
            Assert.assertEquals(vector.size(), parameters.size());
            double norm = 0;
            for (int p = 0; p < vector.size(); p++) {
                Assert.assertEquals(vector.get(p).getShape(), parameters.get(p).getShape());
                for (double value : Assertions.values(vector.get(p))) {
                    norm += value * value;
                }
            }
            Assert.assertEquals(norm, 1, 1e-10, "squared norm of eigenvector " + i);
        }
    }

    private static void expectArgumentError(Runnable call, String fragment) {
        IllegalArgumentException e = Assert.expectThrows(IllegalArgumentException.class, call::run);
        Assert.assertTrue(e.getMessage().contains(fragment), e.getMessage());
    }

    /** A dense symmetric matrix {@code Q diag(spectrum) Q^T} on one float64 parameter. */
    private static final class Dense implements CurvatureOperator {

        private final NDArray parameter;
        private final NDArray matrix;

        private Dense(NDArray parameter, NDArray matrix) {
            this.parameter = parameter;
            this.matrix = matrix;
        }

        /** {@code Q} from Gram-Schmidt on seeded normal columns. */
        static Dense rotated(NDManager manager, double[] spectrum) {
            int n = spectrum.length;
            java.util.Random random = new java.util.Random(99);
            double[][] q = new double[n][n];
            for (int c = 0; c < n; c++) {
                double[] column = new double[n];
                for (int r = 0; r < n; r++) {
                    column[r] = random.nextGaussian();
                }
                for (int k = 0; k < c; k++) {
                    double dot = 0;
                    for (int r = 0; r < n; r++) {
                        dot += q[r][k] * column[r];
                    }
                    for (int r = 0; r < n; r++) {
                        column[r] -= dot * q[r][k];
                    }
                }
                double norm = Math.sqrt(java.util.Arrays.stream(column).map(x -> x * x).sum());
                for (int r = 0; r < n; r++) {
                    q[r][c] = column[r] / norm;
                }
            }
            double[][] scaled = new double[n][n];
            for (int r = 0; r < n; r++) {
                for (int c = 0; c < n; c++) {
                    scaled[r][c] = q[r][c] * spectrum[c];
                }
            }
            double[][] dense = CurvatureReference.product(scaled, CurvatureReference.transpose(q));
            double[] flat = new double[n * n];
            for (int r = 0; r < n; r++) {
                System.arraycopy(dense[r], 0, flat, r * n, n);
            }
            return new Dense(
                    manager.zeros(new Shape(n), ai.djl.ndarray.types.DataType.FLOAT64),
                    manager.create(flat, new Shape(n, n)));
        }

        @Override
        public NDList getParameters() {
            return new NDList(parameter);
        }

        @Override
        public NDList multiply(NDList vector) {
            return new NDList(matrix.matMul(vector.head().reshape(-1, 1)).reshape(-1));
        }
    }
}
