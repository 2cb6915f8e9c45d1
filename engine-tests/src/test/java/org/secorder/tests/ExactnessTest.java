package org.secorder.tests;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.training.loss.L2Loss;
import ai.djl.training.loss.Loss;
import java.util.function.DoubleSupplier;
import org.secorder.core.HessianDiagonal;
import org.testng.Assert;
import org.testng.annotations.Test;

/** Diagonals of real models against hand-derived values and float64 second differences. */
public class ExactnessTest {

    private static HessianDiagonal float64Method() {
        return HessianDiagonal.builder().optMethod(EngineSupport.workingMethod()).build();
    }

    @Test
    public void linearWithL2LossMatchesClosedForm() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Engine.getInstance().setRandomSeed(7);
            int samples = 5;
            int features = 4;
            int outputs = 3;
            float weight = 0.8f;
            Block model = Linear.builder().setUnits(outputs).build();
            model.initialize(manager, DataType.FLOAT64, new Shape(samples, features));
            NDArray x =
                    manager.randomNormal(new Shape(samples, features))
                            .toType(DataType.FLOAT64, false);
            NDArray y =
                    manager.randomNormal(new Shape(samples, outputs))
                            .toType(DataType.FLOAT64, false);
            NDList diagonal =
                    float64Method()
                            .compute(model, new L2Loss("l2", weight), new NDList(x), new NDList(y));
            // loss = weight * mean over N*C of (pred - y)^2, pred_nk = sum_i W_ki x_ni + b_k:
            // d^2/dW_ki^2 = 2 weight / (N C) * sum_n x_ni^2, d^2/db_k^2 = 2 weight / C
            double[] xs = x.toDoubleArray();
            double[] expectedWeight = new double[outputs * features];
            for (int k = 0; k < outputs; k++) {
                for (int i = 0; i < features; i++) {
                    double sum = 0;
                    for (int n = 0; n < samples; n++) {
                        sum += xs[n * features + i] * xs[n * features + i];
                    }
                    expectedWeight[k * features + i] = 2.0 * weight / (samples * outputs) * sum;
                }
            }
            double[] expectedBias = new double[outputs];
            java.util.Arrays.fill(expectedBias, 2.0 * weight / outputs);
            Assertions.assertClose(
                    diagonal.get(0), expectedWeight, EngineSupport.float64Tolerance());
            Assertions.assertClose(diagonal.get(1), expectedBias, EngineSupport.float64Tolerance());
        }
    }

    @Test
    public void tanhNetworkWithSoftmaxCrossEntropyMatchesSecondDifferences() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Engine.getInstance().setRandomSeed(11);
            int samples = 8;
            SequentialBlock model =
                    new SequentialBlock()
                            .add(Linear.builder().setUnits(5).build())
                            .add(Activation.tanhBlock())
                            .add(Linear.builder().setUnits(3).build());
            model.setInitializer(new NormalInitializer(0.8f), Parameter.Type.WEIGHT);
            model.setInitializer(new NormalInitializer(0.3f), Parameter.Type.BIAS);
            model.initialize(manager, DataType.FLOAT64, new Shape(samples, 4));
            NDArray x = manager.randomNormal(new Shape(samples, 4)).toType(DataType.FLOAT64, false);
            NDArray y = manager.randomInteger(0, 3, new Shape(samples), DataType.INT32);
            Loss loss = Loss.softmaxCrossEntropyLoss();
            NDList diagonal = float64Method().compute(model, loss, new NDList(x), new NDList(y));
            DoubleSupplier value =
                    () -> {
                        try (NDManager scope = manager.newSubManager()) {
                            NDList predictions =
                                    model.forward(
                                            new ParameterStore(scope, false), new NDList(x), false);
                            NDArray l = loss.evaluate(new NDList(y), predictions);
                            double result = l.toType(DataType.FLOAT64, false).getDouble();
                            predictions.close();
                            l.close();
                            return result;
                        }
                    };
            for (int i = 0; i < diagonal.size(); i++) {
                NDArray parameter = model.getParameters().get(i).getValue().getArray();
                double[] expected = GroundTruth.secondDifferences(value, parameter, 1e-4);
                Assertions.assertClose(diagonal.get(i), expected, 1e-5);
            }
            Assert.assertEquals(diagonal.size(), 4);
        }
    }
}
