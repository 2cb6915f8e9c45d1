package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.norm.LayerNorm;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import org.secorder.core.Curvature;
import org.secorder.core.HessianDiagonal;
import org.secorder.structured.MemoryMeter;
import org.secorder.structured.StructuredDiagonal;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * DJL's {@code LayerNorm} through its explicit rule: networks around it resolve to {@code
 * STRUCTURED} under {@code AUTO}, and their Hessian diagonal (and per-sample diagonals) match
 * float64 central differences of first-order gradients at every element of every parameter, on
 * every engine; the generalized Gauss-Newton diagonal matches {@code sum_n J_n^T H_n J_n} from
 * float64 differences of forward passes.
 */
public class LayerNormStructuredTest {

    private static final double STEP = 1e-5;
    private static final double TOLERANCE = 1e-6;
    private static final double JACOBIAN_TOLERANCE = 1e-7;
    private static final Shape SEQUENCES = new Shape(3, 4);
    private static final Shape IMAGES = new Shape(2, 1, 3, 3);

    @Test
    public void tanhClassifierMatchesGradientDifferences() {
        checkHessian(classifier(Activation.tanhBlock()), Networks.vectors(), 201);
    }

    @Test
    public void geluClassifierMatchesGradientDifferences() {
        if (Fixtures.isPyTorch()) {
            checkHessian(classifier(Activation.geluBlock()), Networks.vectors(), 202);
        } else {
            // MXNet evaluates GELU in float32 even for float64 arrays (as ActivationStructuredTest
            // notes), so its gradient differences are good to about 1e-4 with a step of 1e-3
            checkHessian(classifier(Activation.geluBlock()), Networks.vectors(), 202, 1e-3, 1e-3);
        }
    }

    @Test
    public void layerNormWithoutLearnedShiftMatchesGradientDifferences() {
        Block model =
                new SequentialBlock()
                        .add(Networks.linear(5))
                        .add(LayerNorm.builder().optCenter(false).optEpsilon(1e-3f).build())
                        .add(Activation.softPlusBlock())
                        .add(Networks.linear(3));
        checkHessian(model, Networks.vectors(), 203);
    }

    @Test
    public void layerNormOverLastAxisOfSequencesMatchesGradientDifferences() {
        // two positions of three features, each normalized on its own
        checkHessian(sequenceModel(), SEQUENCES, 204);
    }

    @Test
    public void layerNormOverAllAxesOfImagesMatchesGradientDifferences() {
        checkHessian(imageModel(LayerNorm.builder().build(), true), IMAGES, 205);
    }

    @Test
    public void layerNormOverTrailingImageAxesMatchesGradientDifferences() {
        // each channel's 2 x 2 plane normalized on its own, which takes out a bias per channel: the
        // convolution has none, whose Hessian diagonal would be zero
        checkHessian(imageModel(LayerNorm.builder().axis(2, 3).build(), false), IMAGES, 206);
    }

