package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import ai.djl.util.PairList;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.secorder.core.Curvature;
import org.secorder.core.HessianDiagonal;
import org.secorder.structured.BlockDerivatives;
import org.secorder.structured.BlockRules;
import org.testng.Assert;
import org.testng.SkipException;
import org.testng.annotations.Test;

/**
 * The rule table's public side: rules for a user's own block class, the list of unsupported blocks,
 * the warning of a slow fallback, and the curvature option.
 */
public class RuleTableTest {

    @Test
    public void registeredRuleForOwnBlockMatchesExactDiagonal() {
        Block block = scaledNetwork();
        Loss loss = new SoftmaxCrossEntropyLoss();
        Assert.assertFalse(
                BlockRules.supportedBlocks()
                        .contains("Scale (y = s * x), a test block (registered)"));
        BlockRules.register(Scale.class, "Scale (y = s * x), a test block", ScaleDerivatives::new);
        try (NDManager manager = NDManager.newBaseManager()) {
            Assert.assertTrue(
                    BlockRules.supportedBlocks()
                            .contains("Scale (y = s * x), a test block (registered)"));
            Block model = Fixtures.initialize(block, manager, Networks.vectors(), 81);
            NDArray input = Fixtures.normal(manager, 82, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            Assert.assertEquals(
                    HessianDiagonal.builder().build().resolve(model, loss),
                    HessianDiagonal.Method.STRUCTURED);
            NDArray[] actual = Fixtures.structured(model, loss, input, labels, false);
            NDList expected = Fixtures.reference(model, loss, input, labels);
            Fixtures.assertMatches(actual, expected, Fixtures.tolerance());
        } finally {
            Assert.assertTrue(BlockRules.unregister(Scale.class));
        }
        Assert.assertFalse(BlockRules.unregister(Scale.class));
    }

    @Test
    public void subclassComputingAnotherFunctionIsRefused() {
        if (Fixtures.isPyTorch()) {
            throw new SkipException(
                    "PyTorch differentiates twice: the generic rule takes over such a block"
                            + " (subclassComputingAnotherFunctionFallsBackToGenericRule)");
        }
        Block model =
                new SequentialBlock()
                        .add(new DoubledLinear(Linear.builder().setUnits(4)))
                        .add(Activation.tanhBlock())
                        .add(Networks.linear(3));
        try (NDManager manager = NDManager.newBaseManager()) {
            Fixtures.initialize(model, manager, Networks.vectors(), 87);
            NDArray input = Fixtures.normal(manager, 88, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
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
            Assert.assertTrue(
                    e.getMessage().contains("does not compute x W^T + b"), e.getMessage());
            Assert.assertTrue(e.getMessage().contains("DoubledLinear"), e.getMessage());
        }
    }

    @Test
    public void subclassComputingAnotherFunctionFallsBackToGenericRule() {
        if (!Fixtures.isPyTorch()) {
            throw new SkipException(
                    "MXNet differentiates only some operators twice: such a block is refused for"
                            + " the Hessian (subclassComputingAnotherFunctionIsRefused)");
        }
        Block model =
                new SequentialBlock()
                        .add(new DoubledLinear(Linear.builder().setUnits(4)))
                        .add(Activation.tanhBlock())
                        .add(Networks.linear(3));
        try (NDManager manager = NDManager.newBaseManager()) {
            Fixtures.initialize(model, manager, Networks.vectors(), 89);
            NDArray input = Fixtures.normal(manager, 90, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] actual = Fixtures.structured(model, loss, input, labels, false);
            NDList expected = Fixtures.gradientDifferences(model, loss, input, labels, 1e-4);
            Fixtures.assertMatches(actual, expected, 1e-6);
        }
    }

    @Test
    public void unsupportedBlocksNamesEveryUnsupportedBlock() {
        Block model =
                new SequentialBlock()
                        .add(Networks.linear(4))
                        .add(new LambdaBlock(x -> new NDList(x.head().cos()), "cosine"))
                        .add(Networks.sine())
                        .add(Networks.linear(3));
        List<String> unsupported =
                HessianDiagonal.builder()
                        .build()
                        .unsupportedBlocks(model, new SoftmaxCrossEntropyLoss());
        Assert.assertEquals(unsupported.size(), 2, unsupported.toString());
        Assert.assertTrue(unsupported.get(0).contains("'cosine'"), unsupported.get(0));
        Assert.assertTrue(unsupported.get(1).contains("'sine'"), unsupported.get(1));
    }

    @Test
    public void supportedModelHasNoUnsupportedBlocks() {
        Block model = Networks.mlp(Activation.reluBlock(), 3);
        Assert.assertEquals(
                HessianDiagonal.builder()
                        .build()
                        .unsupportedBlocks(model, new SoftmaxCrossEntropyLoss()),
                List.of());
    }

    @Test
    public void autoWarnsOnceWhenFallingBackToDoubleBackward() {
        Block block =
                new SequentialBlock()
                        .add(Networks.linear(4))
                        .add(Networks.sine())
                        .add(Networks.linear(3));
        PrintStream original = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, Networks.vectors(), 83);
            NDList input = new NDList(Fixtures.normal(manager, 84, Networks.vectors()));
            NDList labels = new NDList(Fixtures.classes(manager, 5, 3));
            System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
            try {
                HessianDiagonal.builder()
                        .build()
                        .compute(model, new SoftmaxCrossEntropyLoss(), input, labels);
            } catch (UnsupportedOperationException e) {
                // MXNet has no double backward: the warning comes before the attempt
                Assert.assertFalse(Fixtures.isPyTorch(), e.getMessage());
            } finally {
                System.setErr(original);
            }
        }
        String log = captured.toString(StandardCharsets.UTF_8);
        String[] lines = log.split("\n");
        int warnings = 0;
        for (String line : lines) {
            if (line.contains("by double backward")) {
                warnings++;
                // 4*4+4 + 3*4+3 parameter elements
                Assert.assertTrue(line.contains(" 35 products"), line);
                Assert.assertTrue(line.contains("model/02LambdaBlock (LambdaBlock 'sine')"), line);
            }
        }
        Assert.assertEquals(warnings, 1, log);
    }

