package org.secorder.tests;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Blocks;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.convolutional.Conv1d;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.convolutional.Conv3d;
import ai.djl.nn.core.Linear;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.EasyTrain;
import ai.djl.training.Trainer;
import ai.djl.training.dataset.ArrayDataset;
import ai.djl.training.dataset.Batch;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import ai.djl.translate.TranslateException;
import java.io.IOException;
import java.util.function.Function;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianDiagonal.Method;
import org.secorder.training.AdaHessian;
import org.secorder.training.HessianEstimator;
import org.testng.Assert;
import org.testng.annotations.Test;

/** {@link AdaHessian} against hand computations, other optimizers and a small CNN. */
public class AdaHessianTest {

    private static final float LEARNING_RATE = 0.1f;
    private static final float BETA1 = 0.9f;
    private static final float BETA2 = 0.999f;
    private static final float EPSILON = 1e-4f;

    /** The exact diagonal, which every engine computes for these models. */
    private static HessianEstimator exact() {
        return HessianEstimator.exact(
                HessianDiagonal.builder().optMethod(Method.STRUCTURED).build());
    }

    /** The estimator a user of this engine would pick: the default where it works. */
    static AdaHessian.Builder forThisEngine(AdaHessian.Builder builder) {
        return EngineSupport.hasSecondDerivatives() ? builder : builder.optEstimator(exact());
    }

    @Test
    public void twoUpdatesMatchAHandComputation() {
        // y = w . x + b with L2Loss, 0.5 * mean (y - t)^2: g_k = mean r x_k, H_kk = mean x_k^2,
        // g_b = mean r, H_bb = 1, with r = w . x + b - t
        int samples = 6;
        double[][] x = new double[samples][2];
        double[] t = new double[samples];
        float[] flat = new float[samples * 2];
        float[] targets = new float[samples];
        for (int n = 0; n < samples; n++) {
            x[n][0] = (float) (0.5 + n * 0.3);
            x[n][1] = (float) (2.0 * Math.cos(n));
            t[n] = (float) (1.0 - 0.4 * n);
            flat[2 * n] = (float) x[n][0];
            flat[2 * n + 1] = (float) x[n][1];
            targets[n] = (float) t[n];
        }
        float power = 0.5f;
        float decay = 0.01f;
        AdaHessian optimizer =
                AdaHessian.builder()
                        .optLearningRateTracker(Tracker.fixed(LEARNING_RATE))
                        .optHessianPower(power)
                        .optWeightDecays(decay)
                        .optEstimator(exact())
                        .build();
        try (NDManager manager = NDManager.newBaseManager();
                Model model = Model.newInstance("hand")) {
            Engine.getInstance().setRandomSeed(2);
            model.setBlock(Linear.builder().setUnits(1).build());
            DefaultTrainingConfig config =
                    optimizer.addTo(
                            new DefaultTrainingConfig(Loss.l2Loss())
                                    .optDevices(new Device[] {Device.cpu()}));
            try (Trainer trainer = model.newTrainer(config)) {
                trainer.initialize(new Shape(1, 2));
                Block block = model.getBlock();
                double[] w = Assertions.values(block.getParameters().get(0).getValue().getArray());
                double b = Assertions.values(block.getParameters().get(1).getValue().getArray())[0];
                double[] m = new double[3];
                double[] v = new double[3];
                NDArray data = manager.create(flat, new Shape(samples, 2));
                NDArray labels = manager.create(targets, new Shape(samples, 1));
                for (int step = 1; step <= 2; step++) {
                    double[] updated =
                            handStep(new double[] {w[0], w[1], b}, x, t, m, v, step, power, decay);
                    w = new double[] {updated[0], updated[1]};
                    b = updated[2];
                    try (Batch batch = batch(manager, data, labels, samples)) {
                        EasyTrain.trainBatch(trainer, batch);
                        trainer.step();
                    }
                    Assertions.assertClose(
                            Assertions.values(block.getParameters().get(0).getValue().getArray()),
                            w,
                            1e-5,
                            "weight after step " + step);
                    Assertions.assertClose(
                            Assertions.values(block.getParameters().get(1).getValue().getArray()),
                            new double[] {b},
                            1e-5,
                            "bias after step " + step);
                }
            }
        }
    }

