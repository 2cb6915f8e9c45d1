package org.secorder.tests.structured;

import ai.djl.basicmodelzoo.cv.classification.LeNet;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Blocks;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.convolutional.Conv1d;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.core.Linear;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.loss.L2Loss;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import ai.djl.util.Pair;
import org.secorder.structured.MemoryMeter;
import org.secorder.structured.StructuredDiagonal;
import org.secorder.structured.internal.columns.LocalColumns;
import org.secorder.structured.internal.propagation.TangentLayer;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * STRUCTURED on convolutional networks with smooth activations, where the curvature columns of the
 * activations stay local to their receptive fields: equal to float64 central differences of
 * first-order gradients, and within a memory budget that dense columns cannot meet.
 */
public class SmoothConvolutionStructuredTest {

    private static final double STEP = 1e-4;

    /**
     * Central differences with a step of 1e-4 are good to about 1e-8 of the second derivative, but
     * some diagonals here are tiny (a few 1e-7) next to gradients of order 1: relative to them the
     * differences' own error reaches 1e-6.
     */
    private static final double TOLERANCE = 1e-5;

    /** MXNet evaluates GELU in float32 even for float64 arrays (see ActivationStructuredTest). */
    private static final double FLOAT32_ACTIVATION_TOLERANCE = 1e-3;

    /** Conv - tanh - max pool - conv - tanh - max pool - linear, the benchmark's tanh CNN. */
    @Test
    public void tanhCnnMatchesGradientDifferences() {
        check(tanhCnn(), new Shape(3, 1, 8, 8), 10, STEP, TOLERANCE);
    }

    /** DJL's LeNet: sigmoid after its convolutions and its dense layers, average pooling. */
    @Test
    public void leNetMatchesGradientDifferences() {
        Block model = LeNet.builder().setNumChannels(new int[] {2, 3, 6, 5}).setOutSize(3).build();
        check(model, new Shape(2, 1, 12, 12), 3, STEP, TOLERANCE);
    }

    /**
     * {@code LeNet}'s convolutions take the forward route (their tangents against the dense sigmoid
     * columns), and the diagonal stays exact.
     */
    @Test
    public void leNetTakesTheForwardRouteExactly() {
        long routes = TangentLayer.forwardRouteCount();
        Block model = LeNet.builder().setNumChannels(new int[] {3, 4, 8, 6}).setOutSize(4).build();
        check(model, new Shape(3, 1, 12, 12), 4, STEP, TOLERANCE);
        Assert.assertTrue(TangentLayer.forwardRouteCount() > routes, "the forward route");
    }

    /**
     * Under a budget that one sample's tangents fit (twice over), {@code LeNet} takes the forward
     * route and the peak stays within the budget; the result agrees with the default budget's.
     */
    @Test
    public void leNetForwardRouteStaysWithinBudget() {
        checkLeNetUnderBudget(4L << 20, true);
    }

    /**
     * Where one sample's tangents would not fit half the memory budget, {@code LeNet} keeps the
     * backward route; the two routes, each checked against central differences above, agree.
     */
    @Test
    public void leNetTangentsOverHalfTheBudgetKeepTheBackwardRoute() {
        // the first convolution's 26 tangents per filter over 3 x 28 x 28 values, twice as they
        // pass a block: about 122,000 float64 values per sample, over half of 1 MiB
        checkLeNetUnderBudget(1L << 20, false);
    }