    @Test
    public void ggnCurvatureEqualsGaussNewtonReference() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model =
                    Fixtures.initialize(
                            Networks.mlp(Activation.tanhBlock(), 3),
                            manager,
                            Networks.vectors(),
                            85);
            NDArray input = Fixtures.normal(manager, 86, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            NDList ggn =
                    HessianDiagonal.builder()
                            .optCurvature(Curvature.GGN)
                            .build()
                            .compute(
                                    model,
                                    new SoftmaxCrossEntropyLoss(),
                                    new NDList(input),
                                    new NDList(labels));
            Fixtures.assertMatches(
                    ggn.toArray(new NDArray[0]),
                    GaussNewtonReference.softmaxCrossEntropy(model, input),
                    1e-6);
        }
    }

    @Test
    public void ggnCurvatureNeedsTheStructuredMethod() {
        IllegalArgumentException e =
                Assert.expectThrows(
                        IllegalArgumentException.class,
                        () ->
                                HessianDiagonal.builder()
                                        .optMethod(HessianDiagonal.Method.AUTOGRAD)
                                        .optCurvature(Curvature.GGN)
                                        .build());
        Assert.assertTrue(e.getMessage().startsWith("curvature"), e.getMessage());
    }

    @Test
    public void autoWithGgnCurvatureResolvesToStructured() {
        Block model = Networks.mlp(Activation.tanhBlock(), 3);
        Assert.assertEquals(
                HessianDiagonal.builder()
                        .optCurvature(Curvature.GGN)
                        .build()
                        .resolve(model, new SoftmaxCrossEntropyLoss()),
                HessianDiagonal.Method.STRUCTURED);
    }

    private static Block scaledNetwork() {
        return new SequentialBlock()
                .add(Networks.linear(4))
                .add(new Scale())
                .add(Activation.tanhBlock())
                .add(Networks.linear(3));
    }

    /** A subclass of {@code Linear} that computes twice what its superclass does. */
    private static final class DoubledLinear extends Linear {

        DoubledLinear(Linear.Builder builder) {
            super(builder);
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore parameterStore,
                NDList inputs,
                boolean training,
                PairList<String, Object> params) {
            NDArray output = super.forwardInternal(parameterStore, inputs, training, params).head();
            return new NDList(output.mul(2));
        }
    }

    /** A block of a user's own: {@code y = s * x} with a learned vector {@code s}. */
    public static final class Scale extends AbstractBlock {

        private final Parameter scale;

        /** Creates the block. */
        public Scale() {
            scale =
                    addParameter(
                            Parameter.builder()
                                    .setName("scale")
                                    .setType(Parameter.Type.GAMMA)
                                    .build());
        }

        /** {@inheritDoc} */
        @Override
        protected NDList forwardInternal(
                ParameterStore parameterStore,
                NDList inputs,
                boolean training,
                PairList<String, Object> params) {
            NDArray x = inputs.singletonOrThrow();
            return new NDList(x.mul(parameterStore.getValue(scale, x.getDevice(), training)));
        }

        /** {@inheritDoc} */
        @Override
        public void prepare(Shape[] inputShapes) {
            scale.setShape(inputShapes[0].slice(1));
        }

        /** {@inheritDoc} */
        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return inputShapes;
        }

        Parameter getScale() {
            return scale;
        }
    }

    /** The derivatives of {@link Scale}: {@code J_x = diag(s)}, {@code J_s = diag(x)}. */
    private static final class ScaleDerivatives implements BlockDerivatives {

        private final Scale block;
        private NDArray input;

        ScaleDerivatives(Scale block) {
            this.block = block;
        }

        @Override
        public NDArray forward(ParameterStore store, NDArray x, boolean training) {
            input = x;
            return block.forward(store, new NDList(x), training).singletonOrThrow();
        }

        @Override
        public NDArray transposedJacobian(NDArray rows, long k) {
            return rows.mul(block.getScale().getArray());
        }

        @Override
        public List<Parameter> getParameters() {
            return List.of(block.getScale());
        }

        @Override
        public NDList parameterProducts(NDArray rows, long k) {
            NDArray repeated = k == 1 ? input : input.repeat(0, k);
            return new NDList(rows.mul(repeated.toType(DataType.FLOAT64, false)));
        }
    }
}
