package org.secorder.tests.structured;

import ai.djl.basicmodelzoo.cv.classification.LeNet;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.norm.BatchNorm;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import ai.djl.util.Pair;
import java.util.ArrayList;
import java.util.List;
import org.secorder.core.HessianDiagonal;
import org.secorder.structured.internal.propagation.TangentLayer;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * A structured computation leaves no trace on the caller's model, works inside an open gradient
 * collector, frees its arrays, and is exact in float32 to float32's precision.
 */
public class SideEffectsStructuredTest {

    /** Parameter values, gradients, names and gradient flags are bit for bit as before. */
    @Test
    public void parametersGradientsAndNamesAreUntouched() {
        checkUntouched(pooled(), new Shape(3, 2, 5, 5), 111);
    }

    /** The same on the forward route of {@code LeNet}'s convolutions. */
    @Test
    public void forwardRouteLeavesParametersGradientsAndNamesUntouched() {
        long routes = TangentLayer.forwardRouteCount();
        checkUntouched(leNet(), new Shape(3, 1, 12, 12), 117);
        Assert.assertTrue(TangentLayer.forwardRouteCount() > routes, "the forward route");
    }

    private static void checkUntouched(Block block, Shape shape, long seed) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, shape, seed);
            NDArray input = Fixtures.normal(manager, seed + 1, shape);
            int batch = Math.toIntExact(shape.get(0));
            NDArray labels = Fixtures.classes(manager, batch, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                NDList output =
                        model.forward(new ParameterStore(manager, false), new NDList(input), true);
                collector.backward(loss.evaluate(new NDList(labels), output));
            }
            List<double[]> before = state(model);
            List<String> names = names(model);
            Fixtures.structured(model, loss, input, labels, false);
            List<double[]> after = state(model);
            for (int i = 0; i < before.size(); i++) {
                Assert.assertEquals(after.get(i), before.get(i), "state " + i);
            }
            Assert.assertEquals(names(model), names);
        }
    }

    /**
     * Inside a gradient collector the caller has open (which puts MXNet in training mode), the
     * result for a model in inference mode with a batch normalization is the same as outside.
     */
    @Test
    public void worksInsideAnOpenGradientCollector() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(3, 2, 5, 5);
            Block block =
                    new SequentialBlock()
                            .add(BatchNorm.builder().build())
                            .add(pooled())
                            .add(Activation.tanhBlock());
            Block model = Fixtures.initialize(block, manager, shape, 113);
            NDArray input = Fixtures.normal(manager, 114, shape);
            NDArray labels = Fixtures.classes(manager, 3, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] outside = Fixtures.structured(model, loss, input, labels, false);
            NDArray[] inside;
            try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                inside = Fixtures.structured(model, loss, input, labels, false);
                NDArray x = manager.create(new double[] {2});
                x.setRequiresGradient(true);
                collector.backward(x.mul(x).sum());
                Assert.assertEquals(x.getGradient().getDouble(), 4.0, "the collector still works");
            }
            Fixtures.assertMatches(inside, outside, 0);
        }
    }

    /** The only arrays left in the caller's manager are the results. */
    @Test
    public void onlyResultsAreLeftInTheManager() {
        checkOnlyResults(pooled(), new Shape(3, 2, 5, 5), 115);
    }

    /** The same on the forward route, whose collected columns and tangents are all freed. */
    @Test
    public void forwardRouteLeavesOnlyResultsInTheManager() {
        long routes = TangentLayer.forwardRouteCount();
        checkOnlyResults(leNet(), new Shape(3, 1, 12, 12), 119);
        Assert.assertTrue(TangentLayer.forwardRouteCount() > routes, "the forward route");
    }

    private static void checkOnlyResults(Block block, Shape shape, long seed) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, shape, seed);
            NDArray input = Fixtures.normal(manager, seed + 1, shape);
            int batch = Math.toIntExact(shape.get(0));
            NDArray labels = Fixtures.classes(manager, batch, 3);
            int arrays = manager.getManagedArrays().size();
            NDArray[] results =
                    Fixtures.structured(model, new SoftmaxCrossEntropyLoss(), input, labels, false);
            Assert.assertEquals(manager.getManagedArrays().size(), arrays + results.length);
            for (NDArray result : results) {
                Assert.assertSame(result.getManager(), manager);
            }
        }
    }

    /**
     * One array passed as both the input and the target (an autoencoder's reconstruction loss) is
     * attached to the computation's scope once, so it stays open in its own manager, and the
     * diagonal is still exact.
     */
    @Test
    public void anArrayThatIsInputAndTargetStaysOpen() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model =
                    Fixtures.initialize(
                            Networks.twice(Activation.tanhBlock(), Activation.sigmoidBlock(), 4),
                            manager,
                            Networks.vectors(),
                            117);
            NDArray input = Fixtures.normal(manager, 118, Networks.vectors());
            Loss loss = Loss.l2Loss();
            NDArray[] actual = Fixtures.structured(model, loss, input, input, false);
            Assert.assertFalse(input.isReleased(), "the input was closed");
            Assert.assertSame(input.getManager(), manager);
            NDList expected = Fixtures.reference(model, loss, input, input);
            Assert.assertFalse(input.isReleased(), "the input was closed by the reference");
            Fixtures.assertMatches(actual, expected, Fixtures.tolerance());
        }
    }

    /**
     * In float32 the structured diagonal equals the exact one to 1e-4: double backward in float32
     * on PyTorch, float64 finite differences of the same network on MXNet.
     */
    @Test
    public void float32MatchesExactDiagonalToFloatPrecision() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block single =
                    Fixtures.initialize(
                            Networks.mlp(Activation.tanhBlock(), 3),
                            manager,
                            Networks.vectors(),
                            117,
                            DataType.FLOAT32);
            NDArray input = Fixtures.normal(manager, 118, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray input32 = input.toType(DataType.FLOAT32, false);
            NDArray[] actual = Fixtures.structured(single, loss, input32, labels, false);
            NDList expected;
            if (Fixtures.isPyTorch()) {
                expected =
                        HessianDiagonal.builder()
                                .optMethod(HessianDiagonal.Method.AUTOGRAD)
                                .build()
                                .compute(single, loss, new NDList(input32), new NDList(labels));
            } else {
                Block twin =
                        Fixtures.initialize(
                                Networks.mlp(Activation.tanhBlock(), 3),
                                manager,
                                Networks.vectors(),
                                117);
                for (int i = 0; i < single.getParameters().size(); i++) {
                    NDArray value = single.getParameters().valueAt(i).getArray();
                    value.toType(DataType.FLOAT64, false)
                            .copyTo(twin.getParameters().valueAt(i).getArray());
                }
                NDArray input64 = input32.toType(DataType.FLOAT64, false);
                expected = Fixtures.reference(twin, loss, input64, labels);
            }
            Assert.assertEquals(actual[0].getDataType(), DataType.FLOAT32);
            Fixtures.assertMatches(actual, expected, 1e-4);
        }
    }

    /** A small {@code LeNet} whose convolutions take the forward route. */
    private static Block leNet() {
        return LeNet.builder().setNumChannels(new int[] {3, 4, 8, 6}).setOutSize(3).build();
    }

    private static Block pooled() {
        return new SequentialBlock()
                .add(Conv2d.builder().setKernelShape(new Shape(2, 2)).setFilters(3).build())
                .add(Activation.tanhBlock())
                .add(Pool.maxPool2dBlock(new Shape(2, 2)))
                .add(Networks.flatten())
                .add(Networks.linear(3));
    }

    static List<double[]> state(Block model) {
        List<double[]> state = new ArrayList<>();
        for (Pair<String, Parameter> entry : model.getParameters()) {
            NDArray array = entry.getValue().getArray();
            state.add(array.toDoubleArray());
            // running statistics take no gradient
            state.add(array.hasGradient() ? array.getGradient().toDoubleArray() : new double[0]);
            state.add(new double[] {array.hasGradient() ? 1 : 0});
        }
        return state;
    }

    static List<String> names(Block model) {
        List<String> names = new ArrayList<>();
        for (Pair<String, Parameter> entry : model.getParameters()) {
            names.add(entry.getKey() + "=" + entry.getValue().getArray().getName());
        }
        return names;
    }
}
