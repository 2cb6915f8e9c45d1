package org.secorder.training;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;
import ai.djl.training.Trainer;
import ai.djl.training.dataset.Batch;
import ai.djl.training.listener.TrainingListenerAdapter;
import ai.djl.training.loss.Loss;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.secorder.core.HessianDiagonal;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Tracks the Hessian diagonal of the training loss while a model trains: on every {@code N}-th
 * training batch it computes the diagonal of that batch's loss, between the backward pass and the
 * optimizer step (in {@link #onTrainingBatch}), and keeps the latest diagonal and a bias-corrected
 * exponential moving average per parameter, by the names of {@link Block#getParameters()}.
 *
 * <pre>{@code
 * CurvatureListener curvature = CurvatureListener.builder().optEvery(10).build();
 * config.addTrainingListeners(curvature);
 * EasyTrain.fit(trainer, epochs, dataset, null);
 * NDArray average = curvature.getAverage("01Linear_weight"); // yours to close
 * }</pre>
 *
 * <p>Attaching it does not change training: it reads the whole batch (not the per-device splits),
 * the trainer's model and loss, and through {@link HessianDiagonal} it neither reads nor writes
 * gradients, leaves parameters, the engine's recording and training state as they were, and by
 * default runs the model in inference mode, which draws no random numbers (dropout is off). A
 * {@link HessianDiagonal} configured with {@code optTraining(true)} on a model with dropout does
 * draw random numbers and so changes the rest of training.
 *
 * <p>The arrays it keeps live in a manager below that of the model's parameters, so they are freed
 * with the model, or earlier by {@link #close()}. Calls are safe from several threads.
 */
public final class CurvatureListener extends TrainingListenerAdapter implements AutoCloseable {

    private static final Logger LOGGER = LoggerFactory.getLogger(CurvatureListener.class);

    private final int every;
    private final float decay;
    private final HessianDiagonal diagonal;

    private final Object lock = new Object();
    private final Map<String, NDArray> latest = new LinkedHashMap<>();
    private final Map<String, NDArray> movingSums = new LinkedHashMap<>();
    private NDManager manager;
    private long batches;
    private int computations;

    CurvatureListener(Builder builder) {
        every = builder.every;
        decay = builder.decay;
        diagonal =
                builder.diagonal != null
                        ? builder.diagonal
                        : HessianDiagonal.builder().optMethod(builder.method).build();
    }

    /**
     * Creates a builder to configure a {@code CurvatureListener}.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /** {@inheritDoc} */
    @Override
    public void onTrainingBatch(Trainer trainer, BatchData batchData) {
        long index;
        synchronized (lock) {
            index = batches++;
        }
        if (index % every != 0) {
            return;
        }
        Batch batch = batchData.getBatch();
        update(
                trainer.getModel().getBlock(),
                trainer.getLoss(),
                batch.getData(),
                batch.getLabels());
    }

    /**
     * Computes the diagonal of the loss of one batch and records it as the trainer does on every
     * {@code N}-th batch; for training loops of one's own.
     *
     * @param model the model
     * @param loss its loss
     * @param inputs the batch's inputs
     * @param labels the batch's labels
     */
    public void update(Block model, Loss loss, NDList inputs, NDList labels) {
        long start = System.nanoTime();
        NDArray first = ModelArrays.firstParameter(model);
        String[] names = ModelArrays.names(model);
        NDList diagonals;
        try (NDManager scope = first.getManager().newSubManager()) {
            NDList data = ModelArrays.onDevice(inputs, first.getDevice(), scope);
            NDList targets = ModelArrays.onDevice(labels, first.getDevice(), scope);
            diagonals = diagonal.compute(model, loss, data, targets);
        }
        synchronized (lock) {
            if (manager == null) {
                manager = first.getManager().newSubManager();
                manager.setName("CurvatureListener");
            }
            computations++;
            for (int i = 0; i < names.length; i++) {
                NDArray value = diagonals.get(i);
                value.attach(manager);
                NDArray replaced = latest.put(names[i], value);
                if (replaced != null) {
                    replaced.close();
                }
                NDArray sum = movingSums.get(names[i]);
                if (sum == null) {
                    sum = value.mul(1 - decay);
                    movingSums.put(names[i], sum);
                } else {
                    sum.muli(decay);
                    try (NDArray weighted = value.mul(1 - decay)) {
                        sum.addi(weighted);
                    }
                }
            }
        }
        if (LOGGER.isDebugEnabled()) {
            LOGGER.debug(
                    "Hessian diagonal {} of {} parameters in {} ms",
                    computations,
                    names.length,
                    (System.nanoTime() - start) / 1_000_000);
        }
    }

    /**
     * Returns the diagonal of the latest computation for one parameter.
     *
     * @param parameterName a name from {@link Block#getParameters()}
     * @return a copy, shaped like the parameter, which the caller owns (it is also freed with this
     *     listener); {@code null} before the first computation
     * @throws IllegalArgumentException if the model has no parameter of that name
     */
    public NDArray getLatest(String parameterName) {
        synchronized (lock) {
            NDArray value = lookUp(latest, parameterName);
            return value == null ? null : value.duplicate();
        }
    }

    /**
     * Returns the exponential moving average of the diagonals computed so far for one parameter,
     * bias-corrected: after {@code t} computations with decay {@code b} it is {@code (1 - b) *
     * sum_k b^(t - k) D_k / (1 - b^t)}, so the first average is the first diagonal.
     *
     * @param parameterName a name from {@link Block#getParameters()}
     * @return a new array, shaped like the parameter, which the caller owns (it is also freed with
     *     this listener); {@code null} before the first computation
     * @throws IllegalArgumentException if the model has no parameter of that name
     */
    public NDArray getAverage(String parameterName) {
        synchronized (lock) {
            NDArray sum = lookUp(movingSums, parameterName);
            if (sum == null) {
                return null;
            }
            return sum.div(1 - Math.pow(decay, computations));
        }
    }

    /**
     * Returns how many diagonals were computed so far.
     *
     * @return the number of computations
     */
    public int getComputations() {
        synchronized (lock) {
            return computations;
        }
    }

    /**
     * Returns the decay of the moving average.
     *
     * @return the decay, in {@code [0, 1)}
     */
    public float getDecay() {
        return decay;
    }

    /** Frees the diagonals kept so far; a later batch starts afresh. */
    @Override
    public void close() {
        synchronized (lock) {
            if (manager != null) {
                manager.close();
                manager = null;
            }
            latest.clear();
            movingSums.clear();
            computations = 0;
            batches = 0;
        }
    }

    private static NDArray lookUp(Map<String, NDArray> values, String name) {
        if (name == null) {
            throw new IllegalArgumentException("parameterName must not be null");
        }
        if (values.isEmpty()) {
            return null;
        }
        NDArray value = values.get(name);
        if (value == null) {
            throw new IllegalArgumentException(
                    "parameterName: no parameter named "
                            + name
                            + "; the model's parameters are "
                            + Arrays.toString(values.keySet().toArray()));
        }
        return value;
    }

    /** Configures a {@link CurvatureListener}; every setting is optional. */
    public static final class Builder {

        int every = 1;
        float decay = 0.9f;
        HessianDiagonal.Method method = HessianDiagonal.Method.AUTO;
        boolean methodSet;
        HessianDiagonal diagonal;

        Builder() {}

        /**
         * Sets how often the diagonal is computed: on the first training batch and then on every
         * {@code every}-th one; 1 (every batch) by default.
         *
         * @param every a positive number of batches
         * @return this builder
         */
        public Builder optEvery(int every) {
            this.every = every;
            return this;
        }

        /**
         * Sets the method of the diagonal; {@link HessianDiagonal.Method#AUTO} by default.
         *
         * @param method the method
         * @return this builder
         */
        public Builder optMethod(HessianDiagonal.Method method) {
            this.method = method;
            this.methodSet = true;
            return this;
        }

        /**
         * Sets the whole configuration of the diagonal, instead of {@link #optMethod}.
         *
         * @param diagonal a configured {@link HessianDiagonal}
         * @return this builder
         */
        public Builder optHessianDiagonal(HessianDiagonal diagonal) {
            this.diagonal = diagonal;
            return this;
        }

        /**
         * Sets the decay {@code b} of the moving average; 0.9 by default.
         *
         * @param decay a number in {@code [0, 1)}
         * @return this builder
         */
        public Builder optDecay(float decay) {
            this.decay = decay;
            return this;
        }

        /**
         * Builds the configured listener.
         *
         * @return the listener
         * @throws IllegalArgumentException if a setting is out of range
         */
        public CurvatureListener build() {
            validate();
            return new CurvatureListener(this);
        }

        private void validate() {
            if (every < 1) {
                throw new IllegalArgumentException(
                        "every must be a positive number of batches, got " + every);
            }
            if (!(decay >= 0 && decay < 1)) {
                throw new IllegalArgumentException("decay must be in [0, 1), got " + decay);
            }
            if (method == null) {
                throw new IllegalArgumentException("method must not be null");
            }
            if (methodSet && diagonal != null) {
                throw new IllegalArgumentException(
                        "method: set either optMethod or optHessianDiagonal, not both");
            }
        }
    }
}
