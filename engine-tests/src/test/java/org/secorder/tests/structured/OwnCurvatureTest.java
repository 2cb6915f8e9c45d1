package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import ai.djl.util.PairList;
import java.util.List;
import java.util.function.Function;
import org.secorder.core.HessianDiagonal;
import org.secorder.structured.BlockDerivatives;
import org.secorder.structured.BlockRule;
import org.secorder.structured.BlockRules;
import org.secorder.structured.StructuredDiagonal;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * A user's rule whose block has curvature of its own that is not diagonal and whose parameter
 * enters nonlinearly: {@code y = tanh(x W^T)} as one block. Its input curvature {@code W^T diag(g
 * tanh''(z)) W} goes in as signed dense columns ({@link BlockDerivatives#curvatureColumns}), its
 * parameter curvature {@code g_i tanh''(z_i) x_k^2} through {@link
 * BlockDerivatives#parameterCurvature}; checked against float64 central differences of first-order
 * gradients on every engine, as is a diagonal input curvature ({@link BlockDerivatives#curvature})
 * with a parameter inside the nonlinearity, {@code y = tanh(a * x)}.
 */
public class OwnCurvatureTest {

    private static final double TOLERANCE = 1e-6;
    private static final double STEP = 1e-5;

    @Test
    public void hessianMatchesGradientDifferences() {
        withRule(
                TanhLinearDerivatives::new,
                () -> {
                    try (NDManager manager = NDManager.newBaseManager()) {
                        Block model = model(manager, 91);
                        NDArray input = Fixtures.normal(manager, 92, Networks.vectors());
                        NDArray labels = Fixtures.classes(manager, 5, 3);
                        Loss loss = new SoftmaxCrossEntropyLoss();
                        Assert.assertEquals(
                                HessianDiagonal.builder().build().resolve(model, loss),
                                HessianDiagonal.Method.STRUCTURED);
                        NDArray[] actual = Fixtures.structured(model, loss, input, labels, false);
                        NDList expected =
                                Fixtures.gradientDifferences(model, loss, input, labels, STEP);
                        Fixtures.assertMatches(actual, expected, TOLERANCE);
                    }
                });
    }

    @Test
    public void diagonalCurvatureWithParameterCurvatureMatchesGradientDifferences() {
        BlockRules.register(
                ScaledTanh.class,
                "ScaledTanh (y = tanh(a * x)), a test block",
                ScaledTanhDerivatives::new);
        try (NDManager manager = NDManager.newBaseManager()) {
            Block block =
                    new SequentialBlock()
                            .add(Networks.linear(5))
                            .add(new ScaledTanh())
                            .add(Networks.linear(3));
            Block model = Fixtures.initialize(block, manager, Networks.vectors(), 99);
            NDArray input = Fixtures.normal(manager, 100, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] actual = Fixtures.structured(model, loss, input, labels, false);
            NDList expected = Fixtures.gradientDifferences(model, loss, input, labels, STEP);
            Fixtures.assertMatches(actual, expected, TOLERANCE);
        } finally {
            BlockRules.unregister(ScaledTanh.class);
        }
    }

    @Test
    public void ownCurvatureChangesTheHessian() {
        // without its own curvature (a rule that forgets it) the diagonals of the block's weight
        // and of the first layer differ from the differences: the test above can fail
        withRule(
                block -> new WithoutOwnCurvature(new TanhLinearDerivatives(block)),
                () -> {
                    try (NDManager manager = NDManager.newBaseManager()) {
                        Block model = model(manager, 91);
                        NDArray input = Fixtures.normal(manager, 92, Networks.vectors());
                        NDArray labels = Fixtures.classes(manager, 5, 3);
                        Loss loss = new SoftmaxCrossEntropyLoss();
                        NDArray[] actual = Fixtures.structured(model, loss, input, labels, false);
                        NDList expected =
                                Fixtures.gradientDifferences(model, loss, input, labels, STEP);
                        for (int p : new int[] {0, 2}) {
                            double difference =
                                    actual[p].sub(expected.get(p)).abs().max().getDouble();
                            double scale = expected.get(p).abs().max().getDouble();
                            Assert.assertTrue(difference > 1e-3 * scale, "parameter " + p);
                        }
                    }
                });
    }

    @Test
    public void perSampleHessianMatchesEachSampleAlone() {
        withRule(
                TanhLinearDerivatives::new,
                () -> {
                    try (NDManager manager = NDManager.newBaseManager()) {
                        Block model = model(manager, 93);
                        NDArray input = Fixtures.normal(manager, 94, Networks.vectors());
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
                                // the loss of the batch is the mean over its 5 samples
                                actual[p] = perSample[p].get(n).mul(5);
                            }
                            NDList expected =
                                    Fixtures.gradientDifferences(
                                            model,
                                            loss,
                                            input.get(sample),
                                            labels.get(sample),
                                            STEP);
                            Fixtures.assertMatches(actual, expected, TOLERANCE);
                        }
                    }
                });
    }

    @Test
    public void ggnLeavesOwnCurvatureOut() {
        withRule(
                TanhLinearDerivatives::new,
                () -> {
                    try (NDManager manager = NDManager.newBaseManager()) {
                        Block model = model(manager, 95);
                        NDArray input = Fixtures.normal(manager, 96, Networks.vectors());
                        NDArray labels = Fixtures.classes(manager, 5, 3);
                        NDArray[] ggn =
                                Fixtures.structured(
                                        model, new SoftmaxCrossEntropyLoss(), input, labels, true);
                        Fixtures.assertMatches(
                                ggn, GaussNewtonReference.softmaxCrossEntropy(model, input), 1e-7);
                    }
                });
    }

    @Test
    public void curvatureColumnsOfWrongShapeAreRefused() {
        withRule(
                block -> new WrongSigns(new TanhLinearDerivatives(block)),
                () -> {
                    try (NDManager manager = NDManager.newBaseManager()) {
                        Block model = model(manager, 97);
                        NDArray input = Fixtures.normal(manager, 98, Networks.vectors());
                        NDArray labels = Fixtures.classes(manager, 5, 3);
                        IllegalStateException e =
                                Assert.expectThrows(
                                        IllegalStateException.class,
                                        () ->
                                                Fixtures.structured(
                                                        model,
                                                        new SoftmaxCrossEntropyLoss(),
                                                        input,
                                                        labels,
                                                        false));
                        Assert.assertTrue(
                                e.getMessage().contains("curvatureColumns returned columns"),
                                e.getMessage());
                        Assert.assertTrue(e.getMessage().contains("(TanhLinear)"), e.getMessage());
                    }
                });
    }

    private static void withRule(BlockRule<TanhLinear> rule, Runnable test) {
        BlockRules.register(TanhLinear.class, "TanhLinear (y = tanh(x W^T)), a test block", rule);
        try {
            test.run();
        } finally {
            BlockRules.unregister(TanhLinear.class);
        }
    }

    /** {@code Linear(5) - TanhLinear(4) - Linear(3)}, float64, seeded. */
    private static Block model(NDManager manager, long seed) {
        Block block =
                new SequentialBlock()
                        .add(Networks.linear(5))
                        .add(new TanhLinear(4))
                        .add(Networks.linear(3));
        return Fixtures.initialize(block, manager, Networks.vectors(), seed);
    }

    /** A block of a user's own: {@code y = tanh(x W^T)}, {@code W} of shape (units, inputs). */
    public static final class TanhLinear extends AbstractBlock {

        private final Parameter weight;
        private final long units;

        TanhLinear(long units) {
            this.units = units;
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
            NDArray x = inputs.singletonOrThrow();
            NDArray w = parameterStore.getValue(weight, x.getDevice(), training);
            return new NDList(x.matMul(w.transpose()).tanh());
        }

        /** {@inheritDoc} */
        @Override
        public void prepare(Shape[] inputShapes) {
            weight.setShape(new Shape(units, inputShapes[0].get(1)));
        }

        /** {@inheritDoc} */
        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return new Shape[] {new Shape(inputShapes[0].get(0), units)};
        }
    }

    /**
     * The derivatives of {@link TanhLinear}, by hand: with {@code t = tanh(z)}, {@code z = x W^T},
     * {@code J_x = diag(t') W}, {@code dy_i / dW_ik = t'_i x_k}, {@code sum_i g_i d^2 y_i / dx^2 =
     * W^T diag(g t'') W} (the rows of {@code W} scaled by {@code sqrt|g t''|}, signed) and {@code
     * sum_i g_i d^2 y_i / dW_ik^2 = g_i t''_i x_k^2}.
     */
    private static final class TanhLinearDerivatives implements BlockDerivatives {

        private final TanhLinear block;
        private NDArray input;
        private NDArray weight;
        private NDArray first;
        private NDArray second;

        TanhLinearDerivatives(TanhLinear block) {
            this.block = block;
        }

        @Override
        public NDArray forward(ParameterStore store, NDArray x, boolean training) {
            input = x;
            weight = block.getParameters().get("weight").getArray();
            NDArray t = block.forward(store, new NDList(x), training).singletonOrThrow();
            first = t.square().neg().add(1);
            second = t.mul(first).mul(-2);
            return t;
        }

        @Override
        public NDArray transposedJacobian(NDArray rows, long k) {
            return rows.mul(repeat(first, k)).matMul(weight);
        }

        @Override
        public List<Parameter> getParameters() {
            return List.of(block.getParameters().get("weight"));
        }

        @Override
        public NDList parameterProducts(NDArray rows, long k) {
            NDArray scaled = rows.mul(repeat(first, k)).expandDims(2);
            return new NDList(scaled.mul(repeat(input, k).expandDims(1)));
        }

        @Override
        public boolean hasCurvature() {
            return true;
        }

        @Override
        public boolean hasDiagonalCurvature() {
            return false;
        }

        @Override
        public NDList curvatureColumns(NDArray outputGradient) {
            NDArray c = outputGradient.mul(second);
            NDArray columns = c.abs().sqrt().expandDims(2).mul(weight.expandDims(0));
            return new NDList(columns, c.sign());
        }

        @Override
        public NDList parameterCurvature(NDArray outputGradient) {
            NDArray c = outputGradient.mul(second);
            return new NDList(c.expandDims(2).mul(input.square().expandDims(1)));
        }

        private static NDArray repeat(NDArray array, long k) {
            return k == 1 ? array : array.repeat(0, k);
        }
    }

    /** A block of a user's own: {@code y = tanh(a * x)} with a learned vector {@code a}. */
    public static final class ScaledTanh extends AbstractBlock {

        private final Parameter scale;

        ScaledTanh() {
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
            NDArray a = parameterStore.getValue(scale, x.getDevice(), training);
            return new NDList(x.mul(a).tanh());
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
    }

    /**
     * The derivatives of {@link ScaledTanh}: {@code J_x = diag(a t')}, {@code J_a = diag(x t')},
     * the diagonal input curvature {@code g a^2 t''} and the parameter curvature {@code g x^2 t''}.
     */
    private static final class ScaledTanhDerivatives implements BlockDerivatives {

        private final ScaledTanh block;
        private NDArray input;
        private NDArray scale;
        private NDArray first;
        private NDArray second;

        ScaledTanhDerivatives(ScaledTanh block) {
            this.block = block;
        }

        @Override
        public NDArray forward(ParameterStore store, NDArray x, boolean training) {
            input = x;
            scale = block.getParameters().get("scale").getArray();
            NDArray t = block.forward(store, new NDList(x), training).singletonOrThrow();
            first = t.square().neg().add(1);
            second = t.mul(first).mul(-2);
            return t;
        }

        @Override
        public NDArray transposedJacobian(NDArray rows, long k) {
            return rows.mul(repeat(first.mul(scale), k));
        }

        @Override
        public List<Parameter> getParameters() {
            return List.of(block.getParameters().get("scale"));
        }

        @Override
        public NDList parameterProducts(NDArray rows, long k) {
            return new NDList(rows.mul(repeat(first.mul(input), k)));
        }

        @Override
        public boolean hasCurvature() {
            return true;
        }

        @Override
        public NDArray curvature(NDArray outputGradient) {
            return outputGradient.mul(second).mul(scale.square());
        }

        @Override
        public NDList parameterCurvature(NDArray outputGradient) {
            return new NDList(outputGradient.mul(second).mul(input.square()));
        }

        private static NDArray repeat(NDArray array, long k) {
            return k == 1 ? array : array.repeat(0, k);
        }
    }

    /** A rule that forwards everything but the block's own curvature. */
    private static class Forwarding implements BlockDerivatives {

        final BlockDerivatives inner;

        Forwarding(BlockDerivatives inner) {
            this.inner = inner;
        }

        @Override
        public NDArray forward(ParameterStore store, NDArray x, boolean training) {
            return inner.forward(store, x, training);
        }

        @Override
        public NDArray transposedJacobian(NDArray rows, long k) {
            return inner.transposedJacobian(rows, k);
        }

        @Override
        public List<Parameter> getParameters() {
            return inner.getParameters();
        }

        @Override
        public NDList parameterProducts(NDArray rows, long k) {
            return inner.parameterProducts(rows, k);
        }
    }

    /** Forgets the block's own curvature. */
    private static final class WithoutOwnCurvature extends Forwarding {

        WithoutOwnCurvature(BlockDerivatives inner) {
            super(inner);
        }
    }

    /** Returns signs of the wrong shape. */
    private static final class WrongSigns extends Forwarding {

        private final Function<NDArray, NDList> columns;

        WrongSigns(BlockDerivatives inner) {
            super(inner);
            columns = inner::curvatureColumns;
        }

        @Override
        public boolean hasCurvature() {
            return true;
        }

        @Override
        public boolean hasDiagonalCurvature() {
            return false;
        }

        @Override
        public NDList curvatureColumns(NDArray outputGradient) {
            NDList right = columns.apply(outputGradient);
            return new NDList(right.get(0), right.get(1).get(":, :2"));
        }
    }
}
