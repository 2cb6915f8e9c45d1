package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Blocks;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.transformer.ScaledDotProductAttentionBlock;
import ai.djl.nn.transformer.TransformerEncoderBlock;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import ai.djl.util.Pair;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.function.Function;
import org.secorder.core.Curvature;
import org.secorder.core.HessianDiagonal;
import org.secorder.structured.StructuredDiagonal;
import org.testng.Assert;
import org.testng.SkipException;
import org.testng.annotations.Test;

/**
 * The rules of DJL's attention blocks ({@code ScaledDotProductAttentionBlock}, {@code
 * TransformerEncoderBlock}): their hand-written first derivatives give the generalized Gauss-Newton
 * diagonal on every engine, checked against {@link GaussNewtonReference} (Jacobians by float64
 * central differences of forward passes); with PyTorch's double backward for their own curvature,
 * the Hessian, checked against float64 central differences of gradients.
 */
public class AttentionStructuredTest {

    /** Finite-difference Jacobians in float64 are good to about 1e-10 relative. */
    private static final double JACOBIAN_TOLERANCE = 1e-7;

    /** 3 sequences of 4 tokens of 4 features. */
    private static final Shape TOKENS = new Shape(3, 4, 4);

    @Test
    public void encoderClassifierGgnEqualsGaussNewtonReference() {
        // tanh, not GELU: PyTorch's float64 GELU kernel differs from the erf formula by about
        // 1e-7, which differences of forward passes magnify; the Hessian test below covers GELU
        assertGgnMatchesReference(encoderClassifier(Activation::tanh), 301);
    }

    @Test
    public void encoderWithSigmoidFeedForwardGgnEqualsGaussNewtonReference() {
        // not ReLU: differences of forward passes across its kink are no reference
        assertGgnMatchesReference(encoderClassifier(Activation::sigmoid), 302);
    }

    @Test
    public void attentionBlockGgnEqualsGaussNewtonReference() {
        Block model =
                new SequentialBlock()
                        .add(attention())
                        .add(Activation.tanhBlock())
                        .add(Blocks.batchFlattenBlock())
                        .add(Networks.linear(3));
        assertGgnMatchesReference(model, 303);
    }

    @Test
    public void stackedEncodersGgnEqualsGaussNewtonReference() {
        // the second encoder's rows reach the first through the hand-written input products
        Block model =
                new SequentialBlock()
                        .add(new TransformerEncoderBlock(4, 2, 6, 0f, Activation::sigmoid))
                        .add(new TransformerEncoderBlock(4, 2, 5, 0f, Activation::tanh))
                        .add(Blocks.batchFlattenBlock())
                        .add(Networks.linear(3));
        assertGgnMatchesReference(model, 304);
    }

    @Test
    public void encoderClassifierHessianMatchesGradientDifferences() {
        GenericHessianTest.assertHessianMatchesDifferences(
                encoderClassifier(Activation::gelu), TOKENS, 305);
    }

    @Test
    public void attentionBlockHessianMatchesGradientDifferences() {
        Block model =
                new SequentialBlock()
                        .add(attention())
                        .add(Blocks.batchFlattenBlock())
                        .add(Networks.linear(3));
        GenericHessianTest.assertHessianMatchesDifferences(model, TOKENS, 306);
    }