    @Test
    public void groupsInRunsUnderTinyBudgetGiveTheSameDiagonal() {
        // a budget of one byte puts every group's dense curvature columns in a run of its own (and
        // every sample and column in a chunk of its own)
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(sequenceModel(), manager, SEQUENCES, 213);
            NDArray input = Fixtures.normal(manager, 214, SEQUENCES);
            NDArray labels = Fixtures.classes(manager, 3, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] runs = compute(model, loss, input, labels, new MemoryMeter(1));
            NDArray[] whole = compute(model, loss, input, labels, new MemoryMeter(256L << 20));
            Fixtures.assertMatches(runs, whole, 1e-12);
            Fixtures.assertMatches(
                    runs,
                    Fixtures.gradientDifferences(model, loss, input, labels, STEP),
                    TOLERANCE);
        }
    }

    @Test
    public void perSampleHessianOfSequencesMatchesEachSampleAlone() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(sequenceModel(), manager, SEQUENCES, 207);
            NDArray input = Fixtures.normal(manager, 208, SEQUENCES);
            NDArray labels = Fixtures.classes(manager, 3, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] perSample =
                    StructuredDiagonal.compute(
                            model,
                            loss,
                            new NDList(input),
                            new NDList(labels),
                            false,
                            true,
                            false,
                            HessianDiagonal.DEFAULT_MEMORY_BUDGET,
                            manager);
            for (int n = 0; n < 3; n++) {
                NDIndex sample = new NDIndex("{}:{}", n, n + 1);
                NDArray[] actual = new NDArray[perSample.length];
                for (int p = 0; p < actual.length; p++) {
                    // the loss of the batch is the mean over its 3 samples
                    actual[p] = perSample[p].get(n).mul(3);
                }
                NDList expected =
                        Fixtures.gradientDifferences(
                                model, loss, input.get(sample), labels.get(sample), STEP);
                Fixtures.assertMatches(actual, expected, TOLERANCE);
            }
        }
    }

    @Test
    public void ggnOfTanhClassifierEqualsGaussNewtonReference() {
        checkGgn(classifier(Activation.tanhBlock()), Networks.vectors(), 209);
    }

    @Test
    public void ggnOfSequencesEqualsGaussNewtonReference() {
        checkGgn(sequenceModel(), SEQUENCES, 210);
    }

    @Test
    public void ownCurvatureChangesTheHessian() {
        // the Hessian and the GGN of the first layer differ by LayerNorm's own curvature (and
        // tanh's): the Hessian checks above would fail without the residual columns
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model =
                    Fixtures.initialize(
                            classifier(Activation.reluBlock()), manager, Networks.vectors(), 211);
            NDArray input = Fixtures.normal(manager, 212, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] hessian = Fixtures.structured(model, loss, input, labels, false);
            NDArray[] ggn = Fixtures.structured(model, loss, input, labels, true);
            double difference = hessian[0].sub(ggn[0]).abs().max().getDouble();
            Assert.assertTrue(
                    difference > 1e-3 * hessian[0].abs().max().getDouble(),
                    "difference " + difference);
            Fixtures.assertMatches(
                    hessian,
                    Fixtures.gradientDifferences(model, loss, input, labels, STEP),
                    TOLERANCE);
        }
    }

    private static NDArray[] compute(
            Block model, Loss loss, NDArray input, NDArray labels, MemoryMeter meter) {
        return StructuredDiagonal.compute(
                model,
                loss,
                new NDList(input),
                new NDList(labels),
                false,
                false,
                false,
                meter,
                input.getManager());
    }

    private static void checkHessian(Block block, Shape shape, long seed) {
        checkHessian(block, shape, seed, STEP, TOLERANCE);
    }

    private static void checkHessian(
            Block block, Shape shape, long seed, double step, double tolerance) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, shape, seed);
            NDArray input = Fixtures.normal(manager, seed + 1000, shape);
            NDArray labels = Fixtures.classes(manager, Math.toIntExact(shape.get(0)), 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            HessianDiagonal hessian = HessianDiagonal.builder().build();
            Assert.assertEquals(
                    hessian.resolve(model, loss),
                    HessianDiagonal.Method.STRUCTURED,
                    String.valueOf(hessian.unsupportedBlocks(model, loss)));
            NDList actual = hessian.compute(model, loss, new NDList(input), new NDList(labels));
            Fixtures.assertMatches(
                    actual.toArray(new NDArray[0]),
                    Fixtures.gradientDifferences(model, loss, input, labels, step),
                    tolerance);
        }
    }

    private static void checkGgn(Block block, Shape shape, long seed) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, shape, seed);
            NDArray input = Fixtures.normal(manager, seed + 1000, shape);
            NDArray labels = Fixtures.classes(manager, Math.toIntExact(shape.get(0)), 3);
            HessianDiagonal ggn = HessianDiagonal.builder().optCurvature(Curvature.GGN).build();
            Loss loss = new SoftmaxCrossEntropyLoss();
            Assert.assertEquals(ggn.resolve(model, loss), HessianDiagonal.Method.STRUCTURED);
            NDList actual = ggn.compute(model, loss, new NDList(input), new NDList(labels));
            Fixtures.assertMatches(
                    actual.toArray(new NDArray[0]),
                    GaussNewtonReference.softmaxCrossEntropy(model, input),
                    JACOBIAN_TOLERANCE);
        }
    }

    /** {@code Linear(5) - LayerNorm - activation - Linear(3)}. */
    private static Block classifier(Block activation) {
        return new SequentialBlock()
                .add(Networks.linear(5))
                .add(LayerNorm.builder().build())
                .add(activation)
                .add(Networks.linear(3));
    }

    /** {@code Linear(6)}, viewed as 2 positions of 3 features, LayerNorm over the last axis. */
    private static Block sequenceModel() {
        return new SequentialBlock()
                .add(Networks.linear(6))
                .add(new LambdaBlock(x -> new NDList(x.head().reshape(-1, 2, 3))))
                .add(LayerNorm.builder().axis(2).build())
                .add(Activation.tanhBlock())
                .add(Networks.flatten())
                .add(Networks.linear(3));
    }

    /** A 2 x 2 convolution to 2 channels of 2 x 2, a LayerNorm, tanh and a linear head. */
    private static Block imageModel(Block layerNorm, boolean bias) {
        return new SequentialBlock()
                .add(
                        Conv2d.builder()
                                .setKernelShape(new Shape(2, 2))
                                .setFilters(2)
                                .optBias(bias)
                                .build())
                .add(layerNorm)
                .add(Activation.tanhBlock())
                .add(Networks.flatten())
                .add(Networks.linear(3));
    }
}
