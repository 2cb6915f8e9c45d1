package org.secorder.tests;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.training.dataset.Batch;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.training.loss.Loss;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianDiagonal.Method;
import org.secorder.training.DatasetCurvature;
import org.testng.Assert;
import org.testng.annotations.Test;

/** {@link DatasetCurvature}: the diagonal of the whole dataset's loss, batch by batch. */
public class DatasetCurvatureTest {

    private static final int SAMPLES = 23;
    private static final int BATCH = 5;

    private static SequentialBlock model(NDManager manager) {
        Engine.getInstance().setRandomSeed(21);
        SequentialBlock model = TrainingSupport.mlp();
        model.setInitializer(new NormalInitializer(0.8f), Parameter.Type.WEIGHT);
        model.setInitializer(new NormalInitializer(0.3f), Parameter.Type.BIAS);
        model.initialize(manager, DataType.FLOAT32, new Shape(1, TrainingSupport.FEATURES));
        return model;
    }

    private static DatasetCurvature structured() {
        return DatasetCurvature.builder()
                .optMethod(Method.STRUCTURED)
                .optProgressBar(false)
                .build();
    }

    /** The exact diagonal of the loss of one batch that holds all the data. */
    private static NDList fullBatch(NDManager manager, SequentialBlock model, Loss loss) {
        return HessianDiagonal.builder()
                .optMethod(Method.STRUCTURED)
                .build()
                .compute(
                        model,
                        loss,
                        new NDList(TrainingSupport.inputs(manager, SAMPLES)),
                        new NDList(TrainingSupport.labels(manager, SAMPLES)));
    }

    private static Iterable<Batch> batches(NDManager manager) {
        try {
            return TrainingSupport.dataset(manager, SAMPLES, BATCH).getData(manager);
        } catch (IOException | ai.djl.translate.TranslateException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    public void equalsTheDiagonalOfTheFullDatasetWithAnUnevenLastBatch() {
        try (NDManager manager = NDManager.newBaseManager()) {
            SequentialBlock model = model(manager);
            Loss loss = Loss.softmaxCrossEntropyLoss();
            NDList expected = fullBatch(manager, model, loss);
            NDList actual = structured().compute(model, loss, batches(manager));
            Assert.assertEquals(actual.size(), expected.size());
            for (int i = 0; i < actual.size(); i++) {
                Assert.assertEquals(actual.get(i).getShape(), expected.get(i).getShape());
                Assert.assertEquals(
                        actual.get(i).getName(), model.getParameters().get(i).getKey(), "name");
                Assertions.assertClose(
                        Assertions.values(actual.get(i)),
                        Assertions.values(expected.get(i)),
                        1e-5,
                        "parameter " + i);
            }
        }
    }

    @Test
    public void plainMeanOfTheBatchDiagonalsIsNotTheDatasetDiagonal() {
        // the weights matter on this data: 23 examples in batches of 5, the last one of 3
        try (NDManager manager = NDManager.newBaseManager()) {
            SequentialBlock model = model(manager);
            Loss loss = Loss.softmaxCrossEntropyLoss();
            NDList expected = fullBatch(manager, model, loss);
            List<double[]> batchDiagonals = new ArrayList<>();
            for (Batch batch : batches(manager)) {
                NDList diagonal =
                        HessianDiagonal.builder()
                                .optMethod(Method.STRUCTURED)
                                .build()
                                .compute(model, loss, batch.getData(), batch.getLabels());
                batchDiagonals.add(Assertions.values(diagonal.get(0)));
                batch.close();
            }
            Assert.assertEquals(batchDiagonals.size(), 5, "batches");
            double[] plain = new double[batchDiagonals.get(0).length];
            for (double[] diagonal : batchDiagonals) {
                for (int i = 0; i < plain.length; i++) {
                    plain[i] += diagonal[i] / batchDiagonals.size();
                }
            }
            double[] exact = Assertions.values(expected.get(0));
            double largest = 0;
            for (int i = 0; i < plain.length; i++) {
                largest = Math.max(largest, Math.abs(plain[i] - exact[i]));
            }
            Assert.assertTrue(largest > 1e-3, "the plain mean differs by only " + largest);
        }
    }

    @Test
    public void savedDiagonalsLoadByName() throws IOException {
        Path file = Files.createTempFile("curvature", ".ndlist");
        try (NDManager manager = NDManager.newBaseManager()) {
            SequentialBlock model = model(manager);
            NDList diagonal =
                    structured().compute(model, Loss.softmaxCrossEntropyLoss(), batches(manager));
            DatasetCurvature.save(diagonal, file);
            NDList loaded = DatasetCurvature.load(manager, file);
            Assert.assertEquals(loaded.size(), diagonal.size());
            for (int i = 0; i < diagonal.size(); i++) {
                String name = model.getParameters().get(i).getKey();
                NDArray byName = loaded.get(name);
                Assert.assertNotNull(byName, "no array named " + name);
                Assert.assertEquals(byName.getShape(), diagonal.get(i).getShape());
                Assert.assertEquals(byName.toByteArray(), diagonal.get(i).toByteArray(), name);
            }
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Test
    public void savingUnnamedArraysIsAClearError() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDList unnamed = new NDList(manager.ones(new Shape(2)));
            IllegalArgumentException error =
                    Assert.expectThrows(
                            IllegalArgumentException.class,
                            () ->
                                    DatasetCurvature.save(
                                            unnamed, new java.io.ByteArrayOutputStream()));
            Assert.assertTrue(error.getMessage().contains("name"), error.getMessage());
        }
    }

    @Test
    public void noBatchesIsAClearError() {
        try (NDManager manager = NDManager.newBaseManager()) {
            SequentialBlock model = model(manager);
            IllegalArgumentException error =
                    Assert.expectThrows(
                            IllegalArgumentException.class,
                            () ->
                                    structured()
                                            .compute(
                                                    model,
                                                    Loss.softmaxCrossEntropyLoss(),
                                                    new ArrayList<>()));
            Assert.assertTrue(error.getMessage().contains("batches"), error.getMessage());
        }
    }
}
