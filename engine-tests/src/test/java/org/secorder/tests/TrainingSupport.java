package org.secorder.tests;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.Dropout;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.EasyTrain;
import ai.djl.training.Trainer;
import ai.djl.training.dataset.ArrayDataset;
import ai.djl.training.listener.TrainingListener;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.util.Pair;
import java.util.ArrayList;
import java.util.List;

/** Deterministic data, models and training runs for the tests of the training package. */
final class TrainingSupport {

    static final int FEATURES = 4;
    static final int CLASSES = 3;

    private TrainingSupport() {}

    /**
     * Returns {@code samples} inputs computed from their index (no random numbers): {@code sin} of
     * distinct frequencies, so the classes below are learnable but not separable.
     */
    static NDArray inputs(NDManager manager, int samples) {
        float[] values = new float[samples * FEATURES];
        for (int i = 0; i < samples; i++) {
            for (int j = 0; j < FEATURES; j++) {
                values[i * FEATURES + j] = (float) Math.sin(0.7 * i * (j + 1) + j);
            }
        }
        return manager.create(values, new Shape(samples, FEATURES));
    }

    /** Returns class labels: the index of the largest of the first three inputs, mixed up a bit. */
    static NDArray labels(NDManager manager, int samples) {
        float[] inputs = inputs(manager, samples).toFloatArray();
        float[] labels = new float[samples];
        for (int i = 0; i < samples; i++) {
            int best = 0;
            for (int j = 1; j < CLASSES; j++) {
                if (inputs[i * FEATURES + j] > inputs[i * FEATURES + best]) {
                    best = j;
                }
            }
            labels[i] = i % 7 == 0 ? (best + 1) % CLASSES : best;
        }
        return manager.create(labels);
    }

    /** Returns a dataset of {@code samples} examples in batches of {@code batchSize}, in order. */
    static ArrayDataset dataset(NDManager manager, int samples, int batchSize) {
        return new ArrayDataset.Builder()
                .setData(inputs(manager, samples))
                .optLabels(labels(manager, samples))
                .setSampling(batchSize, false)
                .build();
    }

    /** Returns {@code Linear(8) - tanh - Dropout(0.3) - Linear(3)}, not yet initialized. */
    static SequentialBlock mlp() {
        return new SequentialBlock()
                .add(Linear.builder().setUnits(8).build())
                .add(Activation.tanhBlock())
                .add(Dropout.builder().optRate(0.3f).build())
                .add(Linear.builder().setUnits(CLASSES).build());
    }

    /**
     * Trains {@link #mlp()} with softmax cross-entropy on a fixed seed and returns the trained
     * parameters' bytes, in order.
     */
    static List<byte[]> train(
            ArrayDataset dataset, int epochs, Optimizer optimizer, TrainingListener... listeners) {
        Engine.getInstance().setRandomSeed(11);
        try (Model model = Model.newInstance("training-support")) {
            model.setBlock(mlp());
            DefaultTrainingConfig config =
                    new DefaultTrainingConfig(Loss.softmaxCrossEntropyLoss())
                            .optOptimizer(optimizer)
                            .optDevices(new Device[] {Device.cpu()});
            config.addTrainingListeners(listeners);
            try (Trainer trainer = model.newTrainer(config)) {
                trainer.initialize(new Shape(1, FEATURES));
                EasyTrain.fit(trainer, epochs, dataset, null);
                return parameterBytes(model.getBlock());
            } catch (java.io.IOException | ai.djl.translate.TranslateException e) {
                throw new AssertionError(e);
            }
        }
    }

    /** Returns the bytes of every parameter of a block, in order. */
    static List<byte[]> parameterBytes(Block block) {
        List<byte[]> bytes = new ArrayList<>();
        for (Pair<String, Parameter> entry : block.getParameters()) {
            bytes.add(entry.getValue().getArray().toByteArray());
        }
        return bytes;
    }
}
