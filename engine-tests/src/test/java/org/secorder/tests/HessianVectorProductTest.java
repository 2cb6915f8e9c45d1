package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.GradientCollector;
import ai.djl.training.loss.Loss;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.secorder.core.Curvature;
import org.secorder.core.HessianVectorProduct;
import org.secorder.operator.CurvatureOperator;
import org.testng.Assert;
import org.testng.SkipException;
import org.testng.annotations.Test;

/**
 * Hessian-vector products against Hessians built independently: in closed form for quadratic and
 * cubic losses, and from central differences of DJL's own gradients for a small network.
 */
public class HessianVectorProductTest {

    private static final double[][] A = {{2, -1, 0.5}, {0.25, 3, -2}, {1, 0.75, -1.5}};
    private static final double[] X = {0.7, -1.3, 0.4};
    private static final double[] Y = {1.1, -0.6};
    private static final double[] AX = {0.3, -0.8, 1.7};
    private static final double[] VX = {0.9, 0.2, -1.4};
    private static final double[] VY = {-0.5, 1.6};

    /** Relative tolerance for products against closed forms, in float64. */
    private static final double CLOSED_FORM = 1e-9;

    /** Relative tolerance for products against central differences of gradients, in float64. */
    private static final double DIFFERENCES = 1e-6;

