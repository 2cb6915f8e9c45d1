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
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.convolutional.Conv3d;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import org.secorder.structured.StructuredDiagonal;
import org.secorder.structured.internal.rules.PoolingLayer;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * STRUCTURED equals the exact Hessian diagonal on convolutional networks with strides, padding,
 * dilation, groups, max and average pooling and flatten blocks.
 */
public class ConvolutionStructuredTest {

    /** Conv2d with stride and padding, max pooling, a grouped Conv2d, flatten and Linear. */
    @Test
    public void conv2dWithMaxPoolingMatchesExactDiagonal() {
        Block model =
                new SequentialBlock()
                        .add(
                                conv2d(new Shape(3, 3), 4)
                                        .optPadding(new Shape(1, 1))
                                        .optStride(new Shape(2, 1))
                                        .build())
                        .add(Activation.tanhBlock())
                        .add(Pool.maxPool2dBlock(new Shape(2, 2)))
                        .add(conv2d(new Shape(2, 2), 4).optGroups(2).build())
                        .add(Activation.softPlusBlock())
                        .add(Networks.flatten())
                        .add(Networks.linear(3));
        check(model, new Shape(3, 2, 7, 6));
    }

    /** Dilated Conv2d without bias, average pooling with padding. */
    @Test
    public void dilatedConv2dWithAveragePoolingMatchesExactDiagonal() {
        Block model =
                new SequentialBlock()
                        .add(
                                conv2d(new Shape(2, 3), 3)
                                        .optDilation(new Shape(2, 1))
                                        .optBias(false)
                                        .build())
                        .add(Activation.sigmoidBlock())
                        .add(Pool.avgPool2dBlock(new Shape(2, 2), new Shape(1, 2), new Shape(1, 0)))
                        .add(Networks.flatten())
                        .add(Networks.linear(3));
        check(model, new Shape(3, 2, 6, 5));
    }

    /** Conv1d with dilation and padding larger than the dilated kernel's reach, max pooling. */
    @Test
    public void conv1dMatchesExactDiagonal() {
        Block model =
                new SequentialBlock()
                        .add(
                                Conv1d.builder()
                                        .setKernelShape(new Shape(3))
                                        .setFilters(3)
                                        .optDilation(new Shape(2))
                                        .optPadding(new Shape(5))
                                        .optStride(new Shape(2))
                                        .build())
                        .add(Activation.tanhBlock())
                        .add(Pool.maxPool1dBlock(new Shape(2)))
                        .add(Networks.flatten())
                        .add(Networks.linear(3));
        check(model, new Shape(3, 2, 9));
    }

    /** Conv3d followed by global average pooling. */
    @Test
    public void conv3dWithGlobalAveragePoolingMatchesExactDiagonal() {
        Block model =
                new SequentialBlock()
                        .add(
                                Conv3d.builder()
                                        .setKernelShape(new Shape(2, 2, 2))
                                        .setFilters(3)
                                        .build())
                        .add(Activation.tanhBlock())
                        .add(Pool.globalAvgPool3dBlock())
                        .add(Networks.linear(3));
        check(model, new Shape(3, 2, 3, 4, 3));
    }

    /** ReLU convolutions with global max pooling. */
    @Test
    public void globalMaxPoolingMatchesExactDiagonal() {
        Block model =
                new SequentialBlock()
                        .add(conv2d(new Shape(3, 3), 4).optPadding(new Shape(1, 1)).build())
                        .add(Activation.reluBlock())
                        .add(Pool.globalMaxPool2dBlock())
                        .add(Networks.linear(3));
        check(model, new Shape(3, 2, 5, 5));
    }

    /**
     * Overlapping average pooling that divides by the window size (DJL's default, as in LeNet): its
     * window size, stride and padding are recognized and the local columns of a smooth activation
     * mapped through it without being made dense; a dense layer's columns pass it too.
     */
    @Test
    public void overlappingAveragePoolingIsRecognizedAndExact() {
        Block model =
                new SequentialBlock()
                        .add(conv2d(new Shape(3, 3), 3).optPadding(new Shape(1, 1)).build())
                        .add(Activation.sigmoidBlock())
                        .add(Pool.avgPool2dBlock(new Shape(5, 3), new Shape(2, 1), new Shape(2, 1)))
                        .add(conv2d(new Shape(3, 3), 4).build())
                        .add(Activation.tanhBlock())
                        .add(Networks.flatten())
                        .add(Networks.linear(5))
                        .add(Activation.sigmoidBlock())
                        .add(Networks.linear(3));
        long recognized = PoolingLayer.averageWindowCount();
        check(model, new Shape(3, 2, 11, 8));
        Assert.assertTrue(PoolingLayer.averageWindowCount() > recognized, "not recognized");
    }

