package org.secorder.tests.structured;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.ParallelBlock;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.norm.BatchNorm;
import ai.djl.training.loss.HingeLoss;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SigmoidBinaryCrossEntropyLoss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import java.util.List;
import org.secorder.structured.StructuredDiagonal;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * What is not supported is said before any work, naming the block or loss and listing what is
 * supported; what is supported is reported so.
 */
public class SupportStructuredTest {

    /** A model of supported blocks and a supported loss are reported as supported. */
    @Test
    public void supportedModelAndLossAreReportedSupported() {
        Block model = Networks.mlp(Activation.geluBlock(), 3);
        Assert.assertTrue(StructuredDiagonal.supports(model, new SoftmaxCrossEntropyLoss()));
    }

    /** A model with a lambda that computes no known function is reported as unsupported. */
    @Test
    public void unsupportedBlockIsReportedUnsupported() {
        Block model = new SequentialBlock().add(Networks.linear(4)).add(Networks.sine());
        Assert.assertFalse(StructuredDiagonal.supports(model, new SoftmaxCrossEntropyLoss()));
    }

    /** The error for an unsupported block names its path and kind and lists the supported ones. */
    @Test
    public void unsupportedBlockErrorNamesBlockAndListsSupportedBlocks() {
        Block model =
                new SequentialBlock()
                        .add(Networks.linear(4))
                        .add(Networks.sine())
                        .add(Networks.linear(3));
        String message = failure(model, new SoftmaxCrossEntropyLoss(), false);
        Assert.assertTrue(message.contains("model/02LambdaBlock (LambdaBlock 'sine')"), message);
        Assert.assertTrue(message.contains("Supported blocks: SequentialBlock"), message);
    }

    /** The error for an unsupported loss names it and lists the supported losses. */
    @Test
    public void unsupportedLossErrorNamesLossAndListsSupportedLosses() {
        String message = failure(Networks.mlp(Activation.reluBlock(), 3), new HingeLoss(), false);
        Assert.assertTrue(message.contains("HingeLoss"), message);
        Assert.assertTrue(message.contains("Supported losses: L2Loss"), message);
    }

    /** Sigmoid cross-entropy on probabilities is refused with the reason. */
    @Test
    public void sigmoidCrossEntropyOnProbabilitiesIsUnsupported() {
        Loss loss = new SigmoidBinaryCrossEntropyLoss("bce", 1, true);
        String message = failure(Networks.mlp(Activation.reluBlock(), 3), loss, false);
        Assert.assertTrue(message.contains("fromSigmoid=true"), message);
    }

    /** A parallel block that multiplies its branches is refused, naming what joins are known. */
    @Test
    public void multiplyingParallelBlockIsUnsupported() {
        Block product =
                new ParallelBlock(
                        list ->
                                new NDList(
                                        list.get(0)
                                                .singletonOrThrow()
                                                .mul(list.get(1).singletonOrThrow())),
                        List.of(Networks.linear(2), Networks.linear(2)));
        Block model = new SequentialBlock().add(product).add(Networks.linear(3));
        String message = failure(model, new SoftmaxCrossEntropyLoss(), false);
        Assert.assertTrue(message.contains("its join is not a sum of its branches"), message);
    }

    /** Batch normalization in training mode is refused, naming the mode. */
    @Test
    public void batchNormInTrainingModeIsUnsupported() {
        Block model =
                new SequentialBlock()
                        .add(Networks.linear(4))
                        .add(BatchNorm.builder().build())
                        .add(Networks.linear(3));
        String message = failure(model, new SoftmaxCrossEntropyLoss(), true);
        Assert.assertTrue(message.contains("training mode"), message);
    }

    /** An unnamed lambda that computes no known activation is refused. */
    @Test
    public void unknownLambdaIsUnsupported() {
        Block model = Networks.mlp(new LambdaBlock(list -> new NDList(list.head().square())), 3);
        String message = failure(model, new SoftmaxCrossEntropyLoss(), false);
        Assert.assertTrue(message.contains("computes no known activation"), message);
        Assert.assertTrue(message.contains("does not only move or select values"), message);
    }

    /** A lambda named like DJL's tanh block that computes another function is refused. */
    @Test
    public void misnamedActivationIsUnsupported() {
        Block model = Networks.mlp(new LambdaBlock(Activation::sigmoid, "Tanh"), 3);
        String message = failure(model, new SoftmaxCrossEntropyLoss(), false);
        Assert.assertTrue(message.contains("computes another function"), message);
    }

    private static String failure(Block block, Loss loss, boolean training) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, Networks.vectors(), 101);
            NDList input = new NDList(Fixtures.normal(manager, 102, Networks.vectors()));
            NDList labels = new NDList(Fixtures.classes(manager, 5, 3));
            try {
                StructuredDiagonal.compute(
                        model, loss, input, labels, false, false, training, 1L << 20, manager);
            } catch (UnsupportedOperationException e) {
                return e.getMessage();
            }
            throw new AssertionError("no UnsupportedOperationException");
        }
    }
}
