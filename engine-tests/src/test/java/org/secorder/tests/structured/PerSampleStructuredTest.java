package org.secorder.tests.structured;

import ai.djl.basicmodelzoo.cv.classification.LeNet;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Blocks;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import org.secorder.structured.StructuredDiagonal;
import org.secorder.structured.internal.propagation.TangentLayer;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * The per-sample option gives one diagonal per example: each is the diagonal of that example's
 * share of the batch loss, and they sum to the batch diagonal.
 */
public class PerSampleStructuredTest {

    private static final long BUDGET = 256L << 20;

    /** Per-sample diagonals of a convolutional residual network sum to the batch diagonal. */
    @Test
    public void perSampleDiagonalsSumToBatchDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(3, 2, 5, 5);
            Block model = Fixtures.initialize(convolutional(), manager, shape, 81);
            NDArray input = Fixtures.normal(manager, 82, shape);
            NDArray labels = Fixtures.classes(manager, 3, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] perSample = compute(model, loss, input, labels, true);
            NDArray[] batch = compute(model, loss, input, labels, false);
            NDArray[] summed = new NDArray[perSample.length];
            for (int p = 0; p < perSample.length; p++) {
                Assert.assertEquals(perSample[p].getShape().get(0), 3, "leading batch axis");
                summed[p] = perSample[p].sum(new int[] {0});
            }
            Fixtures.assertMatches(summed, batch, 1e-12);
        }
    }

    /**
     * On the forward route (DJL's {@code LeNet}, whose convolutions take it), per-sample diagonals
     * sum to the batch diagonal too: the tangents run in blocks of samples.
     */
    @Test
    public void perSampleDiagonalsOnTheForwardRouteSumToBatchDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(4, 1, 12, 12);
            Block leNet =
                    LeNet.builder().setNumChannels(new int[] {3, 4, 8, 6}).setOutSize(4).build();
            Block model = Fixtures.initialize(leNet, manager, shape, 85);
            NDArray input = Fixtures.normal(manager, 86, shape);
            NDArray labels = Fixtures.classes(manager, 4, 4);
            Loss loss = new SoftmaxCrossEntropyLoss();
            long routes = TangentLayer.forwardRouteCount();
            NDArray[] perSample = compute(model, loss, input, labels, true);
            Assert.assertTrue(TangentLayer.forwardRouteCount() > routes, "the forward route");
            NDArray[] batch = compute(model, loss, input, labels, false);
            NDArray[] summed = new NDArray[perSample.length];
            for (int p = 0; p < perSample.length; p++) {
                Assert.assertEquals(perSample[p].getShape().get(0), 4, "leading batch axis");
                summed[p] = perSample[p].sum(new int[] {0});
            }
            Fixtures.assertMatches(summed, batch, 1e-12);
        }
    }

    /**
     * Sample {@code n}'s diagonal is {@code 1/N} times the exact diagonal of the loss of a batch
     * holding sample {@code n} alone, as DJL's mean reduction has it.
     */
    @Test
    public void perSampleDiagonalEqualsScaledSingleSampleDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model =
                    Fixtures.initialize(
                            Networks.mlp(Activation.sigmoidBlock(), 3),
                            manager,
                            Networks.vectors(),
                            83);
            NDArray input = Fixtures.normal(manager, 84, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] perSample = compute(model, loss, input, labels, true);
            for (int n = 0; n < 5; n++) {
                NDIndex sample = new NDIndex("{}:{}", n, n + 1);
                NDList single =
                        Fixtures.reference(model, loss, input.get(sample), labels.get(sample));
                NDArray[] actual = new NDArray[perSample.length];
                for (int p = 0; p < perSample.length; p++) {
                    actual[p] = perSample[p].get(n).mul(5);
                }
                Fixtures.assertMatches(actual, single, Fixtures.tolerance());
            }
        }
    }

    private static Block convolutional() {
        Block branch =
                new SequentialBlock()
                        .add(Activation.tanhBlock())
                        .add(
                                Conv2d.builder()
                                        .setKernelShape(new Shape(3, 3))
                                        .setFilters(3)
                                        .optPadding(new Shape(1, 1))
                                        .build());
        return new SequentialBlock()
                .add(Conv2d.builder().setKernelShape(new Shape(2, 2)).setFilters(3).build())
                .add(Networks.sum(branch, Blocks.identityBlock()))
                .add(Activation.softPlusBlock())
                .add(Pool.maxPool2dBlock(new Shape(2, 2)))
                .add(Networks.flatten())
                .add(Networks.linear(3));
    }

    private static NDArray[] compute(
            Block model, Loss loss, NDArray input, NDArray labels, boolean perSample) {
        return StructuredDiagonal.compute(
                model,
                loss,
                new NDList(input),
                new NDList(labels),
                false,
                perSample,
                false,
                BUDGET,
                input.getManager());
    }
}
