package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.norm.BatchNorm;
import ai.djl.nn.norm.Dropout;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import org.testng.annotations.Test;

/**
 * STRUCTURED equals the exact Hessian diagonal through {@code BatchNorm} and {@code Dropout} in
 * inference mode.
 *
 * <p>On MXNet the ground truth comes from loss values alone: MXNet's batch-norm backward in
 * inference mode returns the input gradient of training mode (batch statistics), so differences of
 * its gradients are wrong for every parameter below a batch normalization.
 */
public class NormalizationStructuredTest {

    /** Batch normalization of features and dropout between linear layers. */
    @Test
    public void batchNormOnFeaturesMatchesExactDiagonal() {
        Block model =
                new SequentialBlock()
                        .add(Networks.linear(6))
                        .add(BatchNorm.builder().build())
                        .add(Activation.tanhBlock())
                        .add(Dropout.builder().optRate(0.5f).build())
                        .add(Networks.linear(3));
        check(model, Networks.vectors());
    }

    /** Batch normalization of convolution channels. */
    @Test
    public void batchNormOnChannelsMatchesExactDiagonal() {
        Block model =
                new SequentialBlock()
                        .add(Conv2d.builder().setKernelShape(new Shape(2, 2)).setFilters(3).build())
                        .add(BatchNorm.builder().build())
                        .add(Activation.softPlusBlock())
                        .add(Pool.avgPool2dBlock(new Shape(2, 2)))
                        .add(Networks.flatten())
                        .add(Networks.linear(3));
        check(model, new Shape(3, 2, 5, 5));
    }

    private static void check(Block block, Shape inputShape) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, inputShape, 61);
            NDArray input = Fixtures.normal(manager, 62, inputShape);
            NDArray labels = Fixtures.classes(manager, Math.toIntExact(inputShape.get(0)), 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] actual = Fixtures.structured(model, loss, input, labels, false);
            NDList expected =
                    Fixtures.isPyTorch()
                            ? Fixtures.reference(model, loss, input, labels)
                            : Fixtures.valueDifferences(model, loss, input, labels);
            Fixtures.assertMatches(actual, expected, Fixtures.tolerance());
        }
    }
}
