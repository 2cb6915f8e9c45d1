package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Blocks;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import org.testng.annotations.Test;

/**
 * STRUCTURED equals the exact Hessian diagonal on residual structures: parallel blocks that sum
 * their branches, with identity and projection shortcuts, nested, and with curvature inside a
 * branch.
 */
public class ResidualStructuredTest {

    /** A residual block with an identity shortcut and smooth activations inside the branch. */
    @Test
    public void identityShortcutMatchesExactDiagonal() {
        Block branch =
                new SequentialBlock()
                        .add(Activation.tanhBlock())
                        .add(Networks.linear(4))
                        .add(Activation.sigmoidBlock())
                        .add(Networks.linear(4));
        Block model =
                new SequentialBlock()
                        .add(Networks.linear(4))
                        .add(Networks.sum(branch, Blocks.identityBlock()))
                        .add(Activation.tanhBlock())
                        .add(Networks.linear(3));
        check(model, Networks.vectors());
    }

    /** A residual block whose shortcut is a linear projection. */
    @Test
    public void projectionShortcutMatchesExactDiagonal() {
        Block branch =
                new SequentialBlock()
                        .add(Networks.linear(5))
                        .add(Activation.softPlusBlock())
                        .add(Networks.linear(5));
        Block model =
                new SequentialBlock()
                        .add(Networks.sum(branch, Networks.linear(5)))
                        .add(Activation.tanhBlock())
                        .add(Networks.linear(3));
        check(model, Networks.vectors());
    }

    /** Three branches, one holding a nested residual block. */
    @Test
    public void nestedBranchesMatchExactDiagonal() {
        Block inner =
                Networks.sum(
                        Blocks.identityBlock(),
                        new SequentialBlock()
                                .add(Activation.eluBlock(0.8f))
                                .add(Networks.linear(4)));
        Block outer =
                Networks.sum(
                        new SequentialBlock()
                                .add(Activation.tanhBlock())
                                .add(Networks.linear(4))
                                .add(inner),
                        Networks.linear(4),
                        Blocks.identityBlock());
        Block model =
                new SequentialBlock()
                        .add(Networks.linear(4))
                        .add(outer)
                        .add(Activation.sigmoidBlock())
                        .add(Networks.linear(3));
        check(model, Networks.vectors());
    }

    /** A convolutional residual block with ReLU, as in ResNet, before global average pooling. */
    @Test
    public void convolutionalResidualBlockMatchesExactDiagonal() {
        Block branch = new SequentialBlock().add(conv(3)).add(Activation.reluBlock()).add(conv(3));
        Block model =
                new SequentialBlock()
                        .add(conv(3))
                        .add(Activation.tanhBlock())
                        .add(Networks.sum(branch, Blocks.identityBlock()))
                        .add(Activation.reluBlock())
                        .add(Pool.globalAvgPool2dBlock())
                        .add(Networks.linear(3));
        check(model, new Shape(3, 2, 5, 5));
    }

    private static Block conv(int filters) {
        return Conv2d.builder()
                .setKernelShape(new Shape(3, 3))
                .setFilters(filters)
                .optPadding(new Shape(1, 1))
                .build();
    }

    private static void check(Block block, Shape inputShape) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, inputShape, 51);
            NDArray input = Fixtures.normal(manager, 52, inputShape);
            NDArray labels = Fixtures.classes(manager, Math.toIntExact(inputShape.get(0)), 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] actual = Fixtures.structured(model, loss, input, labels, false);
            NDList expected = Fixtures.reference(model, loss, input, labels);
            Fixtures.assertMatches(actual, expected, Fixtures.tolerance());
        }
    }
}
