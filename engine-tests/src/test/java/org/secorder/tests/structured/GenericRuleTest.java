package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.recurrent.GRU;
import ai.djl.nn.recurrent.LSTM;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import ai.djl.util.PairList;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.secorder.core.Curvature;
import org.secorder.core.HessianDiagonal;
import org.secorder.structured.StructuredDiagonal;
import org.testng.Assert;
import org.testng.SkipException;
import org.testng.annotations.Test;

/**
 * The generic rule: blocks without an explicit rule (DJL's recurrent blocks, a normalization and a
 * gate of the test's own) get the generalized Gauss-Newton diagonal from first-order autograd,
 * checked against {@code sum_n J_n^T H_n J_n} from float64 central differences of forward passes;
 * on an engine without general double backward (MXNet) the Hessian still refuses them.
 */
public class GenericRuleTest {

    /** Finite-difference Jacobians in float64 are good to about 1e-10 relative. */
    private static final double JACOBIAN_TOLERANCE = 1e-7;

    private static final Shape SEQUENCES = new Shape(3, 4, 2);

    @Test
    public void lstmClassifierGgnEqualsGaussNewtonReference() {
        assertGgnMatchesReference(
                recurrentClassifier(LSTM.builder().setStateSize(3).setNumLayers(1).build()),
                SEQUENCES,
                101);
    }

    @Test
    public void gruClassifierGgnEqualsGaussNewtonReference() {
        assertGgnMatchesReference(
                recurrentClassifier(GRU.builder().setStateSize(3).setNumLayers(1).build()),
                SEQUENCES,
                102);
    }

    @Test
    public void normalizationNetworkGgnEqualsGaussNewtonReference() {
        // a normalization without a rule (DJL's LayerNorm has one now: LayerNormStructuredTest)
        Block model =
                new SequentialBlock()
                        .add(Networks.linear(5))
                        .add(new Networks.RmsNorm())
                        .add(Activation.tanhBlock())
                        .add(Networks.linear(3));
        assertGgnMatchesReference(model, Networks.vectors(), 103);
    }

    @Test
    public void customBlockGgnEqualsGaussNewtonReference() {
        assertGgnMatchesReference(gatedNetwork(), Networks.vectors(), 104);
    }