    /** One AdaHessian step of {@code (w0, w1, b)} computed by hand, updating the moments. */
    private static double[] handStep(
            double[] old,
            double[][] x,
            double[] t,
            double[] m,
            double[] v,
            int step,
            float power,
            float decay) {
        int samples = t.length;
        double[] g = new double[3];
        double[] h = {0, 0, 1};
        for (int n = 0; n < samples; n++) {
            double r = old[0] * x[n][0] + old[1] * x[n][1] + old[2] - t[n];
            g[0] += r * x[n][0] / samples;
            g[1] += r * x[n][1] / samples;
            g[2] += r / samples;
            h[0] += x[n][0] * x[n][0] / samples;
            h[1] += x[n][1] * x[n][1] / samples;
        }
        double[] updated = new double[3];
        for (int k = 0; k < 3; k++) {
            m[k] = BETA1 * m[k] + (1 - BETA1) * g[k];
            v[k] = BETA2 * v[k] + (1 - BETA2) * h[k] * h[k];
            double denominator =
                    Math.pow(Math.sqrt(v[k] / (1 - Math.pow(BETA2, step))), power) + EPSILON;
            double mHat = m[k] / (1 - Math.pow(BETA1, step));
            updated[k] = old[k] - LEARNING_RATE * (mHat / denominator + decay * old[k]);
        }
        return updated;
    }

    private static Batch batch(NDManager manager, NDArray data, NDArray labels, int size) {
        NDManager batchManager = manager.newSubManager();
        return new Batch(
                batchManager,
                new NDList(data.duplicate()),
                new NDList(labels.duplicate()),
                size,
                null,
                null,
                0,
                0);
    }

    @Test
    public void convolutionKernelsOfRank3AreAveragedOverTheirSpatialAxis() {
        spatialAveraging(Conv1d.builder().setKernelShape(new Shape(3)).setFilters(2).build(), 1);
    }

    @Test
    public void convolutionKernelsOfRank5AreAveragedOverTheirSpatialAxes() {
        spatialAveraging(
                Conv3d.builder().setKernelShape(new Shape(2, 2, 3)).setFilters(2).build(), 3);
    }

    @Test
    public void convolutionKernelsOfRank4AreAveragedOverTheirSpatialAxes() {
        spatialAveraging(Conv2d.builder().setKernelShape(new Shape(2, 3)).setFilters(2).build(), 2);
    }

    /**
     * One update of a convolution's weight with a given diagonal: {@code |D|} is averaged over the
     * spatial axes of each (output, input) channel pair; the first step is {@code w - lr * g /
     * (avg|D| + epsilon)}.
     */
    private static void spatialAveraging(Block convolution, int spatialAxes) {
        try (NDManager manager = NDManager.newBaseManager()) {
            long[] input = new long[2 + spatialAxes];
            input[0] = 1;
            input[1] = 3;
            for (int i = 2; i < input.length; i++) {
                input[i] = 4;
            }
            convolution.initialize(manager, DataType.FLOAT32, new Shape(input));
            Parameter weight = convolution.getParameters().get(0).getValue();
            Shape shape = weight.getArray().getShape();
            Assert.assertEquals(shape.dimension(), 2 + spatialAxes, "kernel rank");
            int size = (int) shape.size();
            float[] diagonal = new float[size];
            float[] gradient = new float[size];
            float[] values = new float[size];
            for (int i = 0; i < size; i++) {
                diagonal[i] = (float) ((i % 2 == 0 ? 1 : -1) * (0.1 + 0.37 * (i % 5)));
                gradient[i] = (float) Math.sin(i);
                values[i] = (float) Math.cos(i);
            }
            Function<Block, NDList> fixed =
                    model -> {
                        NDList list = new NDList();
                        for (var entry : model.getParameters()) {
                            NDArray parameter = entry.getValue().getArray();
                            list.add(
                                    parameter == weight.getArray()
                                            ? manager.create(diagonal, shape)
                                            : parameter.onesLike());
                        }
                        return list;
                    };
            AdaHessian optimizer =
                    AdaHessian.builder()
                            .optLearningRateTracker(Tracker.fixed(LEARNING_RATE))
                            .optEstimator((model, loss, inputs, labels) -> fixed.apply(model))
                            .build();
            NDList unused = new NDList(manager.zeros(new Shape(1)));
            optimizer.estimate(convolution, Loss.l2Loss(), unused, unused);
            NDArray w = manager.create(values, shape);
            optimizer.update(weight.getId(), w, manager.create(gradient, shape));

            long pairs = shape.get(0) * shape.get(1);
            int spatial = (int) (size / pairs);
            double[] expected = new double[size];
            for (int pair = 0; pair < pairs; pair++) {
                double average = 0;
                for (int s = 0; s < spatial; s++) {
                    average += Math.abs(diagonal[pair * spatial + s]) / spatial;
                }
                for (int s = 0; s < spatial; s++) {
                    int i = pair * spatial + s;
                    expected[i] = values[i] - LEARNING_RATE * gradient[i] / (average + EPSILON);
                }
            }
            Assertions.assertClose(Assertions.values(w), expected, 1e-5, "updated kernel");
        }
    }