    /**
     * The windows of a pooling block are found once per input shape and remembered: later calls,
     * with other values and another batch size, take the remembered windows (and the selection of
     * their own values) and stay exact; the average pooling is still recognized.
     */
    @Test
    public void rememberedPoolingWindowsStayExactOnLaterCalls() {
        Block block =
                new SequentialBlock()
                        .add(conv2d(new Shape(3, 3), 3).optPadding(new Shape(1, 1)).build())
                        .add(Activation.tanhBlock())
                        .add(Pool.maxPool2dBlock(new Shape(2, 2)))
                        .add(conv2d(new Shape(2, 2), 4).build())
                        .add(Activation.sigmoidBlock())
                        .add(Pool.avgPool2dBlock(new Shape(3, 3), new Shape(2, 2), new Shape(1, 1)))
                        .add(Networks.flatten())
                        .add(Networks.linear(3));
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, new Shape(3, 2, 16, 16), 43);
            Loss loss = new SoftmaxCrossEntropyLoss();
            for (int call = 0; call < 3; call++) {
                Shape shape = new Shape(call == 2 ? 2 : 3, 2, 16, 16);
                NDArray input = Fixtures.normal(manager, 44 + call, shape);
                NDArray labels = Fixtures.classes(manager, Math.toIntExact(shape.get(0)), 3);
                long recognized = PoolingLayer.averageWindowCount();
                NDArray[] actual = Fixtures.structured(model, loss, input, labels, false);
                Assert.assertTrue(PoolingLayer.averageWindowCount() > recognized, "call " + call);
                NDList expected = Fixtures.reference(model, loss, input, labels);
                Fixtures.assertMatches(actual, expected, Fixtures.tolerance());
            }
        }
    }

    /** One spatial axis: a window of three, stride two, padding one. */
    @Test
    public void overlappingAveragePooling1dMatchesExactDiagonal() {
        Block model =
                new SequentialBlock()
                        .add(Conv1d.builder().setKernelShape(new Shape(2)).setFilters(3).build())
                        .add(Activation.tanhBlock())
                        .add(Pool.avgPool1dBlock(new Shape(3), new Shape(2), new Shape(1)))
                        .add(Networks.flatten())
                        .add(Networks.linear(3));
        long recognized = PoolingLayer.averageWindowCount();
        check(model, new Shape(3, 2, 12));
        Assert.assertTrue(PoolingLayer.averageWindowCount() > recognized, "not recognized");
    }

    /**
     * Three spatial axes with their own window, stride and padding, and a smooth dense layer after
     * them: its dense columns pass the pooling by one product per axis.
     */
    @Test
    public void overlappingAveragePooling3dMatchesExactDiagonal() {
        Block model =
                new SequentialBlock()
                        .add(
                                Conv3d.builder()
                                        .setKernelShape(new Shape(2, 2, 2))
                                        .setFilters(2)
                                        .build())
                        .add(Activation.tanhBlock())
                        .add(
                                Pool.avgPool3dBlock(
                                        new Shape(3, 2, 3), new Shape(2, 1, 2), new Shape(1, 0, 1)))
                        .add(Networks.flatten())
                        .add(Networks.linear(4))
                        .add(Activation.sigmoidBlock())
                        .add(Networks.linear(3));
        long recognized = PoolingLayer.averageWindowCount();
        check(model, new Shape(3, 2, 6, 6, 7));
        Assert.assertTrue(PoolingLayer.averageWindowCount() > recognized, "not recognized");
    }

    /**
     * Average pooling that divides by the window's part inside the input is not a constant kernel:
     * the check against the engine's own product refuses it, and autograd keeps the result exact.
     * (DJL 0.36's PyTorch engine ignores {@code countIncludePad = false} and divides by the whole
     * window; there the kernel is constant and is recognized.)
     */
    @Test
    public void averagePoolingWithoutPaddingInTheCountStaysExact() {
        Shape kernel = new Shape(3, 3);
        Shape stride = new Shape(2, 2);
        Shape padding = new Shape(1, 1);
        Block model =
                new SequentialBlock()
                        .add(conv2d(new Shape(2, 2), 3).build())
                        .add(Activation.tanhBlock())
                        .add(Pool.avgPool2dBlock(kernel, stride, padding, false, false))
                        .add(Networks.flatten())
                        .add(Networks.linear(3));
        boolean constantKernel;
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray ones = manager.ones(new Shape(1, 1, 8, 8));
            NDArray averages = Pool.avgPool2d(ones, kernel, stride, padding, false, false);
            constantKernel = averages.min().getFloat() < 0.99f;
        }
        long recognized = PoolingLayer.averageWindowCount();
        check(model, new Shape(3, 2, 9, 9));
        Assert.assertEquals(
                PoolingLayer.averageWindowCount() > recognized,
                constantKernel,
                "recognized where the engine's kernel is constant");
    }

    /**
     * The weight rule of dense columns takes large outputs (a strided, dilated, grouped Conv2d with
     * 25 output positions, a depthwise one with 4) through every column's product with the unfolded
     * input, and small ones (a grouped Conv2d with one output position) through the pairs of
     * positions; both give the exact diagonal, also when a budget of one byte runs every sample and
     * column alone.
     */
    @Test
    public void weightRuleIsExactOnLargeAndSmallOutputs() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(3, 4, 9, 9);
            Block model = Fixtures.initialize(largeAndSmallOutputs(), manager, shape, 43);
            NDArray input = Fixtures.normal(manager, 44, shape);
            NDArray labels = Fixtures.classes(manager, 3, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDList expected = Fixtures.reference(model, loss, input, labels);
            Fixtures.assertMatches(
                    Fixtures.structured(model, loss, input, labels, true),
                    expected,
                    Fixtures.tolerance());
            Fixtures.assertMatches(
                    compute(model, loss, input, labels, false, 1), expected, Fixtures.tolerance());
        }
    }

    /**
     * On the network above, each sample's diagonal is {@code 1/N} times the exact diagonal of a
     * batch holding that sample alone, on both routes of the weight rule.
     */
    @Test
    public void weightRuleIsExactPerSampleOnLargeAndSmallOutputs() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(3, 4, 9, 9);
            Block model = Fixtures.initialize(largeAndSmallOutputs(), manager, shape, 45);
            NDArray input = Fixtures.normal(manager, 46, shape);
            NDArray labels = Fixtures.classes(manager, 3, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] perSample = compute(model, loss, input, labels, true, 256L << 20);
            for (int n = 0; n < 3; n++) {
                NDIndex sample = new NDIndex("{}:{}", n, n + 1);
                NDList single =
                        Fixtures.reference(model, loss, input.get(sample), labels.get(sample));
                NDArray[] actual = new NDArray[perSample.length];
                for (int p = 0; p < perSample.length; p++) {
                    actual[p] = perSample[p].get(n).mul(3);
                }
                Fixtures.assertMatches(actual, single, Fixtures.tolerance());
            }
        }
    }

    private static Block largeAndSmallOutputs() {
        return new SequentialBlock()
                .add(
                        conv2d(new Shape(3, 3), 4)
                                .optStride(new Shape(2, 2))
                                .optPadding(new Shape(2, 2))
                                .optDilation(new Shape(2, 2))
                                .optGroups(2)
                                .build())
                .add(Activation.reluBlock())
                .add(conv2d(new Shape(3, 3), 4).optStride(new Shape(2, 2)).optGroups(4).build())
                .add(Activation.reluBlock())
                .add(conv2d(new Shape(2, 2), 4).optGroups(2).build())
                .add(Activation.reluBlock())
                .add(Networks.flatten())
                .add(Networks.linear(3));
    }

    private static NDArray[] compute(
            Block model,
            Loss loss,
            NDArray input,
            NDArray labels,
            boolean perSample,
            long budgetBytes) {
        return StructuredDiagonal.compute(
                model,
                loss,
                new NDList(input),
                new NDList(labels),
                true,
                perSample,
                false,
                budgetBytes,
                input.getManager());
    }

    private static Conv2d.Builder conv2d(Shape kernel, int filters) {
        return Conv2d.builder().setKernelShape(kernel).setFilters(filters);
    }

    private static void check(Block block, Shape inputShape) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, inputShape, 41);
            NDArray input = Fixtures.normal(manager, 42, inputShape);
            NDArray labels = Fixtures.classes(manager, Math.toIntExact(inputShape.get(0)), 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] actual = Fixtures.structured(model, loss, input, labels, false);
            NDList expected = Fixtures.reference(model, loss, input, labels);
            Fixtures.assertMatches(actual, expected, Fixtures.tolerance());
        }
    }
}
