package org.secorder.training;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.Trainer;
import ai.djl.training.dataset.Batch;
import ai.djl.training.listener.TrainingListener;
import ai.djl.training.listener.TrainingListenerAdapter;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.ParameterTracker;
import ai.djl.training.tracker.Tracker;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * AdaHessian (Yao et al., 2021): Adam with the squared gradient replaced by the squared Hessian
 * diagonal, estimated every few steps by Hutchinson's method.
 *
 * <p>For a parameter {@code w} with gradient {@code g} at step {@code t} and the latest Hessian
 * diagonal estimate {@code D} (absolute values; for a convolution kernel of rank 3 or more,
 * averaged over its spatial axes for each pair of output and input channels):
 *
 * <pre>
 * m = beta1 * m + (1 - beta1) * g
 * v = beta2 * v + (1 - beta2) * D^2
 * w = w - lr * (m / (1 - beta1^t) / ((sqrt(v / (1 - beta2^t)))^k + epsilon) + weightDecay * w)
 * </pre>
 *
 * <p>with Hessian power {@code k}; weight decay is decoupled, as in the reference implementation.
 * DJL's {@link Optimizer#update} sees only a weight and its gradient, so the Hessian estimate comes
 * from the training loop through {@link #listener()}: one line sets both up,
 *
 * <pre>{@code
 * AdaHessian adaHessian = AdaHessian.builder().build();
 * DefaultTrainingConfig config = adaHessian.addTo(new DefaultTrainingConfig(loss));
 * }</pre>
 *
 * <p>which is {@code config.optOptimizer(adaHessian).addTrainingListeners(adaHessian.listener())}.
 * The listener estimates on the first training batch and then every {@link
 * Builder#optHessianInterval(int)} batches, after the backward pass and before the step; steps in
 * between reuse the latest estimate. A loop of one's own calls {@link #estimate} before {@link
 * Trainer#step()}.
 */
public final class AdaHessian extends Optimizer {

    private static final Logger LOGGER = LoggerFactory.getLogger(AdaHessian.class);

    private final ParameterTracker learningRateTracker;
    private final float beta1;
    private final float beta2;
    private final float epsilon;
    private final float hessianPower;
    private final int hessianInterval;
    private final HessianEstimator estimator;

    private final Map<String, Map<Device, NDArray>> means = new ConcurrentHashMap<>();
    private final Map<String, Map<Device, NDArray>> hessianMoments = new ConcurrentHashMap<>();
    private final Map<String, NDArray> estimates = new ConcurrentHashMap<>();
    private final Object lock = new Object();
    private final TrainingListener listener = new EstimateListener();
    private NDManager manager;
    private long batches;

    AdaHessian(Builder builder) {
        super(builder);
        learningRateTracker = builder.learningRateTracker;
        beta1 = builder.beta1;
        beta2 = builder.beta2;
        epsilon = builder.epsilon;
        hessianPower = builder.hessianPower;
        hessianInterval = builder.hessianInterval;
        estimator = builder.estimator;
    }

    /**
     * Creates a builder to configure an {@code AdaHessian} optimizer.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns the training listener that hands this optimizer its Hessian estimates; add it to the
     * training configuration of the trainer this optimizer steps.
     *
     * @return the listener
     */
    public TrainingListener listener() {
        return listener;
    }

    /**
     * Sets this optimizer and its {@link #listener()} on a training configuration.
     *
     * @param config the training configuration
     * @return {@code config}
     */
    public DefaultTrainingConfig addTo(DefaultTrainingConfig config) {
        if (config == null) {
            throw new IllegalArgumentException("config must not be null");
        }
        return config.optOptimizer(this).addTrainingListeners(listener);
    }

    /**
     * Estimates the Hessian diagonal of a model's loss on one batch and keeps it for the following
     * updates; the listener calls this, and so can a training loop of one's own before {@link
     * Trainer#step()}.
     *
     * @param model the model this optimizer trains
     * @param loss its loss
     * @param inputs the batch's inputs
     * @param labels the batch's labels
     */
    public void estimate(Block model, Loss loss, NDList inputs, NDList labels) {
        long start = System.nanoTime();
        NDArray first = ModelArrays.firstParameter(model);
        String[] ids = ModelArrays.ids(model);
        String[] names = ModelArrays.names(model);
        try (NDManager scope = first.getManager().newSubManager()) {
            NDList data = ModelArrays.onDevice(inputs, first.getDevice(), scope);
            NDList targets = ModelArrays.onDevice(labels, first.getDevice(), scope);
            NDList diagonals = estimator.estimate(model, loss, data, targets);
            diagonals.attach(scope);
            if (diagonals.size() != ids.length) {
                throw new IllegalStateException(
                        "the Hessian estimator returned "
                                + diagonals.size()
                                + " arrays for a model of "
                                + ids.length
                                + " parameters");
            }
            NDArray[] averaged = new NDArray[ids.length];
            for (int i = 0; i < ids.length; i++) {
                NDArray parameter = model.getParameters().get(i).getValue().getArray();
                if (!diagonals.get(i).getShape().equals(parameter.getShape())) {
                    throw new IllegalStateException(
                            "the Hessian estimator returned shape "
                                    + diagonals.get(i).getShape()
                                    + " for parameter "
                                    + names[i]
                                    + " of shape "
                                    + parameter.getShape());
                }
                averaged[i] = spatialAverage(diagonals.get(i));
            }
            synchronized (lock) {
                if (manager == null) {
                    manager = first.getManager().newSubManager();
                    manager.setName("AdaHessian");
                }
                for (int i = 0; i < ids.length; i++) {
                    averaged[i].attach(manager);
                    NDArray replaced = estimates.put(ids[i], averaged[i]);
                    if (replaced != null) {
                        replaced.close();
                    }
                }
            }
        }
        LOGGER.debug(
                "Hessian estimate of {} parameters in {} ms",
                ids.length,
                (System.nanoTime() - start) / 1_000_000);
    }

    /**
     * The absolute values of a diagonal, averaged over the spatial axes (all axes after the first
     * two) of a convolution kernel of rank 3 or more.
     */
    private static NDArray spatialAverage(NDArray diagonal) {
        NDArray magnitude = diagonal.abs();
        int rank = diagonal.getShape().dimension();
        if (rank < 3) {
            return magnitude;
        }
        Shape shape = diagonal.getShape();
        long[] kept = new long[rank];
        for (int i = 0; i < rank; i++) {
            kept[i] = i < 2 ? shape.get(i) : 1;
        }
        // one axis at a time is what every engine's mean supports
        NDArray mean;
        try (NDArray flat = magnitude.reshape(shape.get(0), shape.get(1), -1);
                NDArray reduced = flat.mean(new int[] {2})) {
            mean = reduced.reshape(new Shape(kept));
        }
        magnitude.close();
        return mean;
    }

    /** {@inheritDoc} */
    @Override
    public void update(String parameterId, NDArray weight, NDArray grad) {
        NDArray estimate = estimates.get(parameterId);
        if (estimate == null) {
            throw new IllegalStateException(
                    "AdaHessian has no Hessian estimate for parameter "
                            + parameterId
                            + ": add its listener to the training configuration,"
                            + " adaHessian.addTo(config) or"
                            + " config.addTrainingListeners(adaHessian.listener()), or call"
                            + " adaHessian.estimate(...) before trainer.step()");
        }
        int t = updateCount(parameterId);
        float learningRate = learningRateTracker.getNewValue(parameterId, t);
        float weightDecay = getWeightDecay();
        if (!Float.isFinite(learningRate) || !Float.isFinite(weightDecay)) {
            throw new IllegalArgumentException(
                    "learning rate or weight decay is not finite: "
                            + learningRate
                            + ", "
                            + weightDecay);
        }
        double correction1 = 1 - Math.pow(beta1, t);
        double correction2 = 1 - Math.pow(beta2, t);
        NDArray mean =
                withDefaultState(means, parameterId, weight.getDevice(), k -> weight.zerosLike());
        NDArray moment =
                withDefaultState(
                        hessianMoments, parameterId, weight.getDevice(), k -> weight.zerosLike());
        try (NDList temporaries = new NDList()) {
            NDArray hessian = estimate;
            if (!estimate.getDevice().equals(weight.getDevice())) {
                hessian = keep(temporaries, estimate.toDevice(weight.getDevice(), true));
            }
            NDArray gradient = keep(temporaries, grad.mul(rescaleGrad));
            if (clipGrad > 0) {
                gradient = keep(temporaries, gradient.clip(-clipGrad, clipGrad));
            }
            mean.muli(beta1).addi(keep(temporaries, gradient.mul(1 - beta1)));
            NDArray squared = keep(temporaries, hessian.square());
            squared.muli(1 - beta2);
            moment.muli(beta2).addi(squared);
            NDArray corrected = keep(temporaries, moment.div(correction2));
            NDArray denominator =
                    keep(
                            temporaries,
                            hessianPower == 1 ? corrected.sqrt() : corrected.pow(hessianPower / 2));
            denominator.addi(epsilon);
            NDArray step = keep(temporaries, mean.div(denominator));
            step.muli(learningRate / correction1);
            if (weightDecay != 0) {
                step.addi(keep(temporaries, weight.mul(learningRate * weightDecay)));
            }
            weight.subi(step);
        }
        if (weight.hasGradient()) {
            // as DJL's own optimizers do on engines that accumulate gradients (PyTorch), in the way
            // of DJL's GradientCollector.zeroGradients
            try (NDArray gradient = weight.getGradient()) {
                gradient.subi(gradient);
            }
        }
    }

    private static NDArray keep(NDList temporaries, NDArray array) {
        temporaries.add(array);
        return array;
    }

    /** Estimates on the first training batch and then every {@code hessianInterval} batches. */
    private final class EstimateListener extends TrainingListenerAdapter {

        /** {@inheritDoc} */
        @Override
        public void onTrainingBatch(Trainer trainer, BatchData batchData) {
            long index;
            synchronized (lock) {
                index = batches++;
            }
            if (index % hessianInterval == 0) {
                Batch batch = batchData.getBatch();
                estimate(
                        trainer.getModel().getBlock(),
                        trainer.getLoss(),
                        batch.getData(),
                        batch.getLabels());
            }
        }
    }

    /** Configures an {@link AdaHessian} optimizer; every setting is optional. */
    public static final class Builder extends OptimizerBuilder<Builder> {

        ParameterTracker learningRateTracker = Tracker.fixed(0.15f);
        float beta1 = 0.9f;
        float beta2 = 0.999f;
        float epsilon = 1e-4f;
        float hessianPower = 1f;
        int hessianInterval = 1;
        HessianEstimator estimator;

        Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Sets the learning rate; a fixed 0.15 by default, as in the reference implementation.
         *
         * @param learningRateTracker the learning rate tracker
         * @return this builder
         */
        public Builder optLearningRateTracker(ParameterTracker learningRateTracker) {
            this.learningRateTracker = learningRateTracker;
            return this;
        }

        /**
         * Sets the decay of the moving average of the gradient; 0.9 by default.
         *
         * @param beta1 a number in {@code [0, 1)}
         * @return this builder
         */
        public Builder optBeta1(float beta1) {
            this.beta1 = beta1;
            return this;
        }

        /**
         * Sets the decay of the moving average of the squared Hessian diagonal; 0.999 by default.
         *
         * @param beta2 a number in {@code [0, 1)}
         * @return this builder
         */
        public Builder optBeta2(float beta2) {
            this.beta2 = beta2;
            return this;
        }

        /**
         * Sets the term added to the denominator; 1e-4 by default.
         *
         * @param epsilon a positive number
         * @return this builder
         */
        public Builder optEpsilon(float epsilon) {
            this.epsilon = epsilon;
            return this;
        }

        /**
         * Sets the Hessian power {@code k}: 1 (the default) divides by the Hessian estimate, 0
         * gives momentum SGD, values in between interpolate.
         *
         * @param hessianPower a number in {@code [0, 1]}
         * @return this builder
         */
        public Builder optHessianPower(float hessianPower) {
            this.hessianPower = hessianPower;
            return this;
        }

        /**
         * Sets how many training batches one Hessian estimate serves; 1 (a new estimate every step)
         * by default.
         *
         * @param hessianInterval a positive number of batches
         * @return this builder
         */
        public Builder optHessianInterval(int hessianInterval) {
            this.hessianInterval = hessianInterval;
            return this;
        }

        /**
         * Sets where the Hessian diagonal comes from; by default Hutchinson's estimate with one
         * Rademacher vector ({@code HessianEstimator.hutchinson(1, 0)}), which needs Hessian-vector
         * products (PyTorch). On MXNet use {@link HessianEstimator#exact} with {@link
         * org.secorder.core.HessianDiagonal.Method#STRUCTURED}.
         *
         * @param estimator the estimator
         * @return this builder
         */
        public Builder optEstimator(HessianEstimator estimator) {
            this.estimator = estimator;
            return this;
        }

        /**
         * Builds the configured optimizer.
         *
         * @return the optimizer
         * @throws IllegalArgumentException if a setting is out of range
         */
        public AdaHessian build() {
            validate();
            if (estimator == null) {
                estimator = HessianEstimator.hutchinson(1, 0);
            }
            return new AdaHessian(this);
        }

        private void validate() {
            if (learningRateTracker == null) {
                throw new IllegalArgumentException("learningRateTracker must not be null");
            }
            if (!(beta1 >= 0 && beta1 < 1)) {
                throw new IllegalArgumentException("beta1 must be in [0, 1), got " + beta1);
            }
            if (!(beta2 >= 0 && beta2 < 1)) {
                throw new IllegalArgumentException("beta2 must be in [0, 1), got " + beta2);
            }
            if (!(epsilon > 0 && Float.isFinite(epsilon))) {
                throw new IllegalArgumentException(
                        "epsilon must be positive and finite, got " + epsilon);
            }
            if (!(hessianPower >= 0 && hessianPower <= 1)) {
                throw new IllegalArgumentException(
                        "hessianPower must be in [0, 1], got " + hessianPower);
            }
            if (hessianInterval < 1) {
                throw new IllegalArgumentException(
                        "hessianInterval must be a positive number of batches, got "
                                + hessianInterval);
            }
        }
    }
}
