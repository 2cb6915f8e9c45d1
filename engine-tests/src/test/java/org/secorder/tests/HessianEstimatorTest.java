package org.secorder.tests;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.EasyTrain;
import ai.djl.training.Trainer;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.training.loss.Loss;
import org.secorder.core.HessianVectorProduct;
import org.secorder.operator.CurvatureOperator;
import org.secorder.training.AdaHessian;
import org.secorder.training.HessianEstimator;
import org.testng.Assert;
import org.testng.SkipException;
import org.testng.annotations.Test;

/** {@link HessianEstimator#hutchinson}: exact where it must be, unbiased, and its clear error. */
public class HessianEstimatorTest {

    private static final int SAMPLES = 12;

    @Test
    public void hutchinsonIsExactWhenTheHessianIsDiagonal() {
        // y = w . x with L2Loss, 0.5 * mean (y - t)^2, on inputs with orthogonal columns: the
        // Hessian X^T X / N is diagonal, so z * (H z) = diag(H) for every sign vector z
        EngineSupport.requireSecondDerivatives();
        float[][] rows = {{1, 0, 0}, {0, 2, 0}, {0, 0, -3}, {-1, 0, 0}, {0.5f, 0, 0}};
        float[] flat = new float[rows.length * 3];
        for (int n = 0; n < rows.length; n++) {
            System.arraycopy(rows[n], 0, flat, 3 * n, 3);
        }
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Linear.builder().setUnits(1).optBias(false).build();
            model.initialize(manager, DataType.FLOAT32, new Shape(1, 3));
            NDList estimate =
                    HessianEstimator.hutchinson(3, 5)
                            .estimate(
                                    model,
                                    Loss.l2Loss(),
                                    new NDList(manager.create(flat, new Shape(rows.length, 3))),
                                    new NDList(manager.ones(new Shape(rows.length, 1))));
            double[] expected = new double[3];
            for (float[] row : rows) {
                for (int k = 0; k < 3; k++) {
                    expected[k] += row[k] * row[k] / (double) rows.length;
                }
            }
            Assertions.assertClose(Assertions.values(estimate.get(0)), expected, 1e-6, "diagonal");
        }
    }

    @Test
    public void hutchinsonAveragesToTheDiagonal() {
        EngineSupport.requireSecondDerivatives();
        int vectors = 300;
        try (NDManager manager = NDManager.newBaseManager()) {
            Engine.getInstance().setRandomSeed(8);
            SequentialBlock model = TrainingSupport.mlp();
            model.setInitializer(new NormalInitializer(0.8f), Parameter.Type.WEIGHT);
            model.initialize(manager, DataType.FLOAT32, new Shape(1, TrainingSupport.FEATURES));
            Loss loss = Loss.softmaxCrossEntropyLoss();
            NDList inputs = new NDList(TrainingSupport.inputs(manager, SAMPLES));
            NDList labels = new NDList(TrainingSupport.labels(manager, SAMPLES));
            NDList estimate =
                    HessianEstimator.hutchinson(vectors, 1).estimate(model, loss, inputs, labels);
            // ground truth from Hessian-vector products with unit vectors: the diagonal, and the
            // variance of one sample of element i, the sum of H_ij^2 over j != i
            CurvatureOperator hessian =
                    HessianVectorProduct.builder().build().operator(model, loss, inputs, labels);
            NDList parameters = hessian.getParameters();
            for (int p = 0; p < parameters.size(); p++) {
                int size = (int) parameters.get(p).size();
                double[] actual = Assertions.values(estimate.get(p));
                for (int i = 0; i < size; i++) {
                    double[] column = column(hessian, manager, p, i);
                    double diagonal = column[0];
                    double offDiagonal = column[1];
                    double bound = 5 * Math.sqrt(Math.max(offDiagonal, 0) / vectors) + 1e-5;
                    Assert.assertTrue(
                            Math.abs(actual[i] - diagonal) <= bound,
                            "parameter "
                                    + p
                                    + " element "
                                    + i
                                    + ": estimate "
                                    + actual[i]
                                    + ", diagonal "
                                    + diagonal
                                    + ", bound "
                                    + bound);
                }
            }
        }
    }

    /**
     * Returns {@code H_ii} and {@code sum_{j != i} H_ij^2} for element {@code i} of parameter
     * {@code p}, from the product with the unit vector.
     */
    private static double[] column(CurvatureOperator hessian, NDManager manager, int p, int i) {
        NDList parameters = hessian.getParameters();
        try (NDManager scope = manager.newSubManager()) {
            NDList unit = new NDList();
            for (int q = 0; q < parameters.size(); q++) {
                NDArray vector = scope.zeros(parameters.get(q).getShape());
                if (q == p) {
                    float[] values = new float[(int) parameters.get(q).size()];
                    values[i] = 1;
                    vector = scope.create(values, parameters.get(q).getShape());
                }
                unit.add(vector);
            }
            NDList column = hessian.multiply(unit);
            column.attach(scope);
            double diagonal = Assertions.values(column.get(p))[i];
            double offDiagonal = -diagonal * diagonal;
            for (NDArray part : column) {
                for (double value : Assertions.values(part)) {
                    offDiagonal += value * value;
                }
            }
            return new double[] {diagonal, offDiagonal};
        }
    }

    @Test
    public void hutchinsonWithoutSecondDerivativesIsAClearError() {
        if (EngineSupport.hasSecondDerivatives()) {
            throw new SkipException(EngineSupport.name() + " has Hessian-vector products");
        }
        try (NDManager manager = NDManager.newBaseManager()) {
            SequentialBlock model = TrainingSupport.mlp();
            model.initialize(manager, DataType.FLOAT32, new Shape(1, TrainingSupport.FEATURES));
            UnsupportedOperationException error =
                    Assert.expectThrows(
                            UnsupportedOperationException.class,
                            () ->
                                    HessianEstimator.hutchinson(1, 0)
                                            .estimate(
                                                    model,
                                                    Loss.softmaxCrossEntropyLoss(),
                                                    new NDList(
                                                            TrainingSupport.inputs(
                                                                    manager, SAMPLES)),
                                                    new NDList(
                                                            TrainingSupport.labels(
                                                                    manager, SAMPLES))));
            Assert.assertTrue(error.getMessage().contains("STRUCTURED"), error.getMessage());
        }
    }

    @Test
    public void defaultAdaHessianWithoutSecondDerivativesFailsClearlyInTraining() {
        if (EngineSupport.hasSecondDerivatives()) {
            throw new SkipException(EngineSupport.name() + " has Hessian-vector products");
        }
        try (NDManager manager = NDManager.newBaseManager();
                Model model = Model.newInstance("default-adahessian")) {
            model.setBlock(TrainingSupport.mlp());
            AdaHessian optimizer = AdaHessian.builder().build();
            DefaultTrainingConfig config =
                    optimizer.addTo(
                            new DefaultTrainingConfig(Loss.softmaxCrossEntropyLoss())
                                    .optDevices(new Device[] {Device.cpu()}));
            try (Trainer trainer = model.newTrainer(config)) {
                trainer.initialize(new Shape(1, TrainingSupport.FEATURES));
                UnsupportedOperationException error =
                        Assert.expectThrows(
                                UnsupportedOperationException.class,
                                () ->
                                        EasyTrain.fit(
                                                trainer,
                                                1,
                                                TrainingSupport.dataset(manager, SAMPLES, 4),
                                                null));
                Assert.assertTrue(
                        error.getMessage().contains("HessianEstimator.exact"), error.getMessage());
            }
        }
    }

    @Test
    public void hutchinsonNeedsAVector() {
        Assert.expectThrows(
                IllegalArgumentException.class, () -> HessianEstimator.hutchinson(0, 1));
    }
}
