package org.secorder.tests.structured;

import ai.djl.basicmodelzoo.basic.Mlp;
import ai.djl.basicmodelzoo.cv.classification.GoogLeNet;
import ai.djl.basicmodelzoo.cv.classification.SqueezeNet;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.loss.L2Loss;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import org.secorder.structured.MemoryMeter;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * GGN equals STRUCTURED where the network is piecewise linear, equals an independent {@code J^T H
 * J} where it is smooth, and is never negative.
 */
public class GaussNewtonStructuredTest {

    /** Finite-difference Jacobians in float64 are good to about 1e-10 relative. */
    private static final double JACOBIAN_TOLERANCE = 1e-7;

    /** On a ReLU, LeakyReLU and max-pooling network the GGN is the Hessian diagonal. */
    @Test
    public void ggnEqualsStructuredOnPiecewiseLinearNetwork() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(3, 2, 6, 6);
            Block model =
                    new SequentialBlock()
                            .add(
                                    Conv2d.builder()
                                            .setKernelShape(new Shape(3, 3))
                                            .setFilters(3)
                                            .build())
                            .add(Activation.leakyReluBlock(0.2f))
                            .add(Pool.maxPool2dBlock(new Shape(2, 2)))
                            .add(Networks.flatten())
                            .add(Networks.linear(5))
                            .add(Activation.reluBlock())
                            .add(Networks.linear(3));
            Fixtures.initialize(model, manager, shape, 71);
            NDArray input = Fixtures.normal(manager, 72, shape);
            NDArray labels = Fixtures.classes(manager, 3, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] ggn = Fixtures.structured(model, loss, input, labels, true);
            NDArray[] exact = Fixtures.structured(model, loss, input, labels, false);
            Fixtures.assertMatches(ggn, exact, 1e-12);
        }
    }

    /**
     * On ReLU networks joined by concatenation (the zoo's SqueezeNet, with ceil-mode max pooling,
     * and GoogLeNet, with max pooling inside its inception blocks) the Hessian runs the GGN's work
     * and nothing more: no curvature columns arise, so the diagonals are the same to the bit, as
     * many column steps run, and the columns held at once peak at the same size.
     */
    @Test
    public void hessianDoesTheGgnWorkOnConcatenatingReluNetworks() {
        assertSameWork(SqueezeNet.squeezenet(3), new Shape(2, 3, 25, 25));
        assertSameWork(GoogLeNet.builder().setOutSize(3).build(), new Shape(2, 3, 8, 8));
    }

    /** The step count sees curvature columns: a tanh network's Hessian takes more steps. */
    @Test
    public void hessianTakesMoreColumnStepsOnSmoothNetworks() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(2, 12);
            Block model = new Mlp(12, 3, new int[] {6, 5}, Activation::tanh);
            Fixtures.initialize(model, manager, shape, 83, DataType.FLOAT32);
            NDArray input = Fixtures.normal(manager, 84, shape).toType(DataType.FLOAT32, false);
            NDArray labels = Fixtures.classes(manager, 2, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            MemoryMeter hessianMeter = new MemoryMeter(256L << 20);
            MemoryMeter ggnMeter = new MemoryMeter(256L << 20);
            Fixtures.structured(model, loss, input, labels, false, hessianMeter);
            Fixtures.structured(model, loss, input, labels, true, ggnMeter);
            Assert.assertTrue(
                    hessianMeter.getObservationCount() > ggnMeter.getObservationCount(),
                    hessianMeter.getObservationCount() + " vs " + ggnMeter.getObservationCount());
        }
    }

    private static void assertSameWork(Block model, Shape shape) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Fixtures.initialize(model, manager, shape, 81, DataType.FLOAT32);
            NDArray input = Fixtures.normal(manager, 82, shape).toType(DataType.FLOAT32, false);
            NDArray labels = Fixtures.classes(manager, 2, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            MemoryMeter hessianMeter = new MemoryMeter(256L << 20);
            MemoryMeter ggnMeter = new MemoryMeter(256L << 20);
            NDArray[] hessian =
                    Fixtures.structured(model, loss, input, labels, false, hessianMeter);
            NDArray[] ggn = Fixtures.structured(model, loss, input, labels, true, ggnMeter);
            Assert.assertEquals(hessianMeter.getPeakBytes(), ggnMeter.getPeakBytes(), "peak");
            Assert.assertEquals(
                    hessianMeter.getObservationCount(),
                    ggnMeter.getObservationCount(),
                    "column steps");
            Assert.assertTrue(hessianMeter.getObservationCount() > 0);
            for (int p = 0; p < ggn.length; p++) {
                Assert.assertEquals(
                        hessian[p].toFloatArray(), ggn[p].toFloatArray(), "diagonal " + p);
            }
        }
    }

    /** On a smooth MLP with cross-entropy the GGN equals {@code sum_n J_n^T H_n J_n}. */
    @Test
    public void ggnEqualsJacobianProductForCrossEntropy() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = smoothModel(manager);
            NDArray input = Fixtures.normal(manager, 74, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            NDArray[] ggn =
                    Fixtures.structured(model, new SoftmaxCrossEntropyLoss(), input, labels, true);
            Fixtures.assertMatches(
                    ggn,
                    GaussNewtonReference.softmaxCrossEntropy(model, input),
                    JACOBIAN_TOLERANCE);
        }
    }

    /** On a smooth MLP with a weighted squared error the GGN equals {@code J^T H J}. */
    @Test
    public void ggnEqualsJacobianProductForSquaredError() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = smoothModel(manager);
            NDArray input = Fixtures.normal(manager, 75, Networks.vectors());
            NDArray targets = Fixtures.normal(manager, 76, new Shape(5, 3));
            NDArray[] ggn =
                    Fixtures.structured(model, new L2Loss("l2", 0.3f), input, targets, true);
            Fixtures.assertMatches(
                    ggn, GaussNewtonReference.squaredError(model, input, 0.3f), JACOBIAN_TOLERANCE);
        }
    }

    /** The GGN diagonal has no negative entry where the Hessian diagonal has some. */
    @Test
    public void ggnIsNonNegativeWhereHessianIsNot() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = smoothModel(manager);
            NDArray input = Fixtures.normal(manager, 77, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            double hessianMinimum = Double.POSITIVE_INFINITY;
            for (NDArray diagonal : Fixtures.structured(model, loss, input, labels, false)) {
                hessianMinimum = Math.min(hessianMinimum, diagonal.min().getDouble());
            }
            Assert.assertTrue(hessianMinimum < 0, "the Hessian diagonal has negative entries");
            for (NDArray diagonal : Fixtures.structured(model, loss, input, labels, true)) {
                Assert.assertTrue(diagonal.min().getDouble() >= 0, "GGN entry below zero");
            }
        }
    }

    private static Block smoothModel(NDManager manager) {
        Block model = Networks.twice(Activation.tanhBlock(), Activation.softPlusBlock(), 3);
        return Fixtures.initialize(model, manager, Networks.vectors(), 73);
    }
}