    /**
     * {@code LeNet} (1x28x28, channels 3 and 4, 60 and 40 units) takes the forward route under the
     * default budget; under the given one it takes the expected route, and the two agree.
     */
    private static void checkLeNetUnderBudget(long budget, boolean forwardRoute) {
        Shape inputShape = new Shape(2, 1, 28, 28);
        try (NDManager manager = NDManager.newBaseManager()) {
            Block leNet =
                    LeNet.builder().setNumChannels(new int[] {3, 4, 60, 40}).setOutSize(4).build();
            Block model = Fixtures.initialize(leNet, manager, inputShape, 91);
            NDArray input = Fixtures.normal(manager, 92, inputShape);
            NDArray labels = Fixtures.classes(manager, 2, 4);
            Loss loss = new SoftmaxCrossEntropyLoss();
            long routes = TangentLayer.forwardRouteCount();
            NDArray[] byDefault = Fixtures.structured(model, loss, input, labels, false);
            Assert.assertTrue(
                    TangentLayer.forwardRouteCount() > routes, "the forward route by default");
            routes = TangentLayer.forwardRouteCount();
            MemoryMeter meter = new MemoryMeter(budget);
            NDArray[] actual = Fixtures.structured(model, loss, input, labels, false, meter);
            Assert.assertEquals(
                    TangentLayer.forwardRouteCount() > routes, forwardRoute, "the forward route");
            if (forwardRoute) {
                Assert.assertTrue(
                        meter.getPeakBytes() <= budget,
                        "peak " + meter.getPeakBytes() + " bytes over the budget " + budget);
            }
            Fixtures.assertMatches(actual, new NDList(byDefault), 1e-10);
        }
    }

    /**
     * An overlapping max pooling, whose windows are not recognized, cannot push tangents: the
     * network keeps the backward route, exactly.
     */
    @Test
    public void unrecognizedPoolingKeepsTheBackwardRouteExactly() {
        Block model =
                new SequentialBlock()
                        .add(conv(3, 1, 1, 1))
                        .add(Activation.sigmoidBlock())
                        .add(Pool.maxPool2dBlock(new Shape(3, 3), new Shape(2, 2)))
                        .add(conv(4, 1, 1, 1))
                        .add(Activation.sigmoidBlock())
                        .add(Blocks.batchFlattenBlock())
                        .add(Linear.builder().setUnits(12).build())
                        .add(Activation.sigmoidBlock())
                        .add(Linear.builder().setUnits(3).build());
        long routes = TangentLayer.forwardRouteCount();
        check(model, new Shape(2, 1, 9, 9), 3, STEP, TOLERANCE);
        Assert.assertEquals(TangentLayer.forwardRouteCount(), routes, "the backward route");
    }

    /** GELU after a convolution and after a strided one, average pooling between. */
    @Test
    public void geluCnnMatchesGradientDifferences() {
        Block model =
                new SequentialBlock()
                        .add(conv(3, 1, 1, 1))
                        .add(Activation.geluBlock())
                        .add(Pool.avgPool2dBlock(new Shape(2, 2), new Shape(2, 2)))
                        .add(conv(4, 2, 1, 1))
                        .add(Activation.geluBlock())
                        .add(Networks.flatten())
                        .add(Networks.linear(3));
        boolean float32 = !Fixtures.isPyTorch();
        check(
                model,
                new Shape(2, 1, 10, 10),
                3,
                float32 ? 1e-3 : STEP,
                float32 ? FLOAT32_ACTIVATION_TOLERANCE : TOLERANCE);
    }

    /** SiLU with a residual block (a sum join) between its convolutions. */
    @Test
    public void siluResidualCnnMatchesGradientDifferences() {
        Block branch =
                new SequentialBlock()
                        .add(conv(2, 1, 1, 1))
                        .add(Activation.swishBlock(1f))
                        .add(conv(2, 1, 1, 1));
        Block model =
                new SequentialBlock()
                        .add(conv(2, 1, 1, 1))
                        .add(Activation.swishBlock(1f))
                        .add(Networks.sum(branch, Blocks.identityBlock()))
                        .add(Activation.swishBlock(1f))
                        .add(Pool.maxPool2dBlock(new Shape(2, 2), new Shape(2, 2)))
                        .add(Networks.flatten())
                        .add(Networks.linear(3));
        check(model, new Shape(2, 1, 6, 6), 3, STEP, TOLERANCE, true);
    }

