package org.secorder.tests;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.ProbeDistribution;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * XDiag against an explicit dense operator: unbiased for both probe distributions, its standard
 * error calibrated, and far better than Hutchinson's estimator at the same number of products where
 * a few eigenvalues dominate.
 */
public class XDiagTest {

    private static void checkUnbiased(ProbeDistribution distribution) {
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT64, DenseOperator.random(11));
            HutchinsonTest.overSeeds(operator, HessianDiagonal.Method.XDIAG, distribution, 12)
                    .assertUnbiased(operator.diagonal(), "XDiag, " + distribution);
        }
    }

    /** With Rademacher probes the mean over 200 seeds is the exact diagonal. */
    @Test
    public void diagonalIsUnbiasedWithRademacherProbes() {
        checkUnbiased(ProbeDistribution.RADEMACHER);
    }

    /** With Gaussian probes too: no division by w * w. */
    @Test
    public void diagonalIsUnbiasedWithGaussianProbes() {
        checkUnbiased(ProbeDistribution.GAUSSIAN);
    }

    /**
     * The reported standard error (spread of the leave-one-out terms) matches the spread across
     * seeds within a factor 1.3 on a matrix with a dominant low-rank part.
     */
    @Test
    public void standardErrorIsCalibrated() {
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT64, DenseOperator.spectrum(12, 3, 20));
            for (ProbeDistribution distribution : ProbeDistribution.values()) {
                HutchinsonTest.overSeeds(operator, HessianDiagonal.Method.XDIAG, distribution, 16)
                        .assertCalibrated(1.3, "XDiag, " + distribution);
            }
        }
    }

    /** At 12 products XDiag's error is far below Hutchinson's on a matrix of dominant rank 3. */
    @Test
    public void beatsHutchinsonOnADominantLowRankPart() {
        try (NDManager manager = NDManager.newBaseManager()) {
            DenseOperator operator =
                    DenseOperator.of(manager, DataType.FLOAT64, DenseOperator.spectrum(13, 3, 20));
            double[] exact = operator.diagonal();
            double xdiag =
                    HutchinsonTest.overSeeds(
                                    operator,
                                    HessianDiagonal.Method.XDIAG,
                                    ProbeDistribution.RADEMACHER,
                                    12)
                            .rootMeanSquareError(exact);
            double hutchinson =
                    HutchinsonTest.overSeeds(
                                    operator,
                                    HessianDiagonal.Method.HUTCHINSON,
                                    ProbeDistribution.RADEMACHER,
                                    12)
                            .rootMeanSquareError(exact);
            Assert.assertTrue(
                    xdiag < hutchinson / 3,
                    "XDiag error " + xdiag + ", Hutchinson error " + hutchinson);
        }
    }
}