    @Test
    public void perSampleGgnOfCustomBlockEqualsEachSampleAlone() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(gatedNetwork(), manager, Networks.vectors(), 116);
            NDArray input = Fixtures.normal(manager, 117, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            NDArray[] perSample =
                    StructuredDiagonal.compute(
                            model,
                            new SoftmaxCrossEntropyLoss(),
                            new NDList(input),
                            new NDList(labels),
                            true,
                            true,
                            false,
                            HessianDiagonal.DEFAULT_MEMORY_BUDGET,
                            manager);
            for (int n = 0; n < 5; n++) {
                NDArray[] sample = new NDArray[perSample.length];
                for (int p = 0; p < sample.length; p++) {
                    sample[p] = perSample[p].get(n);
                }
                // the loss of the batch is the mean over its 5 samples
                NDList alone =
                        GaussNewtonReference.softmaxCrossEntropy(
                                model, input.get(new NDIndex("{}:{}", n, n + 1)));
                NDList expected = new NDList();
                for (NDArray diagonal : alone) {
                    expected.add(diagonal.div(5));
                }
                Fixtures.assertMatches(sample, expected, JACOBIAN_TOLERANCE);
            }
        }
    }

    @Test
    public void autoWithGgnResolvesToStructuredAndMatchesReference() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(gatedNetwork(), manager, Networks.vectors(), 105);
            NDArray input = Fixtures.normal(manager, 106, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            HessianDiagonal ggn = HessianDiagonal.builder().optCurvature(Curvature.GGN).build();
            SoftmaxCrossEntropyLoss loss = new SoftmaxCrossEntropyLoss();
            Assert.assertEquals(ggn.resolve(model, loss), HessianDiagonal.Method.STRUCTURED);
            NDList actual = ggn.compute(model, loss, new NDList(input), new NDList(labels));
            Fixtures.assertMatches(
                    actual.toArray(new NDArray[0]),
                    GaussNewtonReference.softmaxCrossEntropy(model, input),
                    JACOBIAN_TOLERANCE);
        }
    }

    @Test
    public void unsupportedBlocksListsBlockWithoutRuleForHessianOnly() {
        skipWhereGenericRuleCoversHessian();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(gatedNetwork(), manager, Networks.vectors(), 107);
            SoftmaxCrossEntropyLoss loss = new SoftmaxCrossEntropyLoss();
            List<String> hessian = HessianDiagonal.builder().build().unsupportedBlocks(model, loss);
            Assert.assertEquals(hessian.size(), 1, hessian.toString());
            Assert.assertTrue(hessian.get(0).contains("(Gate)"), hessian.get(0));
            Assert.assertEquals(
                    HessianDiagonal.builder()
                            .optCurvature(Curvature.GGN)
                            .build()
                            .unsupportedBlocks(model, loss),
                    List.of());
        }
    }

    @Test
    public void structuredHessianRefusesBlockWithoutRule() {
        skipWhereGenericRuleCoversHessian();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(gatedNetwork(), manager, Networks.vectors(), 108);
            NDArray input = Fixtures.normal(manager, 109, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            UnsupportedOperationException e =
                    Assert.expectThrows(
                            UnsupportedOperationException.class,
                            () ->
                                    HessianDiagonal.builder()
                                            .optMethod(HessianDiagonal.Method.STRUCTURED)
                                            .build()
                                            .compute(
                                                    model,
                                                    new SoftmaxCrossEntropyLoss(),
                                                    new NDList(input),
                                                    new NDList(labels)));
            Assert.assertTrue(e.getMessage().contains("model/02Gate (Gate)"), e.getMessage());
            Assert.assertTrue(e.getMessage().contains("Curvature.GGN covers it"), e.getMessage());
        }
    }

    @Test
    public void genericRuleWarnsOnceNamingBlockAndCost() {
        PrintStream original = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(gatedNetwork(), manager, Networks.vectors(), 110);
            NDArray input = Fixtures.normal(manager, 111, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
            try {
                Fixtures.structured(model, new SoftmaxCrossEntropyLoss(), input, labels, true);
            } finally {
                System.setErr(original);
            }
        }
        int warnings = 0;
        for (String line : captured.toString(StandardCharsets.UTF_8).split("\n")) {
            if (line.contains("(the generic rule)")) {
                warnings++;
                Assert.assertTrue(line.contains("model/02Gate (Gate)"), line);
                // the gate's 6 x 6 weight, for each of the 5 samples alone
                Assert.assertTrue(line.contains("its 36 parameter elements"), line);
                Assert.assertTrue(line.contains("each of the 5 samples alone"), line);
            }
        }
        Assert.assertEquals(warnings, 1, captured.toString(StandardCharsets.UTF_8));
    }

    @Test
    public void genericRuleRefusesBlockThatCouplesSamples() {
        Block model =
                new SequentialBlock()
                        .add(Networks.linear(4))
                        .add(new Centering())
                        .add(Networks.linear(3));
        try (NDManager manager = NDManager.newBaseManager()) {
            Fixtures.initialize(model, manager, Networks.vectors(), 112);
            NDArray input = Fixtures.normal(manager, 113, Networks.vectors());
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
                                            true));
            Assert.assertTrue(e.getMessage().contains("model/02Centering"), e.getMessage());
            Assert.assertTrue(
                    e.getMessage().contains("differs from that in the batch"), e.getMessage());
        }
    }

    @Test
    public void genericRuleLeavesParametersAndFlagsUnchanged() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(gatedNetwork(), manager, Networks.vectors(), 114);
            NDArray input = Fixtures.normal(manager, 115, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            PairList<String, Parameter> parameters = model.getParameters();
            double[][] before = new double[parameters.size()][];
            boolean[] flags = new boolean[parameters.size()];
            for (int i = 0; i < before.length; i++) {
                before[i] = parameters.valueAt(i).getArray().toDoubleArray();
                flags[i] = parameters.valueAt(i).getArray().hasGradient();
            }
            Fixtures.structured(model, new SoftmaxCrossEntropyLoss(), input, labels, true);
            for (int i = 0; i < before.length; i++) {
                NDArray array = parameters.valueAt(i).getArray();
                Assert.assertEquals(array.toDoubleArray(), before[i], parameters.keyAt(i));
                Assert.assertEquals(array.hasGradient(), flags[i], parameters.keyAt(i));
            }
            Assert.assertFalse(input.hasGradient());
        }
    }

    /** On PyTorch the generic rule covers the Hessian too: {@link GenericHessianTest}. */
    private static void skipWhereGenericRuleCoversHessian() {
        if (Fixtures.isPyTorch()) {
            throw new SkipException(
                    "PyTorch differentiates every operator twice, so the generic rule covers the"
                            + " Hessian there (GenericHessianTest)");
        }
    }

    private static void assertGgnMatchesReference(Block block, Shape shape, long seed) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, shape, seed);
            NDArray input = Fixtures.normal(manager, seed + 1000, shape);
            NDArray labels = Fixtures.classes(manager, Math.toIntExact(shape.get(0)), 3);
            NDArray[] ggn =
                    Fixtures.structured(model, new SoftmaxCrossEntropyLoss(), input, labels, true);
            Fixtures.assertMatches(
                    ggn,
                    GaussNewtonReference.softmaxCrossEntropy(model, input),
                    JACOBIAN_TOLERANCE);
        }
    }

    /**
     * A recurrent block (batch first, state size 3) over the sequence, its last step, and a linear
     * layer to 3 classes; the recurrent block runs inside a block of the test's own, which has no
     * rule, so the generic rule handles it.
     */
    static Block recurrentClassifier(Block recurrent) {
        return new SequentialBlock()
                .add(new RecurrentNetworks.ZeroStates(recurrent))
                .add(new LambdaBlock(list -> new NDList(list.head().get(":, -1, :"))))
                .add(Networks.linear(3));
    }

    /** {@code Linear(6) - Gate - Linear(3)}. */
    static Block gatedNetwork() {
        return new SequentialBlock()
                .add(Networks.linear(6))
                .add(new Gate())
                .add(Networks.linear(3));
    }

    /** A block without a rule that couples samples: it subtracts the batch mean. */
    static final class Centering extends AbstractBlock {

        /** {@inheritDoc} */
        @Override
        protected NDList forwardInternal(
                ParameterStore parameterStore,
                NDList inputs,
                boolean training,
                PairList<String, Object> params) {
            NDArray x = inputs.head();
            return new NDList(x.sub(x.mean(new int[] {0}, true)));
        }

        /** {@inheritDoc} */
        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return inputShapes;
        }
    }

    /** A block without a rule: {@code y = x * tanh(x W)}, smooth and with a parameter. */
    static final class Gate extends AbstractBlock {

        private final Parameter weight;

        Gate() {
            weight =
                    addParameter(
                            Parameter.builder()
                                    .setName("weight")
                                    .setType(Parameter.Type.WEIGHT)
                                    .build());
        }

        /** {@inheritDoc} */
        @Override
        protected NDList forwardInternal(
                ParameterStore parameterStore,
                NDList inputs,
                boolean training,
                PairList<String, Object> params) {
            NDArray x = inputs.head();
            NDArray w = parameterStore.getValue(weight, x.getDevice(), training);
            return new NDList(x.mul(x.matMul(w).tanh()));
        }

        /** {@inheritDoc} */
        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return inputShapes;
        }

        /** {@inheritDoc} */
        @Override
        protected void prepare(Shape[] inputShapes) {
            long features = inputShapes[0].get(1);
            weight.setShape(new Shape(features, features));
        }
    }
}
