package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.convolutional.Conv1d;
import ai.djl.nn.convolutional.Conv1dTranspose;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.convolutional.Conv2dTranspose;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import org.secorder.core.Curvature;
import org.secorder.core.HessianDiagonal;
import org.secorder.structured.StructuredDiagonal;
import org.testng.Assert;
import org.testng.SkipException;
import org.testng.annotations.Test;

/**
 * {@code Conv1dTranspose} and {@code Conv2dTranspose} through their explicit rule, between
 * convolutions and smooth activations (so that columns of every kind pass through them): the
 * Hessian diagonal against float64 central differences of first-order gradients at every element of
 * every parameter, the generalized Gauss-Newton diagonal against {@code sum_n J_n^T H_n J_n}. DJL
 * 0.36.0's PyTorch engine has no transposed convolution (its forward throws), so there the tests
 * check the error instead.
 */
public class TransposedConvolutionStructuredTest {

    private static final double STEP = 1e-5;
    private static final double TOLERANCE = 1e-6;
    private static final double JACOBIAN_TOLERANCE = 1e-7;
    private static final Shape IMAGES = new Shape(2, 2, 3, 3);
    private static final Shape SIGNALS = new Shape(3, 2, 4);

    @Test
    public void conv2dTransposeWithStridePaddingAndOutputPaddingMatchesGradientDifferences() {
        Block transposed =
                Conv2dTranspose.builder()
                        .setKernelShape(new Shape(3, 3))
                        .setFilters(2)
                        .optStride(new Shape(2, 2))
                        .optPadding(new Shape(1, 1))
                        .optOutPadding(new Shape(1, 1))
                        .build();
        checkHessian(imageModel(transposed), IMAGES, 301);
    }

    @Test
    public void groupedConv2dTransposeWithoutBiasMatchesGradientDifferences() {
        Block transposed =
                Conv2dTranspose.builder()
                        .setKernelShape(new Shape(2, 2))
                        .setFilters(2)
                        .optGroups(2)
                        .optBias(false)
                        .build();
        checkHessian(imageModel(transposed), IMAGES, 302);
    }