    @Test
    public void hessianIsEstimatedOnTheFirstBatchAndThenEveryInterval() {
        int[] calls = new int[1];
        HessianEstimator exact = exact();
        HessianEstimator counting =
                (model, loss, inputs, labels) -> {
                    calls[0]++;
                    return exact.estimate(model, loss, inputs, labels);
                };
        AdaHessian optimizer =
                AdaHessian.builder().optHessianInterval(4).optEstimator(counting).build();
        try (NDManager manager = NDManager.newBaseManager()) {
            // 35 examples in batches of 10: 4 batches per epoch, 3 epochs, estimates on 0, 4, 8
            TrainingSupport.train(
                    TrainingSupport.dataset(manager, 35, 10), 3, optimizer, optimizer.listener());
        }
        Assert.assertEquals(calls[0], 3, "estimates");
    }

    @Test
    public void updateWithoutTheListenerIsAClearError() {
        try (NDManager manager = NDManager.newBaseManager()) {
            AdaHessian optimizer = AdaHessian.builder().build();
            NDArray weight = manager.ones(new Shape(2));
            IllegalStateException error =
                    Assert.expectThrows(
                            IllegalStateException.class,
                            () -> optimizer.update("w", weight, weight.duplicate()));
            Assert.assertTrue(error.getMessage().contains("listener"), error.getMessage());
        }
    }

    @Test
    public void builderRejectsBadSettings() {
        Assert.expectThrows(
                IllegalArgumentException.class,
                () -> AdaHessian.builder().optHessianPower(1.5f).build());
        Assert.expectThrows(
                IllegalArgumentException.class,
                () -> AdaHessian.builder().optHessianInterval(0).build());
        Assert.expectThrows(
                IllegalArgumentException.class, () -> AdaHessian.builder().optBeta2(1f).build());
        Assert.expectThrows(
                IllegalArgumentException.class, () -> AdaHessian.builder().optEpsilon(0f).build());
    }

    // ---- a test problem: ill-conditioned least squares ----

    private static final int PROBLEM_SAMPLES = 64;
    private static final int PROBLEM_FEATURES = 4;
    private static final int PROBLEM_STEPS = 40;
    private static final double[] SCALES = {0.2, 1, 3, 10};

    private static ArrayDataset leastSquares(NDManager manager) {
        float[] x = new float[PROBLEM_SAMPLES * PROBLEM_FEATURES];
        float[] y = new float[PROBLEM_SAMPLES];
        for (int n = 0; n < PROBLEM_SAMPLES; n++) {
            double target = 0.5;
            for (int k = 0; k < PROBLEM_FEATURES; k++) {
                double value = SCALES[k] * Math.sin(1.7 * n * (k + 1) + 0.3 * k);
                x[n * PROBLEM_FEATURES + k] = (float) value;
                target += (k % 2 == 0 ? 1.5 : -2.0) / SCALES[k] * value;
            }
            y[n] = (float) (target + 0.05 * Math.cos(5.0 * n));
        }
        return new ArrayDataset.Builder()
                .setData(manager.create(x, new Shape(PROBLEM_SAMPLES, PROBLEM_FEATURES)))
                .optLabels(manager.create(y, new Shape(PROBLEM_SAMPLES, 1)))
                .setSampling(PROBLEM_SAMPLES, false)
                .build();
    }

    /** Full-batch training for {@link #PROBLEM_STEPS} steps; returns the final loss. */
    private static double finalLoss(
            NDManager manager, Function<DefaultTrainingConfig, DefaultTrainingConfig> setUp) {
        ArrayDataset dataset = leastSquares(manager);
        Engine.getInstance().setRandomSeed(17);
        try (Model model = Model.newInstance("least-squares")) {
            Block block = Linear.builder().setUnits(1).build();
            block.setInitializer(new NormalInitializer(0.1f), Parameter.Type.WEIGHT);
            model.setBlock(block);
            DefaultTrainingConfig config =
                    setUp.apply(
                            new DefaultTrainingConfig(Loss.l2Loss())
                                    .optDevices(new Device[] {Device.cpu()}));
            try (Trainer trainer = model.newTrainer(config)) {
                trainer.initialize(new Shape(1, PROBLEM_FEATURES));
                EasyTrain.fit(trainer, PROBLEM_STEPS, dataset, null);
                try (NDManager scope = manager.newSubManager()) {
                    Batch all = dataset.getData(scope).iterator().next();
                    NDList predictions = trainer.evaluate(all.getData());
                    return trainer.getLoss().evaluate(all.getLabels(), predictions).getFloat();
                }
            } catch (IOException | TranslateException e) {
                throw new AssertionError(e);
            }
        }
    }

