package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.convolutional.Conv1d;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import org.testng.annotations.Test;

/**
 * The transposed Jacobian of a strided convolution, taken one phase of the input positions at a
 * time: a convolution with parameters below it, in a network without activations (so that its GGN
 * is its Hessian), gives the exact diagonal of every parameter below it, for strides 1, 2 and 3,
 * padding, dilation, groups, kernels that miss some phases and inputs that the strides do not
 * divide.
 */
public class StridedTransposeStructuredTest {

    /** Stride 2, padding 1, a 3x3 kernel, on an input that leaves one row of output padding. */
    @Test
    public void stride2WithPaddingIsExact() {
        check(
                conv2d(new Shape(3, 3), 4).optStride(new Shape(2, 2)).optPadding(new Shape(1, 1)),
                new Shape(2, 2, 9, 9));
    }

    /** Stride 3, padding 2, dilation 2, two groups, on an input that stride 3 does not divide. */
    @Test
    public void stride3WithDilationAndGroupsIsExact() {
        check(
                conv2d(new Shape(3, 3), 4)
                        .optStride(new Shape(3, 3))
                        .optPadding(new Shape(2, 2))
                        .optDilation(new Shape(2, 2))
                        .optGroups(2),
                new Shape(2, 2, 10, 11));
    }

    /** Strides 1 and 2 on the two axes, dilation 2 and 1, a depthwise 2x3 kernel. */
    @Test
    public void mixedStridesDepthwiseIsExact() {
        check(
                conv2d(new Shape(2, 3), 4)
                        .optStride(new Shape(1, 2))
                        .optPadding(new Shape(0, 1))
                        .optDilation(new Shape(2, 1))
                        .optGroups(4),
                new Shape(2, 2, 7, 9));
    }

    /** A 1x1 kernel with stride 2 reaches one phase of four; the others get zeros. */
    @Test
    public void pointwiseStride2IsExact() {
        check(conv2d(new Shape(1, 1), 3).optStride(new Shape(2, 2)), new Shape(2, 2, 7, 6));
    }

    /** Conv1d with stride 3 and a kernel of 4 that reaches some phases twice, padding 1. */
    @Test
    public void conv1dStride3IsExact() {
        Block model =
                new SequentialBlock()
                        .add(Conv1d.builder().setKernelShape(new Shape(3)).setFilters(4).build())
                        .add(
                                Conv1d.builder()
                                        .setKernelShape(new Shape(4))
                                        .setFilters(3)
                                        .optStride(new Shape(3))
                                        .optPadding(new Shape(1))
                                        .build())
                        .add(Networks.flatten())
                        .add(Networks.linear(3));
        check(model, new Shape(2, 2, 15));
    }

    private static Conv2d.Builder conv2d(Shape kernel, int filters) {
        return Conv2d.builder().setKernelShape(kernel).setFilters(filters);
    }

    /** The strided convolution after a 2x2 convolution with four filters, then a classifier. */
    private static void check(Conv2d.Builder strided, Shape inputShape) {
        Block model =
                new SequentialBlock()
                        .add(conv2d(new Shape(2, 2), 4).build())
                        .add(strided.build())
                        .add(Networks.flatten())
                        .add(Networks.linear(3));
        check(model, inputShape);
    }

    private static void check(Block block, Shape inputShape) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, inputShape, 61);
            // small inputs keep the softmax away from saturation, where the diagonal is tiny and
            // the reference's own rounding dominates
            NDArray input = Fixtures.normal(manager, 62, inputShape).mul(0.1);
            NDArray labels = Fixtures.classes(manager, Math.toIntExact(inputShape.get(0)), 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            Fixtures.assertMatches(
                    Fixtures.structured(model, loss, input, labels, true),
                    Fixtures.reference(model, loss, input, labels),
                    Fixtures.tolerance());
        }
    }
}
