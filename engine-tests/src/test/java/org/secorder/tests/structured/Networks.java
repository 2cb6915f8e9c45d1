package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Blocks;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.ParallelBlock;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import java.util.List;

/** Small networks of every supported kind of block. */
final class Networks {

    private Networks() {}

    /** Returns a linear block. */
    static Block linear(int units) {
        return Linear.builder().setUnits(units).build();
    }

    /** Returns {@code Linear(6) - activation - Linear(5) - tanh - Linear(outputs)}. */
    static SequentialBlock mlp(Block activation, int outputs) {
        return new SequentialBlock()
                .add(linear(6))
                .add(activation)
                .add(linear(5))
                .add(Activation.tanhBlock())
                .add(linear(outputs));
    }

    /** Returns {@code Linear(6) - activation - Linear(5) - activation - Linear(outputs)}. */
    static SequentialBlock twice(Block first, Block second, int outputs) {
        return new SequentialBlock()
                .add(linear(6))
                .add(first)
                .add(linear(5))
                .add(second)
                .add(linear(outputs));
    }

    /** Returns a parallel block that sums the outputs of its branches. */
    static ParallelBlock sum(Block... branches) {
        return new ParallelBlock(
                list -> {
                    var total = list.get(0).singletonOrThrow();
                    for (int i = 1; i < list.size(); i++) {
                        total = total.add(list.get(i).singletonOrThrow());
                    }
                    return new NDList(total);
                },
                List.of(branches));
    }

    /** Returns the shape of a batch of 5 samples with 4 features. */
    static Shape vectors() {
        return new Shape(5, 4);
    }

    /** Returns {@code Blocks.batchFlattenBlock()}. */
    static Block flatten() {
        return Blocks.batchFlattenBlock();
    }

    /**
     * A normalization of the test's own that no rule covers: {@code y = gamma * x / sqrt(mean(x^2)
     * + 1e-5)} over the features of each sample, with a learned {@code gamma}. It couples the
     * features of a sample and has curvature of its own, as DJL's {@code LayerNorm} does.
     */
    static final class RmsNorm extends AbstractBlock {

        private final Parameter gamma;

        RmsNorm() {
            gamma =
                    addParameter(
                            Parameter.builder()
                                    .setName("gamma")
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
            NDArray scale = x.square().mean(new int[] {1}, true).add(1e-5).sqrt();
            NDArray g = parameterStore.getValue(gamma, x.getDevice(), training);
            return new NDList(x.div(scale).mul(g));
        }

        /** {@inheritDoc} */
        @Override
        public void prepare(Shape[] inputShapes) {
            gamma.setShape(inputShapes[0].slice(1));
        }

        /** {@inheritDoc} */
        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return inputShapes;
        }
    }

    /**
     * Returns a lambda named {@code sine} that computes {@code sin(x)}: no rule covers it, and, a
     * lambda, it does not fall back to the generic rule, so it stays unsupported for the Hessian on
     * every engine.
     */
    static Block sine() {
        return new LambdaBlock(x -> new NDList(x.head().sin()), "sine");
    }
}
