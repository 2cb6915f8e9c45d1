package org.secorder.tests.structured;

import ai.djl.basicmodelzoo.basic.Mlp;
import ai.djl.basicmodelzoo.cv.classification.AlexNet;
import ai.djl.basicmodelzoo.cv.classification.GoogLeNet;
import ai.djl.basicmodelzoo.cv.classification.LeNet;
import ai.djl.basicmodelzoo.cv.classification.MobileNetV1;
import ai.djl.basicmodelzoo.cv.classification.MobileNetV2;
import ai.djl.basicmodelzoo.cv.classification.NiN;
import ai.djl.basicmodelzoo.cv.classification.ResNetV1;
import ai.djl.basicmodelzoo.cv.classification.SqueezeNet;
import ai.djl.basicmodelzoo.cv.classification.VGG;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.norm.BatchNorm;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import ai.djl.util.Pair;
import java.util.Random;
import org.secorder.core.HessianDiagonal;
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngines;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * DJL's model zoo: {@code AUTO} resolves to {@code STRUCTURED}, and {@code STRUCTURED} matches
 * float64 central differences of first-order gradients at sampled elements of every parameter.
 */
public class ZooStructuredTest {

    private static final double STEP = 1e-5;
    private static final double VALUE_STEP = 1e-4;
    private static final double TOLERANCE = 1e-4;
    private static final int SAMPLES = 2;
    private static final int HALVINGS = 6;

    @Test
    public void mlpWithReluMatchesGradientDifferences() {
        check(new Mlp(12, 3, new int[] {6, 5}), new Shape(4, 12));
    }

    @Test
    public void mlpWithTanhMatchesGradientDifferences() {
        check(new Mlp(12, 3, new int[] {6, 5}, Activation::tanh), new Shape(4, 12));
    }

    @Test
    public void leNetMatchesGradientDifferences() {
        Block model = LeNet.builder().setNumChannels(new int[] {2, 3, 6, 5}).setOutSize(3).build();
        check(model, new Shape(2, 1, 12, 12));
    }

    @Test
    public void ninMatchesGradientDifferences() {
        Block model = NiN.builder().setNumChannels(new int[] {2, 3, 3, 3}).build();
        check(model, new Shape(2, 1, 67, 67));
    }

    @Test
    public void resNetV1MatchesGradientDifferences() {
        Shape image = new Shape(3, 8, 8);
        Block model = ResNetV1.builder().setNumLayers(8).setImageShape(image).setOutSize(3).build();
        check(model, new Shape(2).addAll(image));
    }

    @Test
    public void resNet18MatchesGradientDifferences() {
        // the smallest image for which the zoo builds ResNet-18 (below 29 rows it builds only
        // the CIFAR depths 6n + 2): its bottleneck units, a 3x3 stem without pooling
        Shape image = new Shape(3, 29, 29);
        Block model =
                ResNetV1.builder().setNumLayers(18).setImageShape(image).setOutSize(3).build();
        check(model, new Shape(2).addAll(image), 1);
    }

    @Test
    public void resNet50MatchesGradientDifferences() {
        // on images of at most 28 rows the zoo builds ResNet-50 as a CIFAR network of three
        // stages of eight basic units; its ImageNet form (from 29 rows) has ResNet-18's
        // bottleneck units, wider, and 23.5 million parameters
        Shape image = new Shape(3, 8, 8);
        Block model =
                ResNetV1.builder().setNumLayers(50).setImageShape(image).setOutSize(3).build();
        check(model, new Shape(2).addAll(image), 1);
    }

    @Test
    public void mobileNetV1MatchesGradientDifferences() {
        // a quarter of the zoo's widths; five stride-2 convolutions take 8x8 to 1x1
        Block model = MobileNetV1.builder().optWidthMultiplier(0.25f).setOutSize(3).build();
        check(model, new Shape(2, 3, 8, 8), 1);
    }

    @Test
    public void mobileNetV2MatchesGradientDifferences() {
        // the zoo's stages, repeats (so its residual bottlenecks) and strides, narrower
        Block model =
                MobileNetV2.builder()
                        .optFilters(new int[] {8, 8, 8, 8, 8, 8, 8, 8, 16})
                        .optMultiTimes(new int[] {1, 2, 2, 2, 2, 2, 2})
                        .setOutSize(3)
                        .build();
        check(model, new Shape(2, 3, 8, 8), 1);
    }

    @Test
    public void squeezeNetMatchesGradientDifferences() {
        // the smallest image whose 3x3 poolings all fit their input (MXNet refuses a window
        // larger than the input, PyTorch's ceil mode does not)
        check(SqueezeNet.squeezenet(3), new Shape(2, 3, 25, 25), 1);
    }

    @Test
    public void googLeNetMatchesGradientDifferences() {
        check(GoogLeNet.builder().setOutSize(3).build(), new Shape(2, 3, 8, 8), 1);
    }

