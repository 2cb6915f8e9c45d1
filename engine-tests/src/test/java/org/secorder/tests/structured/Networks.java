package org.secorder.tests.structured;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Blocks;
import ai.djl.nn.ParallelBlock;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
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
}