    @Test
    public void quadraticLossGivesTheClosedFormProduct() {
        EngineSupport.requireSecondDerivatives();
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, X);
            NDArray a = manager.create(flat(A), new Shape(3, 3));
            NDArray v = manager.create(VX);
            NDList product =
                    HessianVectorProduct.hvp(
                            () -> x.matMul(a).mul(x).sum(), new NDList(x), new NDList(v));
            // x^T A x has the Hessian A + A^T
            double[] expected = new double[3];
            for (int i = 0; i < 3; i++) {
                for (int j = 0; j < 3; j++) {
                    expected[i] += (A[i][j] + A[j][i]) * VX[j];
                }
            }
            Assert.assertEquals(product.size(), 1);
            Assert.assertEquals(product.get(0).getShape(), x.getShape());
            Assert.assertEquals(product.get(0).getDataType(), DataType.FLOAT64);
            Assertions.assertClose(product.get(0), expected, CLOSED_FORM);
        }
    }

    @Test
    public void cubicLossOfTwoParametersGivesTheClosedFormProduct() {
        EngineSupport.requireSecondDerivatives();
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, X);
            NDArray y = parameter(manager, Y);
            NDList product =
                    HessianVectorProduct.hvp(
                            cubic(manager, x, y),
                            new NDList(x, y),
                            new NDList(manager.create(VX), manager.create(VY)));
            double[][] expected = cubicProduct();
            Assertions.assertClose(product.get(0), expected[0], CLOSED_FORM);
            Assertions.assertClose(product.get(1), expected[1], CLOSED_FORM);
        }
    }

    @Test
    public void operatorOfALossMultipliesAsComputeDoes() {
        EngineSupport.requireSecondDerivatives();
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, X);
            NDArray y = parameter(manager, Y);
            CurvatureOperator operator =
                    HessianVectorProduct.builder()
                            .build()
                            .operator(cubic(manager, x, y), new NDList(x, y));
            Assert.assertSame(operator.getParameters().get(0), x);
            Assert.assertSame(operator.getParameters().get(1), y);
            double[][] expected = cubicProduct();
            for (int repeat = 0; repeat < 2; repeat++) {
                try (NDList product =
                        operator.multiply(new NDList(manager.create(VX), manager.create(VY)))) {
                    Assertions.assertClose(product.get(0), expected[0], CLOSED_FORM);
                    Assertions.assertClose(product.get(1), expected[1], CLOSED_FORM);
                }
            }
        }
    }

    @Test
    public void severalVectorsAtOnceGiveTheProductOfEach() {
        EngineSupport.requireSecondDerivatives();
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, X);
            NDArray y = parameter(manager, Y);
            CurvatureOperator operator =
                    HessianVectorProduct.builder()
                            .build()
                            .operator(cubic(manager, x, y), new NDList(x, y));
            NDList first = new NDList(manager.create(VX), manager.create(VY));
            NDList second = new NDList(manager.create(X), y.duplicate());
            List<NDList> products = operator.multiplyAll(List.of(first, second));
            Assert.assertEquals(products.size(), 2);
            double[][] expected = cubicProduct();
            Assertions.assertClose(products.get(0).get(0), expected[0], CLOSED_FORM);
            Assertions.assertClose(products.get(0).get(1), expected[1], CLOSED_FORM);
            NDList alone = operator.multiply(second);
            for (int i = 0; i < 2; i++) {
                Assertions.assertClose(
                        Assertions.values(products.get(1).get(i)),
                        Assertions.values(alone.get(i)),
                        CLOSED_FORM,
                        "second vector, parameter " + i);
            }
            expectArgumentError(() -> operator.multiplyAll(null), "vectors must not be null");
            List<NDList> withNull = new ArrayList<>();
            withNull.add(first);
            withNull.add(null);
            expectArgumentError(
                    () -> operator.multiplyAll(withNull), "vectors[1] must not be null");
            Assert.assertTrue(operator.multiplyAll(List.of()).isEmpty());
        }
    }

    @Test
    public void networkProductEqualsTheHessianFromGradientDifferencesTimesV() {
        EngineSupport.requireSecondDerivatives();
        try (NDManager manager = NDManager.newBaseManager()) {
            Network network = Network.create(manager);
            double[][] hessian =
                    CurvatureReference.hessian(
                            network.model, network.loss, network.input, network.target, 1e-3);
            NDList v = CurvatureReference.normalLike(network.parameters(), 11);
            NDList product =
                    HessianVectorProduct.modelHvp(
                            network.model,
                            network.loss,
                            new NDList(network.input),
                            new NDList(network.target),
                            v);
            double[] expected = CurvatureReference.multiply(hessian, CurvatureReference.flatten(v));
            Assertions.assertClose(
                    CurvatureReference.flatten(product), expected, DIFFERENCES, "H v");
            for (int i = 0; i < product.size(); i++) {
                Assert.assertEquals(
                        product.get(i).getShape(), network.parameters().get(i).getShape());
            }
        }
    }

    @Test
    public void createGraphGivesADifferentiableProduct() {
        EngineSupport.requireSecondDerivatives();
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, X);
            NDArray v = manager.create(VX);
            HessianVectorProduct hvp = HessianVectorProduct.builder().optCreateGraph(true).build();
            try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                // H v of sum(x^4) is 12 x^2 v; the gradient of its sum is 24 x v
                NDList product = hvp.compute(() -> x.pow(4).sum(), new NDList(x), new NDList(v));
                collector.backward(product.get(0).sum());
            }
            double[] expected = new double[3];
            for (int i = 0; i < 3; i++) {
                expected[i] = 24 * X[i] * VX[i];
            }
            Assertions.assertClose(x.getGradient(), expected, CLOSED_FORM);
        }
    }

    @Test
    public void callsLeaveNoTraceInsideAndOutsideACollector() {
        EngineSupport.requireSecondDerivatives();
        for (boolean inCollector : new boolean[] {false, true}) {
            try (NDManager manager = NDManager.newBaseManager()) {
                NDArray x = parameter(manager, X);
                NDArray y = parameter(manager, Y);
                x.setName("x");
                NDArray vx = manager.create(VX);
                NDArray vy = manager.create(VY);
                Supplier<NDArray> loss = cubic(manager, x, y);
                Runnable call =
                        () ->
                                HessianVectorProduct.hvp(loss, new NDList(x, y), new NDList(vx, vy))
                                        .close();
                call.run();
                if (inCollector) {
                    try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                        TraceSupport.Trace trace = TraceSupport.capture(manager, x, y, vx, vy);
                        call.run();
                        trace.assertUnchanged("inside a collector");
                    }
                } else {
                    TraceSupport.Trace trace = TraceSupport.capture(manager, x, y, vx, vy);
                    call.run();
                    trace.assertUnchanged("outside a collector");
                }
            }
        }
    }

    @Test
    public void aThrowingLossReachesTheCallerAndLeavesNoTrace() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, X);
            NDArray v = manager.create(VX);
            IllegalStateException failure = new IllegalStateException("loss failed");
            TraceSupport.Trace trace = TraceSupport.capture(manager, x, v);
            IllegalStateException thrown =
                    Assert.expectThrows(
                            IllegalStateException.class,
                            () ->
                                    HessianVectorProduct.hvp(
                                            () -> {
                                                x.mul(2);
                                                throw failure;
                                            },
                                            new NDList(x),
                                            new NDList(v)));
            Assert.assertSame(thrown, failure);
            trace.assertUnchanged("after the loss threw");
        }
    }

    @Test
    public void frozenAndUnusedParametersGiveZerosOrStrictErrors() {
        EngineSupport.requireSecondDerivatives();
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, X);
            NDArray unused = parameter(manager, Y);
            NDArray frozen = manager.create(new double[] {2, 3});
            Supplier<NDArray> loss = () -> x.pow(3).sum().add(frozen.sum());
            NDList params = new NDList(x, unused, frozen);
            NDList v = new NDList(manager.create(VX), manager.create(VY), manager.create(VY));
            NDList product = HessianVectorProduct.hvp(loss, params, v);
            double[] expected = new double[3];
            for (int i = 0; i < 3; i++) {
                expected[i] = 6 * X[i] * VX[i];
            }
            Assertions.assertClose(product.get(0), expected, CLOSED_FORM);
            Assertions.assertClose(product.get(1), new double[2], 0);
            Assertions.assertClose(product.get(2), new double[2], 0);
            HessianVectorProduct strict = HessianVectorProduct.builder().optStrict(true).build();
            IllegalArgumentException e =
                    Assert.expectThrows(
                            IllegalArgumentException.class, () -> strict.compute(loss, params, v));
            Assert.assertTrue(e.getMessage().contains("parameter 2"), e.getMessage());
            IllegalArgumentException unusedError =
                    Assert.expectThrows(
                            IllegalArgumentException.class,
                            () ->
                                    strict.compute(
                                            loss,
                                            new NDList(x, unused),
                                            new NDList(v.get(0), v.get(1))));
            Assert.assertTrue(
                    unusedError.getMessage().contains("does not depend on parameter 1"),
                    unusedError.getMessage());
        }
    }

    @Test
    public void badVectorsAreRejectedWithTheirArgumentNamed() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, X);
            NDArray y = parameter(manager, Y);
            Supplier<NDArray> loss = cubic(manager, x, y);
            NDList params = new NDList(x, y);
            NDArray vx = manager.create(VX);
            expectArgumentError(() -> HessianVectorProduct.hvp(loss, params, null), "v must not");
            expectArgumentError(
                    () -> HessianVectorProduct.hvp(loss, params, new NDList(vx)),
                    "v must hold one array per parameter: expected 2, got 1");
            expectArgumentError(
                    () ->
                            HessianVectorProduct.hvp(
                                    loss, params, new NDList(vx, manager.create(VX))),
                    "v: entry 1 must have the shape of parameter 1");
            expectArgumentError(
                    () ->
                            HessianVectorProduct.hvp(
                                    loss, params, new NDList(vx, manager.create(new float[2]))),
                    "v: entry 1 must have the data type of parameter 1");
            expectArgumentError(
                    () -> HessianVectorProduct.hvp(null, params, new NDList(vx)),
                    "func must not be null");
            expectArgumentError(
                    () -> HessianVectorProduct.hvp(loss, null, new NDList(vx)),
                    "params must not be null");
        }
    }

    @Test
    public void contradictoryOptionsAreRejected() {
        expectArgumentError(
                () ->
                        HessianVectorProduct.builder()
                                .optMethod(HessianVectorProduct.Method.FACTORED)
                                .build(),
                "FACTORED computes products of the GGN only");
        expectArgumentError(
                () ->
                        HessianVectorProduct.builder()
                                .optCurvature(Curvature.GGN)
                                .optMethod(HessianVectorProduct.Method.FACTORED)
                                .optCreateGraph(true)
                                .build(),
                "createGraph");
        expectArgumentError(
                () -> HessianVectorProduct.builder().optCurvature(null).build(),
                "curvature must not be null");
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = parameter(manager, X);
            expectArgumentError(
                    () ->
                            HessianVectorProduct.builder()
                                    .optCurvature(Curvature.GGN)
                                    .build()
                                    .operator(() -> x.sum(), new NDList(x)),
                    "curvature GGN needs the model's output and loss");
        }
    }

    @Test
    public void withoutSecondDerivativesTheHessianProductIsAClearError() {
        if (EngineSupport.hasSecondDerivatives()) {
            throw new SkipException("PyTorch has second derivatives; the products are tested");
        }
        try (NDManager manager = NDManager.newBaseManager()) {
            Network network = Network.create(manager);
            NDList v = CurvatureReference.normalLike(network.parameters(), 11);
            NDList callerArrays = network.parameters();
            callerArrays.addAll(v);
            TraceSupport.Trace trace =
                    TraceSupport.capture(manager, callerArrays.toArray(new NDArray[0]));
            UnsupportedOperationException e =
                    Assert.expectThrows(
                            UnsupportedOperationException.class,
                            () ->
                                    HessianVectorProduct.modelHvp(
                                            network.model,
                                            network.loss,
                                            new NDList(network.input),
                                            new NDList(network.target),
                                            v));
            String message = e.getMessage();
            Assert.assertTrue(message.contains("cannot differentiate _backward_"), message);
            Assert.assertTrue(message.contains("Hessian-vector product"), message);
            Assert.assertTrue(message.contains("Curvature.GGN"), message);
            trace.assertUnchanged("after the error");
        }
    }

    private static void expectArgumentError(Runnable call, String fragment) {
        IllegalArgumentException e = Assert.expectThrows(IllegalArgumentException.class, call::run);
        Assert.assertTrue(e.getMessage().contains(fragment), e.getMessage());
    }

    private static NDArray parameter(NDManager manager, double[] values) {
        NDArray array = manager.create(values);
        array.setRequiresGradient(true);
        return array;
    }

    /** {@code sum(x^3) + (a . x)(y . y)}. */
    private static Supplier<NDArray> cubic(NDManager manager, NDArray x, NDArray y) {
        NDArray a = manager.create(AX);
        return () -> x.pow(3).sum().add(x.mul(a).sum().mul(y.mul(y).sum()));
    }

    /**
     * The product of the cubic loss's Hessian, {@code [[diag(6x), 2 a y^T], [2 y a^T, 2 (a . x)
     * I]]}, with {@code (VX, VY)}.
     */
    private static double[][] cubicProduct() {
        double ax = dot(AX, X);
        double yv = dot(Y, VY);
        double av = dot(AX, VX);
        double[] px = new double[3];
        for (int i = 0; i < 3; i++) {
            px[i] = 6 * X[i] * VX[i] + 2 * AX[i] * yv;
        }
        double[] py = new double[2];
        for (int j = 0; j < 2; j++) {
            py[j] = 2 * Y[j] * av + 2 * ax * VY[j];
        }
        return new double[][] {px, py};
    }

    private static double dot(double[] a, double[] b) {
        double sum = 0;
        for (int i = 0; i < a.length; i++) {
            sum += a[i] * b[i];
        }
        return sum;
    }

    private static double[] flat(double[][] matrix) {
        double[] values = new double[matrix.length * matrix[0].length];
        for (int i = 0; i < matrix.length; i++) {
            System.arraycopy(matrix[i], 0, values, i * matrix[0].length, matrix[i].length);
        }
        return values;
    }

    /** A small float64 tanh network with softmax cross-entropy, and a batch. */
    static final class Network {

        final Block model;
        final Loss loss;
        final NDArray input;
        final NDArray target;

        private Network(Block model, Loss loss, NDArray input, NDArray target) {
            this.model = model;
            this.loss = loss;
            this.input = input;
            this.target = target;
        }

        /** {@code Linear(4) - tanh - Linear(3)} on 5 samples of 3 features, 3 classes. */
        static Network create(NDManager manager) {
            Block model =
                    new SequentialBlock()
                            .add(Linear.builder().setUnits(4).build())
                            .add(Activation.tanhBlock())
                            .add(Linear.builder().setUnits(3).build());
            model.initialize(manager, DataType.FLOAT64, new Shape(5, 3));
            CurvatureReference.randomize(model, 5);
            NDArray input = CurvatureReference.normalLike(manager.zeros(new Shape(5, 3)), 3);
            NDArray target = manager.create(new float[] {0, 2, 1, 1, 0});
            return new Network(model, Loss.softmaxCrossEntropyLoss(), input, target);
        }

        NDList parameters() {
            return new NDList(CurvatureReference.parameters(model));
        }
    }
}
