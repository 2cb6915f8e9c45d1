package org.secorder.tests;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.EasyTrain;
import ai.djl.training.Trainer;
import ai.djl.training.dataset.ArrayDataset;
import ai.djl.training.listener.TrainingListenerAdapter;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import java.util.ArrayList;
import java.util.List;
import org.secorder.core.HessianDiagonal;
import org.secorder.training.CurvatureListener;
import org.testng.Assert;
import org.testng.annotations.Test;

/** {@link CurvatureListener} inside {@link EasyTrain#fit}: no effect on training, its averages. */
public class CurvatureListenerTest {

    private static final int SAMPLES = 35;
    private static final int BATCH = 10;
    private static final String FIRST_WEIGHT = "01Linear_weight";

    private static Optimizer adam() {
        return Optimizer.adam().optLearningRateTracker(Tracker.fixed(0.05f)).build();
    }

    @Test
    public void trainingIsBitwiseIdenticalWithTheListener() {
        try (NDManager manager = NDManager.newBaseManager()) {
            ArrayDataset dataset = TrainingSupport.dataset(manager, SAMPLES, BATCH);
            List<byte[]> without = TrainingSupport.train(dataset, 2, adam());
            CurvatureListener listener = CurvatureListener.builder().build();
            List<byte[]> with = TrainingSupport.train(dataset, 2, adam(), listener);
            // 4 batches per epoch (the last of 5 examples), every one computed
            Assert.assertEquals(listener.getComputations(), 8, "diagonals computed");
            Assert.assertEquals(with.size(), without.size());
            for (int i = 0; i < with.size(); i++) {
                Assert.assertEquals(with.get(i), without.get(i), "parameter " + i + " differs");
            }
            // the run without the listener is itself reproducible, so the comparison means
            // something
            Assert.assertEquals(
                    TrainingSupport.train(dataset, 2, adam()).get(0), without.get(0), "rerun");
            listener.close();
        }
    }

    @Test
    public void comparisonSeesADiagonalThatDrawsRandomNumbers() {
        // the caveat of the documentation, and proof that the bitwise comparison can fail: in
        // training mode the model's dropout draws random numbers inside the diagonal's forward pass
        EngineSupport.requireSecondDerivatives();
        try (NDManager manager = NDManager.newBaseManager()) {
            ArrayDataset dataset = TrainingSupport.dataset(manager, SAMPLES, BATCH);
            List<byte[]> without = TrainingSupport.train(dataset, 1, adam());
            CurvatureListener listener =
                    CurvatureListener.builder()
                            .optHessianDiagonal(
                                    HessianDiagonal.builder()
                                            .optMethod(HessianDiagonal.Method.AUTOGRAD)
                                            .optTraining(true)
                                            .build())
                            .build();
            List<byte[]> with = TrainingSupport.train(dataset, 1, adam(), listener);
            Assert.assertNotEquals(with.get(0), without.get(0), "training mode changed nothing");
            listener.close();
        }
    }

    @Test
    public void averageIsTheBiasCorrectedMovingAverageOfTheLatestValues() {
        float decay = 0.8f;
        CurvatureListener listener =
                CurvatureListener.builder()
                        .optEvery(3)
                        .optDecay(decay)
                        .optMethod(HessianDiagonal.Method.STRUCTURED)
                        .build();
        List<double[]> seen = new ArrayList<>();
        TrainingListenerAdapter recorder =
                new TrainingListenerAdapter() {
                    @Override
                    public void onTrainingBatch(Trainer trainer, BatchData batchData) {
                        if (listener.getComputations() > seen.size()) {
                            try (NDArray latest = listener.getLatest(FIRST_WEIGHT)) {
                                seen.add(Assertions.values(latest));
                            }
                        }
                    }
                };
        try (NDManager manager = NDManager.newBaseManager();
                Model model = Model.newInstance("average")) {
            Engine.getInstance().setRandomSeed(3);
            model.setBlock(TrainingSupport.mlp());
            DefaultTrainingConfig config =
                    new DefaultTrainingConfig(Loss.softmaxCrossEntropyLoss())
                            .optOptimizer(adam())
                            .optDevices(new Device[] {Device.cpu()})
                            .addTrainingListeners(listener, recorder);
            try (Trainer trainer = model.newTrainer(config)) {
                trainer.initialize(new Shape(1, TrainingSupport.FEATURES));
                Assert.assertNull(listener.getLatest(FIRST_WEIGHT), "before the first batch");
                Assert.assertNull(listener.getAverage(FIRST_WEIGHT), "before the first batch");
                EasyTrain.fit(trainer, 2, TrainingSupport.dataset(manager, SAMPLES, BATCH), null);
            } catch (java.io.IOException | ai.djl.translate.TranslateException e) {
                throw new AssertionError(e);
            }
            // batches 0, 3 and 6 of 8
            Assert.assertEquals(listener.getComputations(), 3, "diagonals computed");
            Assert.assertEquals(seen.size(), 3, "latest values seen");
            double[] sum = new double[seen.get(0).length];
            for (double[] latest : seen) {
                for (int i = 0; i < sum.length; i++) {
                    sum[i] = decay * sum[i] + (1 - decay) * latest[i];
                }
            }
            double correction = 1 - Math.pow(decay, seen.size());
            double[] expected = new double[sum.length];
            for (int i = 0; i < sum.length; i++) {
                expected[i] = sum[i] / correction;
            }
            Assert.assertNotEquals(seen.get(0), seen.get(2), "the diagonal changes in training");
            try (NDArray average = listener.getAverage(FIRST_WEIGHT)) {
                Assertions.assertClose(Assertions.values(average), expected, 1e-5, "average");
            }
            listener.close();
        }
    }