    @Test
    public void dilatedConv1dTransposeIsRefusedWhereTheEngineComputesAnotherMap() {
        // DJL 0.36.0 on MXNet: with a dilation of 2 the output has a length that ignores the
        // stride, and it is not the adjoint of the dilated convolution
        skipOnPyTorch();
        Block transposed =
                Conv1dTranspose.builder()
                        .setKernelShape(new Shape(2))
                        .setFilters(2)
                        .optStride(new Shape(2))
                        .optDilation(new Shape(2))
                        .build();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(signalModel(transposed), manager, SIGNALS, 303);
            NDArray input = Fixtures.normal(manager, 1303, SIGNALS);
            NDArray labels = Fixtures.classes(manager, 3, 3);
            UnsupportedOperationException e =
                    Assert.expectThrows(
                            UnsupportedOperationException.class,
                            () ->
                                    Fixtures.structured(
                                            model,
                                            new SoftmaxCrossEntropyLoss(),
                                            input,
                                            labels,
                                            false));
            Assert.assertTrue(e.getMessage().contains("(Conv1dTranspose)"), e.getMessage());
            Assert.assertTrue(
                    e.getMessage().contains("does not compute the transposed convolution"),
                    e.getMessage());
        }
    }

    @Test
    public void conv1dTransposeWithoutBiasMatchesGradientDifferences() {
        Block transposed =
                Conv1dTranspose.builder()
                        .setKernelShape(new Shape(3))
                        .setFilters(2)
                        .optPadding(new Shape(1))
                        .optBias(false)
                        .build();
        checkHessian(signalModel(transposed), SIGNALS, 304);
    }

    @Test
    public void ggnOfConv2dTransposeEqualsGaussNewtonReference() {
        skipOnPyTorch();
        Block transposed =
                Conv2dTranspose.builder()
                        .setKernelShape(new Shape(2, 2))
                        .setFilters(2)
                        .optStride(new Shape(2, 2))
                        .build();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(imageModel(transposed), manager, IMAGES, 305);
            NDArray input = Fixtures.normal(manager, 306, IMAGES);
            NDArray labels = Fixtures.classes(manager, 2, 3);
            HessianDiagonal ggn = HessianDiagonal.builder().optCurvature(Curvature.GGN).build();
            NDList actual =
                    ggn.compute(
                            model,
                            new SoftmaxCrossEntropyLoss(),
                            new NDList(input),
                            new NDList(labels));
            Fixtures.assertMatches(
                    actual.toArray(new NDArray[0]),
                    GaussNewtonReference.softmaxCrossEntropy(model, input),
                    JACOBIAN_TOLERANCE);
        }
    }

    @Test
    public void perSampleHessianOfConv1dTransposeMatchesEachSampleAlone() {
        skipOnPyTorch();
        Block transposed =
                Conv1dTranspose.builder()
                        .setKernelShape(new Shape(2))
                        .setFilters(2)
                        .optStride(new Shape(2))
                        .build();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(signalModel(transposed), manager, SIGNALS, 307);
            NDArray input = Fixtures.normal(manager, 308, SIGNALS);
            NDArray labels = Fixtures.classes(manager, 3, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] perSample =
                    StructuredDiagonal.compute(
                            model,
                            loss,
                            new NDList(input),
                            new NDList(labels),
                            false,
                            true,
                            false,
                            HessianDiagonal.DEFAULT_MEMORY_BUDGET,
                            manager);
            for (int n = 0; n < 3; n++) {
                NDIndex sample = new NDIndex("{}:{}", n, n + 1);
                NDArray[] actual = new NDArray[perSample.length];
                for (int p = 0; p < actual.length; p++) {
                    // the loss of the batch is the mean over its 3 samples
                    actual[p] = perSample[p].get(n).mul(3);
                }
                NDList expected =
                        Fixtures.gradientDifferences(
                                model, loss, input.get(sample), labels.get(sample), STEP);
                Fixtures.assertMatches(actual, expected, TOLERANCE);
            }
        }
    }

    @Test
    public void pyTorchRefusesTransposedConvolutionNamingTheEngine() {
        if (!Fixtures.isPyTorch()) {
            throw new SkipException("MXNet runs transposed convolutions: the tests above check it");
        }
        Block transposed =
                Conv2dTranspose.builder().setKernelShape(new Shape(2, 2)).setFilters(2).build();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(imageModel(transposed), manager, IMAGES, 309);
            NDArray input = Fixtures.normal(manager, 310, IMAGES);
            NDArray labels = Fixtures.classes(manager, 2, 3);
            UnsupportedOperationException e =
                    Assert.expectThrows(
                            UnsupportedOperationException.class,
                            () ->
                                    HessianDiagonal.builder()
                                            .optMethod(HessianDiagonal.Method.STRUCTURED)
                                            .build()
                                            .compute(
                                                    model,
                                                    new SoftmaxCrossEntropyLoss(),
                                                    new NDList(input),
                                                    new NDList(labels)));
            Assert.assertTrue(e.getMessage().contains("(Conv2dTranspose)"), e.getMessage());
            Assert.assertTrue(e.getMessage().contains("PyTorch engine"), e.getMessage());
        }
    }

    private static void skipOnPyTorch() {
        if (Fixtures.isPyTorch()) {
            throw new SkipException(
                    "DJL 0.36.0's PyTorch engine does not implement the transposed convolution"
                            + " (its forward throws); the rule runs and is checked on MXNet");
        }
    }

    private static void checkHessian(Block block, Shape shape, long seed) {
        skipOnPyTorch();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, shape, seed);
            NDArray input = Fixtures.normal(manager, seed + 1000, shape);
            NDArray labels = Fixtures.classes(manager, Math.toIntExact(shape.get(0)), 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            HessianDiagonal hessian = HessianDiagonal.builder().build();
            Assert.assertEquals(
                    hessian.resolve(model, loss),
                    HessianDiagonal.Method.STRUCTURED,
                    String.valueOf(hessian.unsupportedBlocks(model, loss)));
            NDList actual = hessian.compute(model, loss, new NDList(input), new NDList(labels));
            Fixtures.assertMatches(
                    actual.toArray(new NDArray[0]),
                    Fixtures.gradientDifferences(model, loss, input, labels, STEP),
                    TOLERANCE);
        }
    }

    /** {@code Conv2d(2 channels) - tanh - transposed - tanh - flatten - Linear(3)}. */
    private static Block imageModel(Block transposed) {
        return new SequentialBlock()
                .add(
                        Conv2d.builder()
                                .setKernelShape(new Shape(2, 2))
                                .setFilters(2)
                                .optPadding(new Shape(1, 1))
                                .build())
                .add(Activation.tanhBlock())
                .add(transposed)
                .add(Activation.tanhBlock())
                .add(Networks.flatten())
                .add(Networks.linear(3));
    }

    /** {@code Conv1d(2 channels) - softPlus - transposed - tanh - flatten - Linear(3)}. */
    private static Block signalModel(Block transposed) {
        return new SequentialBlock()
                .add(Conv1d.builder().setKernelShape(new Shape(2)).setFilters(2).build())
                .add(Activation.softPlusBlock())
                .add(transposed)
                .add(Activation.tanhBlock())
                .add(Networks.flatten())
                .add(Networks.linear(3));
    }
}
