package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.recurrent.LSTM;
import ai.djl.nn.recurrent.RecurrentBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.Pair;
import ai.djl.util.PairList;

/** Recurrent classifiers and their twins that run DJL's recurrent blocks in float64. */
final class RecurrentNetworks {

    private RecurrentNetworks() {}

    /** Returns {@code recurrent - last step - Linear(classes)}. */
    static SequentialBlock lastStep(Block recurrent, int classes) {
        return new SequentialBlock()
                .add(recurrent)
                .add(new LambdaBlock(list -> new NDList(list.head().get(":, -1, :"))))
                .add(Networks.linear(classes));
    }

    /** Returns {@code recurrent - flatten - Linear(classes)}: every step reaches the output. */
    static SequentialBlock flat(Block recurrent, int classes) {
        return new SequentialBlock()
                .add(recurrent)
                .add(Networks.flatten())
                .add(Networks.linear(classes));
    }

    /**
     * Returns a twin of an initialized sequential model that shares its blocks and parameters but
     * runs every recurrent block from zero states of the input's data type, for references that run
     * the model in float64.
     */
    static Block zeroStates(SequentialBlock model, NDManager manager, Shape inputShape) {
        SequentialBlock twin = new SequentialBlock();
        for (Pair<String, Block> child : model.getChildren()) {
            Block block = child.getValue();
            twin.add(block instanceof RecurrentBlock ? new ZeroStates(block) : block);
        }
        // the parameters are initialized already, so this only records the input shapes
        twin.initialize(manager, DataType.FLOAT64, inputShape);
        return twin;
    }

    /**
     * Runs one of DJL's recurrent blocks from zero states of the input's data type: DJL 0.36.0's
     * {@code LSTM}, {@code GRU} and {@code RNN} make float32 zero states whatever the input's type,
     * which both engines refuse to mix with a float64 model.
     */
    static final class ZeroStates extends AbstractBlock {

        private final Block recurrent;

        ZeroStates(Block recurrent) {
            this.recurrent = addChildBlock("recurrent", recurrent);
        }

        /** {@inheritDoc} */
        @Override
        protected NDList forwardInternal(
                ParameterStore parameterStore,
                NDList inputs,
                boolean training,
                PairList<String, Object> params) {
            NDArray x = inputs.head();
            long states = recurrent.getOutputShapes(new Shape[] {x.getShape()})[0].get(2);
            NDList withStates = new NDList(x);
            int count = recurrent instanceof LSTM ? 2 : 1;
            for (int i = 0; i < count; i++) {
                withStates.add(
                        x.getManager().zeros(new Shape(1, x.size(0), states), x.getDataType()));
            }
            return new NDList(recurrent.forward(parameterStore, withStates, training).head());
        }

        /** {@inheritDoc} */
        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return new Shape[] {recurrent.getOutputShapes(inputShapes)[0]};
        }

        /** {@inheritDoc} */
        @Override
        protected void initializeChildBlocks(
                NDManager manager, DataType dataType, Shape... inputShapes) {
            recurrent.initialize(manager, dataType, inputShapes);
        }
    }
}