    /**
     * Strides, padding 0 and larger than the kernel's reach, dilation, groups and convolutions
     * right after one another, against the reference diagonal.
     */
    @Test
    public void stridesPaddingAndDilationMatchReference() {
        Block model =
                new SequentialBlock()
                        .add(
                                Conv2d.builder()
                                        .setKernelShape(new Shape(3, 2))
                                        .setFilters(4)
                                        .optStride(new Shape(2, 1))
                                        .optPadding(new Shape(3, 0))
                                        .optDilation(new Shape(2, 1))
                                        .build())
                        .add(Activation.tanhBlock())
                        .add(
                                Conv2d.builder()
                                        .setKernelShape(new Shape(2, 2))
                                        .setFilters(4)
                                        .optGroups(2)
                                        .build())
                        .add(conv(3, 2, 0, 1))
                        .add(Activation.softPlusBlock())
                        .add(Pool.avgPool2dBlock(new Shape(2, 2), new Shape(2, 2)))
                        .add(Networks.flatten())
                        .add(Networks.linear(3));
        Shape inputShape = new Shape(3, 2, 11, 10);
        try (NDManager manager = NDManager.newBaseManager()) {
            Block initialized = Fixtures.initialize(model, manager, inputShape, 51);
            NDArray input = Fixtures.normal(manager, 52, inputShape);
            NDArray labels = Fixtures.classes(manager, 3, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] actual = Fixtures.structured(initialized, loss, input, labels, false);
            NDList expected = Fixtures.reference(initialized, loss, input, labels);
            Fixtures.assertMatches(actual, expected, Fixtures.tolerance());
        }
    }

    /**
     * One spatial axis, max pooling of three and average pooling of two in a row (kernel blocks of
     * six), padding and a strided first convolution: the shared columns' block sums and boxes along
     * a single axis.
     */
    @Test
    public void oneDimensionalPoolingBlocksMatchGradientDifferences() {
        Block model =
                new SequentialBlock()
                        .add(
                                Conv1d.builder()
                                        .setKernelShape(new Shape(3))
                                        .setFilters(3)
                                        .optStride(new Shape(2))
                                        .optPadding(new Shape(2))
                                        .build())
                        .add(Activation.tanhBlock())
                        .add(Pool.maxPool1dBlock(new Shape(3), new Shape(3)))
                        .add(Pool.avgPool1dBlock(new Shape(2), new Shape(2)))
                        .add(Conv1d.builder().setKernelShape(new Shape(2)).setFilters(4).build())
                        .add(Activation.tanhBlock())
                        .add(Networks.flatten())
                        .add(Networks.linear(3));
        check(model, new Shape(2, 2, 27), 3, STEP, TOLERANCE);
    }

    /**
     * Average pooling of three by three after a padded convolution, and origin rows split across
     * chunks by a small budget: boxes of partial and full rows.
     */
    @Test
    public void pooledBlocksOfThreeInSmallChunksMatchReference() {
        Block model =
                new SequentialBlock()
                        .add(conv(3, 1, 1, 1))
                        .add(Activation.tanhBlock())
                        .add(Pool.avgPool2dBlock(new Shape(3, 3), new Shape(3, 3)))
                        .add(conv(5, 1, 1, 1))
                        .add(Activation.tanhBlock())
                        .add(Networks.flatten())
                        .add(Networks.linear(3));
        Shape inputShape = new Shape(2, 1, 12, 9);
        try (NDManager manager = NDManager.newBaseManager()) {
            Block initialized = Fixtures.initialize(model, manager, inputShape, 71);
            NDArray input = Fixtures.normal(manager, 72, inputShape);
            NDArray labels = Fixtures.classes(manager, 2, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            long shared = LocalColumns.sharedProductCount();
            NDArray[] actual =
                    Fixtures.structured(
                            initialized, loss, input, labels, false, new MemoryMeter(1L << 15));
            Assert.assertTrue(
                    LocalColumns.sharedProductCount() > shared + 2, "not split into chunks");
            NDList expected = Fixtures.reference(initialized, loss, input, labels);
            Fixtures.assertMatches(actual, expected, Fixtures.tolerance());
        }
    }

    /**
     * The tanh network's curvature columns reach the first convolution's parameter rule in the
     * shared local form, and none of them is made dense on the way.
     */
    @Test
    public void tanhCnnKeepsColumnsLocal() {
        Shape inputShape = new Shape(3, 1, 8, 8);
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(tanhCnn(), manager, inputShape, 61);
            NDArray input = Fixtures.normal(manager, 62, inputShape);
            NDArray labels = Fixtures.classes(manager, 3, 10);
            long shared = LocalColumns.sharedProductCount();
            long dense = LocalColumns.denseFormCount();
            Fixtures.structured(model, new SoftmaxCrossEntropyLoss(), input, labels, false);
            Assert.assertTrue(LocalColumns.sharedProductCount() > shared, "no shared product");
            Assert.assertEquals(LocalColumns.denseFormCount(), dense, "local sets made dense");
        }
    }

