package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.BatchNorm;
import ai.djl.training.GradientCollector;
import ai.djl.training.loss.L2Loss;
import ai.djl.training.loss.Loss;
import java.util.List;
import org.secorder.core.Curvature;
import org.secorder.core.HessianVectorProduct;
import org.secorder.core.HessianVectorProduct.Method;
import org.secorder.operator.CurvatureOperator;
import org.testng.Assert;
import org.testng.SkipException;
import org.testng.annotations.Test;

/**
 * Products of the generalized Gauss-Newton matrix with vectors against {@code J^T H J v} built
 * independently: the Jacobian from central differences of forward passes, the loss Hessian by hand.
 * Exact on every engine: by double backward on PyTorch, from first derivatives on MXNet.
 */
public class GaussNewtonProductTest {

    /** Relative tolerance against the fourth-order differences of the Jacobian, in float64. */
    private static final double REFERENCE = 1e-7;

    /** Relative tolerance between two exact routes, in float64. */
    private static final double EXACT = 1e-10;

    @Test
    public void softmaxCrossEntropyProductEqualsTheDenseGaussNewtonTimesV() {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianVectorProductTest.Network network =
                    HessianVectorProductTest.Network.create(manager);
            double[][] ggn =
                    CurvatureReference.gaussNewton(
                            CurvatureReference.jacobian(network.model, network.input),
                            CurvatureReference.softmaxCrossEntropyHessians(
                                    network.model, network.input));
            NDList v = CurvatureReference.normalLike(network.parameters(), 23);
            NDList product =
                    ggn(Method.AUTO)
                            .compute(
                                    network.model,
                                    network.loss,
                                    inputs(network),
                                    targets(network),
                                    v);
            double[] expected = CurvatureReference.multiply(ggn, CurvatureReference.flatten(v));
            Assertions.assertClose(CurvatureReference.flatten(product), expected, REFERENCE, "G v");
            for (int i = 0; i < product.size(); i++) {
                Assert.assertEquals(
                        product.get(i).getShape(), network.parameters().get(i).getShape());
                Assert.assertSame(
                        product.get(i).getManager(), network.parameters().get(i).getManager());
            }
        }
    }

    @Test
    public void squaredErrorProductEqualsTheDenseGaussNewtonTimesV() {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianVectorProductTest.Network network =
                    HessianVectorProductTest.Network.create(manager);
            float weight = 0.7f;
            Loss loss = new L2Loss("l2", weight);
            NDArray target = CurvatureReference.normalLike(manager.zeros(new Shape(5, 3)), 31);
            double[][][] jacobian = CurvatureReference.jacobian(network.model, network.input);
            // weight * mean((z - t)^2) over N C elements: 2 weight / (N C) I per sample
            double[][][] hessians = new double[5][3][3];
            for (int n = 0; n < 5; n++) {
                for (int c = 0; c < 3; c++) {
                    hessians[n][c][c] = 2.0 * weight / 15;
                }
            }
            double[][] ggn = CurvatureReference.gaussNewton(jacobian, hessians);
            NDList v = CurvatureReference.normalLike(network.parameters(), 29);
            NDList product =
                    ggn(Method.AUTO)
                            .compute(network.model, loss, inputs(network), new NDList(target), v);
            double[] expected = CurvatureReference.multiply(ggn, CurvatureReference.flatten(v));
            Assertions.assertClose(CurvatureReference.flatten(product), expected, REFERENCE, "G v");
        }
    }

    @Test
    public void factoredAndAutogradRoutesAgree() {
        EngineSupport.requireSecondDerivatives();
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianVectorProductTest.Network network =
                    HessianVectorProductTest.Network.create(manager);
            NDList v = CurvatureReference.normalLike(network.parameters(), 37);
            double[] factored =
                    CurvatureReference.flatten(
                            ggn(Method.FACTORED)
                                    .compute(
                                            network.model,
                                            network.loss,
                                            inputs(network),
                                            targets(network),
                                            v));
            double[] autograd =
                    CurvatureReference.flatten(
                            ggn(Method.AUTOGRAD)
                                    .compute(
                                            network.model,
                                            network.loss,
                                            inputs(network),
                                            targets(network),
                                            v));
            Assertions.assertClose(factored, autograd, EXACT, "FACTORED against AUTOGRAD");
        }
    }

    @Test
    public void severalVectorsShareOneEvaluationAndGiveTheProductOfEach() {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianVectorProductTest.Network network =
                    HessianVectorProductTest.Network.create(manager);
            NDList first = CurvatureReference.normalLike(network.parameters(), 59);
            NDList second = CurvatureReference.normalLike(network.parameters(), 61);
            for (Method method : new Method[] {Method.AUTO, Method.FACTORED}) {
                CurvatureOperator operator =
                        ggn(method)
                                .operator(
                                        network.model,
                                        network.loss,
                                        inputs(network),
                                        targets(network));
                List<NDList> together = operator.multiplyAll(List.of(first, second));
                NDList[] alone = {operator.multiply(first), operator.multiply(second)};
                for (int j = 0; j < 2; j++) {
                    Assertions.assertClose(
                            CurvatureReference.flatten(together.get(j)),
                            CurvatureReference.flatten(alone[j]),
                            EXACT,
                            method + ", vector " + j);
                }
            }
        }
    }

    @Test
    public void productsLeaveNoTraceInsideAndOutsideACollector() {
        for (boolean inCollector : new boolean[] {false, true}) {
            try (NDManager manager = NDManager.newBaseManager()) {
                HessianVectorProductTest.Network network =
                        HessianVectorProductTest.Network.create(manager);
                NDList v = CurvatureReference.normalLike(network.parameters(), 41);
                NDList callerArrays = network.parameters();
                callerArrays.addAll(v);
                callerArrays.add(network.input);
                callerArrays.add(network.target);
                NDArray[] arrays = callerArrays.toArray(new NDArray[0]);
                Runnable call =
                        () ->
                                ggn(Method.AUTO)
                                        .compute(
                                                network.model,
                                                network.loss,
                                                inputs(network),
                                                targets(network),
                                                v)
                                        .close();
                call.run();
                if (inCollector) {
                    try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                        TraceSupport.Trace trace = TraceSupport.capture(manager, arrays);
                        call.run();
                        trace.assertUnchanged("inside a collector");
                    }
                } else {
                    TraceSupport.Trace trace = TraceSupport.capture(manager, arrays);
                    call.run();
                    trace.assertUnchanged("outside a collector");
                }
            }
        }
    }

    @Test
    public void trainingModeLeavesRunningStatisticsUnchanged() {
        List<Curvature> curvatures =
                EngineSupport.hasSecondDerivatives()
                        ? List.of(Curvature.GGN, Curvature.HESSIAN)
                        : List.of(Curvature.GGN);
        for (Curvature curvature : curvatures) {
            try (NDManager manager = NDManager.newBaseManager()) {
                Block model =
                        new SequentialBlock()
                                .add(Linear.builder().setUnits(2).build())
                                .add(BatchNorm.builder().build());
                model.initialize(manager, DataType.FLOAT32, new Shape(4, 3));
                float[] x = {1, -2, 3, 0.5f, 4, -1, 2, 2, -3, 1, 0, 5};
                NDList inputs = new NDList(manager.create(x, new Shape(4, 3)));
                float[] y = {1, 0, -1, 2, 0, 1, 1, -2};
                NDList targets = new NDList(manager.create(y, new Shape(4, 2)));
                NDArray[] parameters = CurvatureReference.parameters(model);
                // running statistics away from their initial values
                parameters[4].set(new float[] {0.25f, -0.5f});
                parameters[5].set(new float[] {1.5f, 0.75f});
                NDList v = new NDList();
                for (NDArray parameter : parameters) {
                    v.add(parameter.onesLike());
                }
                NDList callerArrays = new NDList(parameters);
                callerArrays.addAll(v);
                callerArrays.addAll(inputs);
                callerArrays.addAll(targets);
                TraceSupport.Trace trace =
                        TraceSupport.capture(manager, callerArrays.toArray(new NDArray[0]));
                NDList product =
                        HessianVectorProduct.builder()
                                .optCurvature(curvature)
                                .optTraining(true)
                                .build()
                                .compute(model, Loss.l2Loss(), inputs, targets, v);
                Assert.assertEquals(product.size(), parameters.length);
                product.close();
                trace.assertUnchanged(curvature + " product in training mode");
            }
        }
    }

    @Test
    public void createGraphGivesAProductWhoseGradientMatchesItsDifferences() {
        EngineSupport.requireSecondDerivatives();
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianVectorProductTest.Network network =
                    HessianVectorProductTest.Network.create(manager);
            NDList v = CurvatureReference.normalLike(network.parameters(), 67);
            NDList weights = CurvatureReference.normalLike(network.parameters(), 71);
            HessianVectorProduct differentiable =
                    HessianVectorProduct.builder()
                            .optCurvature(Curvature.GGN)
                            .optCreateGraph(true)
                            .build();
            NDArray[] parameters = CurvatureReference.parameters(network.model);
            for (NDArray parameter : parameters) {
                parameter.getGradient().subi(parameter.getGradient());
            }
            try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                NDList product =
                        differentiable.compute(
                                network.model, network.loss, inputs(network), targets(network), v);
                NDArray total = null;
                for (int i = 0; i < product.size(); i++) {
                    NDArray term = product.get(i).mul(weights.get(i)).sum();
                    total = total == null ? term : total.add(term);
                }
                collector.backward(total);
            }
            NDArray[] gradients = new NDArray[parameters.length];
            for (int i = 0; i < parameters.length; i++) {
                gradients[i] = parameters[i].getGradient();
            }
            double[] actual = CurvatureReference.flatten(gradients);
            // central differences of w . G(theta) v, each G v exact
            HessianVectorProduct plain =
                    HessianVectorProduct.builder().optCurvature(Curvature.GGN).build();
            double[] expected = new double[actual.length];
            double[] w = CurvatureReference.flatten(weights);
            int column = 0;
            for (NDArray parameter : parameters) {
                double[] values = parameter.toDoubleArray();
                for (int i = 0; i < values.length; i++) {
                    double h = 1e-4 * Math.max(1, Math.abs(values[i]));
                    double[] moved = values.clone();
                    moved[i] = values[i] + h;
                    parameter.set(moved);
                    double plus =
                            dot(
                                    w,
                                    plain.compute(
                                            network.model,
                                            network.loss,
                                            inputs(network),
                                            targets(network),
                                            v));
                    moved[i] = values[i] - h;
                    parameter.set(moved);
                    double minus =
                            dot(
                                    w,
                                    plain.compute(
                                            network.model,
                                            network.loss,
                                            inputs(network),
                                            targets(network),
                                            v));
                    parameter.set(values);
                    expected[column++] = (plus - minus) / (2 * h);
                }
            }
            Assertions.assertClose(actual, expected, 1e-6, "gradient of w . G v");
        }
    }

    private static double dot(double[] w, NDList product) {
        double[] p = CurvatureReference.flatten(product);
        product.close();
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            sum += w[i] * p[i];
        }
        return sum;
    }

    @Test
    public void frozenParametersGiveZerosAndTheRestIsUnchanged() {
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianVectorProductTest.Network network =
                    HessianVectorProductTest.Network.create(manager);
            NDList v = CurvatureReference.normalLike(network.parameters(), 43);
            NDList all =
                    ggn(Method.AUTO)
                            .compute(
                                    network.model,
                                    network.loss,
                                    inputs(network),
                                    targets(network),
                                    v);
            // the first layer's weight is frozen: its rows and columns leave the matrix
            NDArray frozen = network.parameters().get(0);
            frozen.setRequiresGradient(false);
            NDList reduced =
                    ggn(Method.AUTO)
                            .compute(
                                    network.model,
                                    network.loss,
                                    inputs(network),
                                    targets(network),
                                    v);
            Assertions.assertClose(reduced.get(0), new double[Math.toIntExact(frozen.size())], 0);
            // the last layer's bias row depends on the frozen weight's entries of v through the
            // coupling block only, so compare with the product of v zeroed there
            NDList zeroed = new NDList(v.get(0).zerosLike());
            for (int i = 1; i < v.size(); i++) {
                zeroed.add(v.get(i));
            }
            frozen.setRequiresGradient(true);
            NDList expected =
                    ggn(Method.AUTO)
                            .compute(
                                    network.model,
                                    network.loss,
                                    inputs(network),
                                    targets(network),
                                    zeroed);
            for (int i = 1; i < v.size(); i++) {
                Assertions.assertClose(
                        Assertions.values(reduced.get(i)),
                        Assertions.values(expected.get(i)),
                        EXACT,
                        "parameter " + i);
            }
            Assert.assertNotEquals(
                    Assertions.values(all.get(1)), Assertions.values(reduced.get(1)));
        }
    }

    @Test
    public void withoutSecondDerivativesTheAutogradRouteIsAClearError() {
        if (EngineSupport.hasSecondDerivatives()) {
            throw new SkipException("PyTorch has second derivatives; its GGN products are tested");
        }
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianVectorProductTest.Network network =
                    HessianVectorProductTest.Network.create(manager);
            NDList v = CurvatureReference.normalLike(network.parameters(), 47);
            UnsupportedOperationException e =
                    Assert.expectThrows(
                            UnsupportedOperationException.class,
                            () ->
                                    ggn(Method.AUTOGRAD)
                                            .compute(
                                                    network.model,
                                                    network.loss,
                                                    inputs(network),
                                                    targets(network),
                                                    v));
            Assert.assertTrue(e.getMessage().contains("Method.FACTORED"), e.getMessage());
        }
    }

    @Test
    public void withoutSecondDerivativesAnUnsupportedLossIsAClearError() {
        if (EngineSupport.hasSecondDerivatives()) {
            throw new SkipException("PyTorch's GGN products take any loss");
        }
        try (NDManager manager = NDManager.newBaseManager()) {
            HessianVectorProductTest.Network network =
                    HessianVectorProductTest.Network.create(manager);
            NDList v = CurvatureReference.normalLike(network.parameters(), 53);
            UnsupportedOperationException e =
                    Assert.expectThrows(
                            UnsupportedOperationException.class,
                            () ->
                                    ggn(Method.AUTO)
                                            .compute(
                                                    network.model,
                                                    new MeanSquare(),
                                                    inputs(network),
                                                    targets(network),
                                                    v));
            Assert.assertTrue(
                    e.getMessage().contains("which Secorder knows for: L2Loss"), e.getMessage());
            Assert.assertTrue(e.getMessage().contains("MeanSquare"), e.getMessage());
        }
    }

    /** A loss of the outputs alone that the structured rules do not know. */
    private static final class MeanSquare extends Loss {

        MeanSquare() {
            super("MeanSquare");
        }

        @Override
        public NDArray evaluate(NDList labels, NDList predictions) {
            return predictions.head().square().mean();
        }
    }

    private static HessianVectorProduct ggn(Method method) {
        return HessianVectorProduct.builder().optCurvature(Curvature.GGN).optMethod(method).build();
    }

    private static NDList inputs(HessianVectorProductTest.Network network) {
        return new NDList(network.input);
    }

    private static NDList targets(HessianVectorProductTest.Network network) {
        return new NDList(network.target);
    }
}