    @Test
    public void latestIsTheDiagonalOfTheWholeBatchBeforeTheStep() {
        // checked on the first batch by another method: the exact double backward on PyTorch,
        // central differences of gradients on MXNet
        CurvatureListener listener =
                CurvatureListener.builder().optMethod(HessianDiagonal.Method.STRUCTURED).build();
        List<double[]> expected = new ArrayList<>();
        List<double[]> actual = new ArrayList<>();
        TrainingListenerAdapter checker =
                new TrainingListenerAdapter() {
                    @Override
                    public void onTrainingBatch(Trainer trainer, BatchData batchData) {
                        if (!expected.isEmpty()) {
                            return;
                        }
                        var batch = batchData.getBatch();
                        Assert.assertEquals(batch.getSize(), BATCH, "first batch");
                        var diagonal =
                                HessianDiagonal.builder()
                                        .optMethod(EngineSupport.workingMethod())
                                        .build()
                                        .compute(
                                                trainer.getModel().getBlock(),
                                                trainer.getLoss(),
                                                batch.getData(),
                                                batch.getLabels());
                        expected.add(Assertions.values(diagonal.get(0)));
                        diagonal.close();
                        try (NDArray latest = listener.getLatest(FIRST_WEIGHT)) {
                            actual.add(Assertions.values(latest));
                        }
                    }
                };
        try (NDManager manager = NDManager.newBaseManager()) {
            TrainingSupport.train(
                    TrainingSupport.dataset(manager, SAMPLES, BATCH), 1, adam(), listener, checker);
            Assert.assertEquals(actual.size(), 1);
            Assertions.assertClose(
                    actual.get(0),
                    expected.get(0),
                    EngineSupport.float32Tolerance(),
                    "latest diagonal of the first batch");
            listener.close();
        }
    }

    @Test
    public void unknownParameterNameIsAClearError() {
        CurvatureListener listener = CurvatureListener.builder().build();
        try (NDManager manager = NDManager.newBaseManager()) {
            TrainingSupport.train(
                    TrainingSupport.dataset(manager, SAMPLES, BATCH), 1, adam(), listener);
            IllegalArgumentException error =
                    Assert.expectThrows(
                            IllegalArgumentException.class, () -> listener.getLatest("nothing"));
            Assert.assertTrue(error.getMessage().contains(FIRST_WEIGHT), error.getMessage());
            listener.close();
        }
    }

    @Test
    public void builderRejectsBadSettings() {
        Assert.expectThrows(
                IllegalArgumentException.class,
                () -> CurvatureListener.builder().optEvery(0).build());
        Assert.expectThrows(
                IllegalArgumentException.class,
                () -> CurvatureListener.builder().optDecay(1f).build());
        Assert.expectThrows(
                IllegalArgumentException.class,
                () ->
                        CurvatureListener.builder()
                                .optMethod(HessianDiagonal.Method.GGN)
                                .optHessianDiagonal(HessianDiagonal.builder().build())
                                .build());
    }
}