    /**
     * Under a budget of 1 MiB the peak of the columns held at once stays within it, and the
     * diagonal is still exact.
     */
    @Test
    public void localColumnsStayWithinSmallBudget() {
        Block model =
                new SequentialBlock()
                        .add(conv(8, 1, 1, 1))
                        .add(Activation.tanhBlock())
                        .add(Pool.maxPool2dBlock(new Shape(2, 2), new Shape(2, 2)))
                        .add(conv(4, 1, 1, 1))
                        .add(Activation.tanhBlock());
        Shape inputShape = new Shape(4, 1, 16, 16);
        try (NDManager manager = NDManager.newBaseManager()) {
            Block initialized = Fixtures.initialize(model, manager, inputShape, 61);
            NDArray input = Fixtures.normal(manager, 62, inputShape);
            NDArray target = Fixtures.normal(manager, 63, new Shape(4, 4, 8, 8));
            Loss loss = new L2Loss();
            long budget = 1L << 20;
            MemoryMeter meter = new MemoryMeter(budget);
            NDArray[] actual =
                    StructuredDiagonal.compute(
                            initialized,
                            loss,
                            new NDList(input),
                            new NDList(target),
                            false,
                            false,
                            false,
                            meter,
                            manager);
            Assert.assertTrue(
                    meter.getPeakBytes() <= budget,
                    "peak " + meter.getPeakBytes() + " bytes over the budget " + budget);
            NDList expected = Fixtures.reference(initialized, loss, input, target);
            Fixtures.assertMatches(actual, expected, Fixtures.tolerance());
        }
    }

    private static Block tanhCnn() {
        return new SequentialBlock()
                .add(conv(3, 1, 1, 1))
                .add(Activation.tanhBlock())
                .add(Pool.maxPool2dBlock(new Shape(2, 2), new Shape(2, 2)))
                .add(conv(4, 1, 1, 1))
                .add(Activation.tanhBlock())
                .add(Pool.maxPool2dBlock(new Shape(2, 2), new Shape(2, 2)))
                .add(Networks.flatten())
                .add(Networks.linear(10));
    }

    private static Block conv(int filters, int stride, int padding, int dilation) {
        return Conv2d.builder()
                .setKernelShape(new Shape(3, 3))
                .setFilters(filters)
                .optStride(new Shape(stride, stride))
                .optPadding(new Shape(padding, padding))
                .optDilation(new Shape(dilation, dilation))
                .build();
    }

    private static void check(
            Block block, Shape inputShape, int classes, double step, double tolerance) {
        check(block, inputShape, classes, step, tolerance, false);
    }

    private static void check(
            Block block,
            Shape inputShape,
            int classes,
            double step,
            double tolerance,
            boolean fanInScale) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, inputShape, 81);
            // weights of scale 1 / sqrt(fan-in), as in ZooStructuredTest, so that the softmax does
            // not saturate (where the Hessian vanishes and differences see only rounding); not
            // everywhere, since smaller activations make near-ties of max pooling, whose switch
            // within a step spoils the differences
            for (Pair<String, Parameter> entry : model.getParameters()) {
                NDArray array = entry.getValue().getArray();
                if (fanInScale
                        && entry.getKey().endsWith("weight")
                        && array.getShape().dimension() > 1) {
                    array.muli(Math.sqrt(array.getShape().get(0) / (double) array.size()));
                }
            }
            NDArray input = Fixtures.normal(manager, 82, inputShape);
            int batch = Math.toIntExact(inputShape.get(0));
            NDArray labels = Fixtures.classes(manager, batch, classes);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] actual = Fixtures.structured(model, loss, input, labels, false);
            NDList expected = Fixtures.gradientDifferences(model, loss, input, labels, step);
            Fixtures.assertMatches(actual, expected, tolerance);
        }
    }
}
