package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Blocks;
import ai.djl.nn.SequentialBlock;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import org.secorder.structured.MemoryMeter;
import org.secorder.structured.StructuredDiagonal;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * Factor columns are processed in chunks under the memory budget: the result does not depend on the
 * chunking, and the columns held at once stay within the budget.
 */
public class ChunkingStructuredTest {

    /**
     * A budget of one byte, which runs every sample and every column on its own, gives the same
     * diagonal as an ample budget, and the exact one.
     */
    @Test
    public void singleColumnChunksGiveExactDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(deepModel(), manager, Networks.vectors(), 91);
            NDArray input = Fixtures.normal(manager, 92, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            MemoryMeter tiny = new MemoryMeter(1);
            NDArray[] chunked = compute(model, loss, input, labels, tiny);
            NDArray[] whole = compute(model, loss, input, labels, new MemoryMeter(256L << 20));
            Fixtures.assertMatches(chunked, whole, 1e-12);
            NDList expected = Fixtures.reference(model, loss, input, labels);
            Fixtures.assertMatches(chunked, expected, Fixtures.tolerance());
        }
    }

    /**
     * Later calls on a model that runs in slices take its column memory per sample from the first
     * call and run only the slices forward; with new values and another batch size they stay exact.
     */
    @Test
    public void laterSlicedCallsStayExact() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(deepModel(), manager, Networks.vectors(), 95);
            Loss loss = new SoftmaxCrossEntropyLoss();
            for (int call = 0; call < 3; call++) {
                Shape shape = new Shape(call == 2 ? 3 : 5, Networks.vectors().get(1));
                NDArray input = Fixtures.normal(manager, 96 + call, shape);
                NDArray labels = Fixtures.classes(manager, Math.toIntExact(shape.get(0)), 3);
                NDArray[] sliced = compute(model, loss, input, labels, new MemoryMeter(1));
                NDList expected = Fixtures.reference(model, loss, input, labels);
                Fixtures.assertMatches(sliced, expected, Fixtures.tolerance());
            }
        }
    }

    /** With a budget that holds a few columns, the peak column memory stays within it. */
    @Test
    public void peakColumnMemoryStaysWithinBudget() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(16, 24);
            Block model =
                    new SequentialBlock()
                            .add(Networks.linear(40))
                            .add(Activation.tanhBlock())
                            .add(Networks.linear(40))
                            .add(Activation.tanhBlock())
                            .add(Networks.linear(40))
                            .add(Activation.tanhBlock())
                            .add(Networks.linear(10));
            Fixtures.initialize(model, manager, shape, 93);
            NDArray input = Fixtures.normal(manager, 94, shape);
            NDArray labels = Fixtures.classes(manager, 16, 10);
            Loss loss = new SoftmaxCrossEntropyLoss();
            long budget = 16 * 40 * 8 * 3 * 8;
            MemoryMeter meter = new MemoryMeter(budget);
            NDArray[] chunked = compute(model, loss, input, labels, meter);
            Assert.assertTrue(
                    meter.getPeakBytes() <= budget,
                    "peak " + meter.getPeakBytes() + " bytes over the budget " + budget);
            MemoryMeter unlimited = new MemoryMeter(256L << 20);
            NDArray[] whole = compute(model, loss, input, labels, unlimited);
            Assert.assertTrue(
                    unlimited.getPeakBytes() > budget,
                    "without the budget the columns take "
                            + unlimited.getPeakBytes()
                            + " bytes, so the budget made a difference");
            Fixtures.assertMatches(chunked, whole, 1e-12);
        }
    }

    /** Per-sample diagonals are the same whether samples and columns are chunked or not. */
    @Test
    public void perSampleDiagonalsDoNotDependOnChunking() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(deepModel(), manager, Networks.vectors(), 95);
            NDArray input = Fixtures.normal(manager, 96, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] chunked = perSample(model, loss, input, labels, new MemoryMeter(1));
            NDArray[] whole = perSample(model, loss, input, labels, new MemoryMeter(256L << 20));
            Fixtures.assertMatches(chunked, whole, 1e-12);
        }
    }

    private static Block deepModel() {
        Block branch =
                new SequentialBlock()
                        .add(Activation.tanhBlock())
                        .add(Networks.linear(6))
                        .add(Activation.sigmoidBlock())
                        .add(Networks.linear(6));
        return new SequentialBlock()
                .add(Networks.linear(6))
                .add(Activation.softPlusBlock())
                .add(Networks.linear(6))
                .add(Networks.sum(branch, Blocks.identityBlock()))
                .add(Activation.tanhBlock())
                .add(Networks.linear(3));
    }

    private static NDArray[] perSample(
            Block model, Loss loss, NDArray input, NDArray labels, MemoryMeter meter) {
        return StructuredDiagonal.compute(
                model,
                loss,
                new NDList(input),
                new NDList(labels),
                false,
                true,
                false,
                meter,
                input.getManager());
    }

    private static NDArray[] compute(
            Block model, Loss loss, NDArray input, NDArray labels, MemoryMeter meter) {
        return StructuredDiagonal.compute(
                model,
                loss,
                new NDList(input),
                new NDList(labels),
                false,
                false,
                false,
                meter,
                input.getManager());
    }
}
