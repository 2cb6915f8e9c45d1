package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import java.util.Random;

/** A small float64 network and data, seeded on the host, for the estimators of a real loss. */
final class EstimationFixtures {

    /** The examples of a batch. */
    static final int BATCH = 8;

    /** The input features. */
    static final int FEATURES = 4;

    private EstimationFixtures() {}

    /** {@code Linear(5) - tanh - Linear(outputs)}, initialized from a seeded host generator. */
    static SequentialBlock network(NDManager manager, int outputs, long seed) {
        SequentialBlock block =
                new SequentialBlock()
                        .add(Linear.builder().setUnits(5).build())
                        .add(Activation.tanhBlock())
                        .add(Linear.builder().setUnits(outputs).build());
        Random random = new Random(seed);
        block.setInitializer(
                (m, shape, type) -> normal(m, random, shape, 0.8), Parameter.Type.WEIGHT);
        block.setInitializer(
                (m, shape, type) -> normal(m, random, shape, 0.3), Parameter.Type.BIAS);
        block.initialize(manager, DataType.FLOAT64, new Shape(BATCH, FEATURES));
        return block;
    }

    /** Normal values of a given scale. */
    static NDArray normal(NDManager manager, Random random, Shape shape, double scale) {
        double[] values = new double[Math.toIntExact(shape.size())];
        for (int i = 0; i < values.length; i++) {
            values[i] = scale * random.nextGaussian();
        }
        return manager.create(values, shape);
    }

    /** Inputs of the batch. */
    static NDArray inputs(NDManager manager, long seed) {
        return normal(manager, new Random(seed), new Shape(BATCH, FEATURES), 1.0);
    }

    /** Class indices {@code (BATCH)} in float64, as DJL's sparse labels. */
    static NDArray classes(NDManager manager, int classes) {
        double[] values = new double[BATCH];
        for (int b = 0; b < BATCH; b++) {
            values[b] = b % classes;
        }
        return manager.create(values, new Shape(BATCH));
    }

    /** Binary targets {@code (BATCH, outputs)}. */
    static NDArray binary(NDManager manager, int outputs) {
        double[] values = new double[BATCH * outputs];
        for (int i = 0; i < values.length; i++) {
            values[i] = (i * 7 % 3) == 0 ? 1 : 0;
        }
        return manager.create(values, new Shape(BATCH, outputs));
    }
}