    @Test
    public void encoderGgnTakesItsRuleNotTheGenericOne() {
        PrintStream original = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model =
                    Fixtures.initialize(encoderClassifier(Activation::gelu), manager, TOKENS, 307);
            Fixtures.toFloat64(model);
            NDArray input = Fixtures.normal(manager, 308, TOKENS);
            NDArray labels = Fixtures.classes(manager, 3, 3);
            HessianDiagonal ggn = HessianDiagonal.builder().optCurvature(Curvature.GGN).build();
            Assert.assertEquals(
                    ggn.unsupportedBlocks(model, new SoftmaxCrossEntropyLoss()), List.of());
            System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
            try {
                Fixtures.structured(model, new SoftmaxCrossEntropyLoss(), input, labels, true);
            } finally {
                System.setErr(original);
            }
        }
        Assert.assertFalse(
                captured.toString(StandardCharsets.UTF_8).contains("generic rule"),
                captured.toString(StandardCharsets.UTF_8));
    }

    /**
     * The encoder's rule leaves the caller's parameters, their gradients and names as they were,
     * for the GGN and (where the engine has double backward) the Hessian.
     */
    @Test
    public void encoderLeavesParametersGradientsAndNamesUntouched() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model =
                    Fixtures.initialize(encoderClassifier(Activation::gelu), manager, TOKENS, 312);
            NDArray input = Fixtures.normal(manager, 313, TOKENS);
            NDArray labels = Fixtures.classes(manager, 3, 3);
            SoftmaxCrossEntropyLoss loss = new SoftmaxCrossEntropyLoss();
            // a training step, so that the parameters have gradients to keep (MXNet's collector
            // runs its dropout in training mode only)
            try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                NDList output =
                        model.forward(new ParameterStore(manager, false), new NDList(input), true);
                collector.backward(loss.evaluate(new NDList(labels), output));
            }
            List<double[]> before = SideEffectsStructuredTest.state(model);
            List<String> names = SideEffectsStructuredTest.names(model);
            Fixtures.structured(model, loss, input, labels, true);
            if (Fixtures.isPyTorch()) {
                Fixtures.structured(model, loss, input, labels, false);
            }
            List<double[]> after = SideEffectsStructuredTest.state(model);
            for (int i = 0; i < before.size(); i++) {
                Assert.assertEquals(after.get(i), before.get(i), "state " + i);
            }
            Assert.assertEquals(SideEffectsStructuredTest.names(model), names);
        }
    }

    /**
     * The Hessian warns once that the encoder's own curvature takes double backward, and how much.
     */
    @Test
    public void encoderHessianWarnsOnceNamingDoubleBackwardCost() {
        GenericHessianTest.requireGenericHessian();
        PrintStream original = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model =
                    Fixtures.initialize(encoderClassifier(Activation::gelu), manager, TOKENS, 314);
            NDArray input = Fixtures.normal(manager, 315, TOKENS);
            NDArray labels = Fixtures.classes(manager, 3, 3);
            System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
            try {
                Fixtures.structured(model, new SoftmaxCrossEntropyLoss(), input, labels, false);
            } finally {
                System.setErr(original);
            }
        }
        int warnings = 0;
        for (String line : captured.toString(StandardCharsets.UTF_8).split("\n")) {
            if (line.contains("its own curvature takes double backward")) {
                warnings++;
                Assert.assertTrue(line.contains("TransformerEncoderBlock"), line);
                // 4 tokens of 4 features; 4 projections of 4 x 4 + 4, two norms of 4 + 4, the
                // feed-forward 4 x 6 + 6 and 6 x 4 + 4
                Assert.assertTrue(line.contains("16 Hessian-vector products"), line);
                Assert.assertTrue(line.contains("154 for its parameters"), line);
            }
        }
        Assert.assertEquals(warnings, 1, captured.toString(StandardCharsets.UTF_8));
    }

    @Test
    public void encoderInTrainingModeIsRefusedNamingBatchNorm() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model =
                    Fixtures.initialize(encoderClassifier(Activation::gelu), manager, TOKENS, 309);
            List<String> unsupported =
                    StructuredDiagonal.unsupportedBlocks(
                            model, new SoftmaxCrossEntropyLoss(), true, true);
            Assert.assertEquals(unsupported.size(), 1, String.valueOf(unsupported));
            Assert.assertTrue(
                    unsupported.get(0).contains("TransformerEncoderBlock"), unsupported.get(0));
            Assert.assertTrue(unsupported.get(0).contains("BatchNorm"), unsupported.get(0));
            Assert.assertTrue(unsupported.get(0).contains("inference mode"), unsupported.get(0));
        }
    }

    @Test
    public void encoderHessianWithoutDoubleBackwardIsRefusedNamingGgn() {
        if (Fixtures.isPyTorch()) {
            throw new SkipException(
                    "PyTorch differentiates twice, so the Hessian is covered there"
                            + " (encoderClassifierHessianMatchesGradientDifferences)");
        }
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model =
                    Fixtures.initialize(encoderClassifier(Activation::gelu), manager, TOKENS, 310);
            List<String> unsupported =
                    HessianDiagonal.builder()
                            .build()
                            .unsupportedBlocks(model, new SoftmaxCrossEntropyLoss());
            Assert.assertEquals(unsupported.size(), 1, String.valueOf(unsupported));
            Assert.assertTrue(unsupported.get(0).contains("double backward"), unsupported.get(0));
            Assert.assertTrue(unsupported.get(0).contains("Gauss-Newton"), unsupported.get(0));
        }
    }

    /** An encoder (embedding 4, 2 heads, feed-forward 6), flattened, and a linear layer to 3. */
    private static Block encoderClassifier(Function<NDList, NDList> activation) {
        return new SequentialBlock()
                .add(new TransformerEncoderBlock(4, 2, 6, 0f, activation))
                .add(Blocks.batchFlattenBlock())
                .add(Networks.linear(3));
    }

    private static Block attention() {
        return ScaledDotProductAttentionBlock.builder()
                .setEmbeddingSize(4)
                .setHeadCount(2)
                .optAttentionProbsDropoutProb(0f)
                .build();
    }

    private static void assertGgnMatchesReference(Block block, long seed) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, TOKENS, seed);
            Fixtures.toFloat64(model);
            NDArray input = Fixtures.normal(manager, seed + 1000, TOKENS);
            NDArray labels = Fixtures.classes(manager, Math.toIntExact(TOKENS.get(0)), 3);
            NDArray[] ggn =
                    Fixtures.structured(model, new SoftmaxCrossEntropyLoss(), input, labels, true);
            NDList reference = GaussNewtonReference.softmaxCrossEntropy(model, input);
            // the running statistics of the normalizations are not trained: zero diagonals
            NDList expected = new NDList();
            int index = 0;
            for (Pair<String, Parameter> entry : model.getParameters()) {
                NDArray diagonal = reference.get(index++);
                expected.add(entry.getValue().requiresGradient() ? diagonal : diagonal.zerosLike());
            }
            Fixtures.assertMatches(ggn, expected, JACOBIAN_TOLERANCE);
        }
    }
}
