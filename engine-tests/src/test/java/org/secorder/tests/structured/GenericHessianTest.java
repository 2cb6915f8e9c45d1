package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.recurrent.LSTM;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.secorder.core.HessianDiagonal;
import org.secorder.structured.StructuredDiagonal;
import org.testng.Assert;
import org.testng.SkipException;
import org.testng.annotations.Test;

/**
 * The generic rule for the Hessian: on an engine that differentiates every operator twice
 * (PyTorch), a block without an explicit rule gets its own curvature by double backward, so {@code
 * STRUCTURED} covers it exactly. Checked against float64 central differences of first-order
 * gradients, an independent route. On MXNet such blocks stay refused ({@link GenericRuleTest}).
 */
public class GenericHessianTest {

    /**
     * Central differences of float64 gradients with relative step 1e-4: truncation about 1e-9 of
     * the fourth derivative, rounding about 1e-12 / 1e-4 of the gradient.
     */
    private static final double STEP = 1e-4;

    private static final double TOLERANCE = 1e-6;

    private static final Shape SEQUENCES = new Shape(3, 4, 2);

    @Test
    public void customBlockHessianMatchesGradientDifferences() {
        assertHessianMatchesDifferences(GenericRuleTest.gatedNetwork(), Networks.vectors(), 201);
    }

    @Test
    public void lstmInsideBlockWithoutRuleResolvesToStructuredAndMatchesGradientDifferences() {
        // the LSTM inside a block of the test's own: the generic rule
        Block classifier =
                GenericRuleTest.recurrentClassifier(
                        LSTM.builder().setStateSize(3).setNumLayers(1).build());
        assertHessianMatchesDifferences(classifier, SEQUENCES, 203);
    }

    @Test
    public void customBlockAfterSmoothActivationHessianMatchesGradientDifferences() {
        Block model =
                new SequentialBlock()
                        .add(Networks.linear(5))
                        .add(Activation.tanhBlock())
                        .add(new GenericRuleTest.Gate())
                        .add(Activation.tanhBlock())
                        .add(Networks.linear(3));
        assertHessianMatchesDifferences(model, Networks.vectors(), 204);
    }

    @Test
    public void perSampleHessianOfCustomBlockEqualsEachSampleAlone() {
        requireGenericHessian();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model =
                    Fixtures.initialize(
                            GenericRuleTest.gatedNetwork(), manager, Networks.vectors(), 205);
            NDArray input = Fixtures.normal(manager, 206, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
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
            for (int n = 0; n < 5; n++) {
                NDIndex sample = new NDIndex("{}:{}", n, n + 1);
                NDArray[] actual = new NDArray[perSample.length];
                for (int p = 0; p < actual.length; p++) {
                    actual[p] = perSample[p].get(n);
                }
                // the loss of the batch is the mean over its 5 samples
                NDList alone =
                        Fixtures.gradientDifferences(
                                model, loss, input.get(sample), labels.get(sample), STEP);
                NDList expected = new NDList();
                for (NDArray diagonal : alone) {
                    expected.add(diagonal.div(5));
                }
                Fixtures.assertMatches(actual, expected, TOLERANCE);
            }
        }
    }

    @Test
    public void unsupportedBlocksListsNothingWhereGenericRuleCoversHessian() {
        requireGenericHessian();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model =
                    Fixtures.initialize(
                            GenericRuleTest.gatedNetwork(), manager, Networks.vectors(), 207);
            SoftmaxCrossEntropyLoss loss = new SoftmaxCrossEntropyLoss();
            HessianDiagonal hessian = HessianDiagonal.builder().build();
            Assert.assertEquals(hessian.unsupportedBlocks(model, loss), List.of());
            Assert.assertEquals(hessian.resolve(model, loss), HessianDiagonal.Method.STRUCTURED);
        }
    }

    @Test
    public void genericHessianWarnsOnceNamingSecondDerivativeCost() {
        requireGenericHessian();
        PrintStream original = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model =
                    Fixtures.initialize(
                            GenericRuleTest.gatedNetwork(), manager, Networks.vectors(), 208);
            NDArray input = Fixtures.normal(manager, 209, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
            try {
                Fixtures.structured(model, new SoftmaxCrossEntropyLoss(), input, labels, false);
            } finally {
                System.setErr(original);
            }
        }
        int warnings = 0;
        for (String line : captured.toString(StandardCharsets.UTF_8).split("\n")) {
            if (line.contains("(the generic rule)")) {
                warnings++;
                Assert.assertTrue(line.contains("model/02Gate (Gate)"), line);
                // 6 input features; the 6 x 6 weight, once for the batch
                Assert.assertTrue(line.contains("6 Hessian-vector products"), line);
                Assert.assertTrue(line.contains("36 for its parameters"), line);
            }
        }
        Assert.assertEquals(warnings, 1, captured.toString(StandardCharsets.UTF_8));
    }

    @Test
    public void autoFallsBackToAutogradWhenBlockCouplesSamples() {
        requireGenericHessian();
        Block block =
                new SequentialBlock()
                        .add(Networks.linear(4))
                        .add(new GenericRuleTest.Centering())
                        .add(Activation.tanhBlock())
                        .add(Networks.linear(3));
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, Networks.vectors(), 210);
            NDArray input = Fixtures.normal(manager, 211, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            HessianDiagonal auto = HessianDiagonal.builder().build();
            // the coupling shows only when the generic rule runs the block
            Assert.assertEquals(auto.resolve(model, loss), HessianDiagonal.Method.STRUCTURED);
            NDArray[] actual =
                    auto.compute(model, loss, new NDList(input), new NDList(labels))
                            .toArray(new NDArray[0]);
            NDList expected = Fixtures.gradientDifferences(model, loss, input, labels, STEP);
            Fixtures.assertMatches(actual, expected, TOLERANCE);
        }
    }

    static void assertHessianMatchesDifferences(Block block, Shape shape, long seed) {
        requireGenericHessian();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, shape, seed);
            Fixtures.toFloat64(model);
            NDArray input = Fixtures.normal(manager, seed + 1000, shape);
            NDArray labels = Fixtures.classes(manager, Math.toIntExact(shape.get(0)), 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            HessianDiagonal hessian = HessianDiagonal.builder().build();
            Assert.assertEquals(
                    hessian.resolve(model, loss),
                    HessianDiagonal.Method.STRUCTURED,
                    String.valueOf(hessian.unsupportedBlocks(model, loss)));
            NDArray[] actual =
                    hessian.compute(model, loss, new NDList(input), new NDList(labels))
                            .toArray(new NDArray[0]);
            NDList expected = Fixtures.gradientDifferences(model, loss, input, labels, STEP);
            Fixtures.assertMatches(actual, expected, TOLERANCE);
        }
    }

    static void requireGenericHessian() {
        if (!Fixtures.isPyTorch()) {
            throw new SkipException(
                    "MXNet differentiates only some operators twice: the generic rule covers the"
                            + " GGN only there (GenericRuleTest checks the refusal)");
        }
    }
}