    @Test
    public void vggMatchesGradientDifferences() {
        // the zoo's VGG with two small convolution stages (its classifier keeps 4096 units)
        Block model =
                VGG.builder()
                        .setNumLayers(5)
                        .setConvArch(new int[][] {{1, 4}, {1, 8}})
                        .setOutSize(3)
                        .build();
        check(model, new Shape(2, 3, 8, 8), 1);
    }

    @Test
    public void alexNetMatchesGradientDifferences() {
        // the smallest image its strides allow, with few channels
        Block model =
                AlexNet.builder()
                        .setNumChannels(new int[] {4, 6, 8, 8, 6, 16, 16})
                        .setDropOutRate(0.5f)
                        .setOutSize(3)
                        .build();
        check(model, new Shape(2, 3, 67, 67), 1);
    }

    private static void check(Block block, Shape inputShape) {
        check(block, inputShape, SAMPLES);
    }

    /**
     * Checks {@code samples} random elements of every parameter array (the large networks check
     * one, to keep the suite's time).
     */
    private static void check(Block block, Shape inputShape, int samples) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = Fixtures.initialize(block, manager, inputShape, 71);
            // weights of scale 1 / sqrt(fan-in), so that deep models do not saturate the softmax
            // (where the Hessian vanishes and differences see only rounding)
            for (Pair<String, Parameter> entry : model.getParameters()) {
                NDArray array = entry.getValue().getArray();
                if (entry.getKey().endsWith("weight") && array.getShape().dimension() > 1) {
                    array.muli(Math.sqrt(array.getShape().get(0) / (double) array.size()));
                }
            }
            NDArray input = Fixtures.normal(manager, 72, inputShape);
            NDArray labels = Fixtures.classes(manager, Math.toIntExact(inputShape.get(0)), 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            HessianDiagonal hessian = HessianDiagonal.builder().build();
            Assert.assertEquals(
                    hessian.resolve(model, loss),
                    HessianDiagonal.Method.STRUCTURED,
                    String.valueOf(hessian.unsupportedBlocks(model, loss)));
            NDList actual =
                    HessianDiagonal.builder()
                            .optMethod(HessianDiagonal.Method.STRUCTURED)
                            .build()
                            .compute(model, loss, new NDList(input), new NDList(labels));
            Random random = new Random(73);
            // the rounding error of the reference: of gradient differences, negligible; of
            // second differences of loss values (MXNet with batch normalization), about 8 eps |L|
            // / h^2 after Richardson's extrapolation
            double loss0 = Math.abs(Fixtures.lossValue(model, loss, input, labels));
            boolean values = !Fixtures.isPyTorch() && hasBatchNorm(model);
            double rounding =
                    values
                            ? 8 * Math.ulp(1.0) * Math.max(1, loss0) / (VALUE_STEP * VALUE_STEP)
                            : 1e-9;
            int index = 0;
            for (Pair<String, Parameter> entry : model.getParameters()) {
                NDArray array = entry.getValue().getArray();
                double[] diagonal = actual.get(index++).toDoubleArray();
                if (!entry.getValue().requiresGradient()) {
                    for (double value : diagonal) {
                        Assert.assertEquals(value, 0.0, entry.getKey());
                    }
                    continue;
                }
                double scale = 0;
                for (double value : diagonal) {
                    scale = Math.max(scale, Math.abs(value));
                }
                for (int s = 0; s < samples; s++) {
                    int element = random.nextInt(diagonal.length);
                    String name = entry.getKey() + "[" + element + "]";
                    double expected = difference(model, loss, input, labels, array, element, 1);
                    double bound = TOLERANCE * Math.max(scale, Math.abs(expected)) + rounding;
                    if (Math.abs(diagonal[element] - expected) > bound) {
                        double[] settled =
                                settle(
                                        new Probe(model, loss, input, labels, array, element),
                                        expected,
                                        scale,
                                        values ? rounding : -rounding);
                        System.out.printf(
                                "%s (array's largest %.3g): %.10g; difference %.10g (bound %.3g),"
                                        + " settled at step / %.0f: %.10g (bound %.3g)%n",
                                name,
                                scale,
                                diagonal[element],
                                expected,
                                bound,
                                settled[2],
                                settled[0],
                                settled[1]);
                        expected = settled[0];
                        bound = settled[1];
                    }
                    Assert.assertEquals(diagonal[element], expected, bound, name);
                }
            }
        }
    }

    /**
     * Central difference of the float64 gradient of one element with respect to itself; on MXNet,
     * for a model with batch normalization, second differences of loss values instead.
     */
    private static double difference(
            Block model,
            Loss loss,
            NDArray input,
            NDArray labels,
            NDArray array,
            int element,
            double fraction) {
        Assert.assertEquals(array.getDataType(), DataType.FLOAT64);
        NDIndex index = new NDIndex(unravel(element, array.getShape()));
        double value = array.get(index).getDouble();
        if (!Fixtures.isPyTorch() && hasBatchNorm(model)) {
            // MXNet's batch-norm backward in inference mode returns the input gradient of
            // training mode, so only loss values are a ground truth there: Richardson's
            // extrapolation of second differences with steps h and 2h
            double h = fraction * VALUE_STEP * Math.max(1, Math.abs(value));
            double center = Fixtures.lossValue(model, loss, input, labels);
            double near = second(model, loss, input, labels, array, index, value, h, center);
            double far = second(model, loss, input, labels, array, index, value, 2 * h, center);
            return (4 * near - far) / 3;
        }
        double step = fraction * STEP * Math.max(1, Math.abs(value));
        array.set(index, value + step);
        double plus = gradient(model, loss, input, labels, array, element);
        array.set(index, value - step);
        double minus = gradient(model, loss, input, labels, array, element);
        array.set(index, value);
        return (plus - minus) / (2 * step);
    }

    /**
     * A ReLU, ReLU6 or max-pooling input within the step of its kink makes a difference wrong by
     * about (jump in the gradient) / (2 step): halves the step until two successive steps agree
     * within the bound (no kink crossed; for a smooth function they differ by O(step^2)).
     *
     * @param rounding the rounding estimate at the full step: positive for loss-value differences,
     *     whose rounding grows as 1 / step^2; negative (its magnitude) for gradient differences
     * @return the settled difference, its bound and the divisor of the step
     */
    private static double[] settle(Probe probe, double first, double scale, double rounding) {
        double fraction = 1;
        double previous = first;
        for (int k = 0; k < HALVINGS; k++) {
            fraction /= 2;
            double expected = probe.difference(fraction);
            double roundingAt =
                    rounding > 0 ? rounding / (fraction * fraction) : Math.abs(rounding);
            double bound = TOLERANCE * Math.max(scale, Math.abs(expected)) + roundingAt;
            if (Math.abs(expected - previous) <= bound) {
                return new double[] {expected, bound, 1 / fraction};
            }
            previous = expected;
        }
        throw new AssertionError(probe.name() + ": differences do not settle; last " + previous);
    }

    /** One element of a parameter of a model with its data, for differences. */
    private static final class Probe {

        private final Block model;
        private final Loss loss;
        private final NDArray input;
        private final NDArray labels;
        private final NDArray array;
        private final int element;

        Probe(Block model, Loss loss, NDArray input, NDArray labels, NDArray array, int element) {
            this.model = model;
            this.loss = loss;
            this.input = input;
            this.labels = labels;
            this.array = array;
            this.element = element;
        }

        double difference(double fraction) {
            return ZooStructuredTest.difference(
                    model, loss, input, labels, array, element, fraction);
        }

        String name() {
            return array.getName() + "[" + element + "]";
        }
    }

    private static boolean hasBatchNorm(Block block) {
        if (block instanceof BatchNorm) {
            return true;
        }
        for (Pair<String, Block> child : block.getChildren()) {
            if (hasBatchNorm(child.getValue())) {
                return true;
            }
        }
        return false;
    }

    private static double second(
            Block model,
            Loss loss,
            NDArray input,
            NDArray labels,
            NDArray array,
            NDIndex index,
            double value,
            double h,
            double center) {
        array.set(index, value + h);
        double plus = Fixtures.lossValue(model, loss, input, labels);
        array.set(index, value - h);
        double minus = Fixtures.lossValue(model, loss, input, labels);
        array.set(index, value);
        return (plus - 2 * center + minus) / (h * h);
    }

    private static double gradient(
            Block model, Loss loss, NDArray input, NDArray labels, NDArray array, int element) {
        try (NDManager scope = input.getManager().newSubManager()) {
            scope.tempAttachAll(input, labels);
            // gradients accumulate from one backward pass to the next on PyTorch
            for (Pair<String, Parameter> entry : model.getParameters()) {
                NDArray parameter = entry.getValue().getArray();
                if (parameter.hasGradient()) {
                    NDArray old = parameter.getGradient();
                    old.subi(old);
                }
            }
            try (GradientCollector collector = scope.getEngine().newGradientCollector()) {
                // a collector turns MXNet's training mode on; the model runs in inference mode
                RecordingScope mode = SecondOrderEngines.of(input).trainingMode(false);
                try {
                    NDList predictions =
                            model.forward(
                                    new ParameterStore(scope, false), new NDList(input), false);
                    collector.backward(loss.evaluate(new NDList(labels), predictions));
                } finally {
                    mode.close();
                }
            }
            return array.getGradient().reshape(-1).get(element).getDouble();
        }
    }

    private static long[] unravel(long flat, Shape shape) {
        long[] index = new long[shape.dimension()];
        long rest = flat;
        for (int axis = index.length - 1; axis >= 0; axis--) {
            index[axis] = rest % shape.get(axis);
            rest /= shape.get(axis);
        }
        return index;
    }
}