    private static final float[] GRID = {0.001f, 0.003f, 0.01f, 0.03f, 0.1f, 0.3f, 1f};

    @Test
    public void reachesALowerLossThanTunedSgdAndAdamInTheSameNumberOfSteps() {
        try (NDManager manager = NDManager.newBaseManager()) {
            double sgd = Double.POSITIVE_INFINITY;
            double adam = Double.POSITIVE_INFINITY;
            float sgdRate = 0;
            float adamRate = 0;
            for (float rate : GRID) {
                double s =
                        finalLoss(
                                manager,
                                c ->
                                        c.optOptimizer(
                                                Optimizer.sgd()
                                                        .setLearningRateTracker(Tracker.fixed(rate))
                                                        .build()));
                if (s < sgd) {
                    sgd = s;
                    sgdRate = rate;
                }
                double a =
                        finalLoss(
                                manager,
                                c ->
                                        c.optOptimizer(
                                                Optimizer.adam()
                                                        .optLearningRateTracker(Tracker.fixed(rate))
                                                        .build()));
                if (a < adam) {
                    adam = a;
                    adamRate = rate;
                }
            }
            AdaHessian optimizer = forThisEngine(AdaHessian.builder()).build();
            double adaHessian = finalLoss(manager, optimizer::addTo);
            String report =
                    String.format(
                            "%s, %d full-batch steps: AdaHessian (lr 0.15) %.6g, best SGD (lr %s)"
                                    + " %.6g, best Adam (lr %s) %.6g",
                            EngineSupport.name(),
                            PROBLEM_STEPS,
                            adaHessian,
                            sgdRate,
                            sgd,
                            adamRate,
                            adam);
            System.out.println(report);
            Assert.assertTrue(adaHessian < sgd && adaHessian < adam, report);
        }
    }

    @Test
    public void trainsASmallCnn() throws IOException, TranslateException {
        try (NDManager manager = NDManager.newBaseManager();
                Model model = Model.newInstance("cnn")) {
            int samples = 24;
            float[] images = new float[samples * 36];
            float[] labels = new float[samples];
            for (int n = 0; n < samples; n++) {
                labels[n] = n % 2;
                for (int p = 0; p < 36; p++) {
                    int row = p / 6;
                    int column = p % 6;
                    double stripe = n % 2 == 0 ? Math.sin(row * 1.5) : Math.sin(column * 1.5);
                    images[n * 36 + p] = (float) (stripe + 0.3 * Math.sin(n * 3.1 + p));
                }
            }
            ArrayDataset dataset =
                    new ArrayDataset.Builder()
                            .setData(manager.create(images, new Shape(samples, 1, 6, 6)))
                            .optLabels(manager.create(labels))
                            .setSampling(8, false)
                            .build();
            Engine.getInstance().setRandomSeed(4);
            model.setBlock(
                    new SequentialBlock()
                            .add(
                                    Conv2d.builder()
                                            .setKernelShape(new Shape(3, 3))
                                            .setFilters(3)
                                            .build())
                            .add(Activation.reluBlock())
                            .add(Blocks.batchFlattenBlock())
                            .add(Linear.builder().setUnits(2).build()));
            AdaHessian optimizer = forThisEngine(AdaHessian.builder()).build();
            DefaultTrainingConfig config =
                    optimizer.addTo(
                            new DefaultTrainingConfig(Loss.softmaxCrossEntropyLoss())
                                    .optDevices(new Device[] {Device.cpu()}));
            try (Trainer trainer = model.newTrainer(config)) {
                trainer.initialize(new Shape(1, 1, 6, 6));
                double before = datasetLoss(trainer, dataset, manager);
                EasyTrain.fit(trainer, 10, dataset, null);
                double after = datasetLoss(trainer, dataset, manager);
                Assert.assertTrue(Double.isFinite(after), "loss " + after);
                Assert.assertTrue(after < 0.5 * before, "loss from " + before + " to " + after);
            }
        }
    }

    private static double datasetLoss(Trainer trainer, ArrayDataset dataset, NDManager manager)
            throws IOException, TranslateException {
        double total = 0;
        int count = 0;
        try (NDManager scope = manager.newSubManager()) {
            for (Batch batch : dataset.getData(scope)) {
                NDList predictions = trainer.evaluate(batch.getData());
                total +=
                        trainer.getLoss().evaluate(batch.getLabels(), predictions).getFloat()
                                * batch.getSize();
                count += batch.getSize();
            }
        }
        return total / count;
    }
}
