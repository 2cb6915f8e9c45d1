package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.ParameterStore;
import org.secorder.engine.SecondOrderEngines;
import org.secorder.structured.MemoryMeter;
import org.secorder.structured.internal.propagation.Layer;
import org.secorder.structured.internal.propagation.Propagation;
import org.secorder.structured.internal.propagation.TangentRule;
import org.secorder.structured.internal.propagation.Tangents;
import org.secorder.structured.internal.recognition.Recognition;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * The forward-mode rules of single blocks against float64 central differences of the blocks' own
 * forward passes: tangents pushed through a block, a convolution's parameter tangents and an
 * activation's curvature.
 */
public class TangentRuleTest {

    private static final double STEP = 1e-5;
    private static final double TOLERANCE = 1e-7;

    /** Tangents one group per input channel, through a strided, padded convolution. */
    @Test
    public void convolutionPushOfGroupedTangentsMatchesDifferences() {
        Block conv =
                Conv2d.builder()
                        .setKernelShape(new Shape(3, 3))
                        .setFilters(4)
                        .optStride(new Shape(2, 1))
                        .optPadding(new Shape(1, 1))
                        .build();
        checkPush(conv, new Shape(2, 3, 6, 5), 3, 2);
    }

    /** Tangents of one group, through a convolution. */
    @Test
    public void convolutionPushOfDenseTangentsMatchesDifferences() {
        Block conv = Conv2d.builder().setKernelShape(new Shape(2, 3)).setFilters(3).build();
        checkPush(conv, new Shape(2, 2, 5, 5), 1, 3);
    }

    /** The tangent of every weight and bias entry is the output's derivative by that entry. */
    @Test
    public void convolutionParameterTangentsMatchWeightDifferences() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block conv =
                    Conv2d.builder()
                            .setKernelShape(new Shape(3, 3))
                            .setFilters(2)
                            .optPadding(new Shape(1, 1))
                            .build();
            Shape shape = new Shape(2, 2, 4, 4);
            Forward forward = new Forward(manager, conv, shape);
            Tangents tangents = forward.rule.parameterTangents(0, shape.get(0));
            long[] counts = forward.rule.parameterTangentShape();
            Assert.assertEquals(tangents.getGroups(), counts[0]);
            Assert.assertEquals(tangents.getCount(), counts[1]);
            Assert.assertEquals(counts[1], 2 * 9 + 1, "weights per filter and the bias");
            NDArray all = tangents.ungrouped().getValues();
            Parameter weight = conv.getParameters().get("weight");
            Parameter bias = conv.getParameters().get("bias");
            for (long filter = 0; filter < counts[0]; filter++) {
                for (long entry : new long[] {0, 7, 13, counts[1] - 1}) {
                    boolean isBias = entry == counts[1] - 1;
                    NDArray array = (isBias ? bias : weight).getArray();
                    long flat = isBias ? filter : filter * (counts[1] - 1) + entry;
                    NDArray expected = forward.parameterDifference(array, flat);
                    NDArray actual = all.get(new NDIndex(":, 0, {}", filter * counts[1] + entry));
                    assertClose(actual, expected, "filter " + filter + ", entry " + entry);
                }
            }
        }
    }

    /** Max pooling passes each window's selected tangent entry. */
    @Test
    public void maxPoolingPushMatchesDifferences() {
        checkPush(Pool.maxPool2dBlock(new Shape(2, 2)), new Shape(2, 4, 6, 4), 2, 3);
    }

    /**
     * The overlapping average pooling of {@code LeNet}, with stride and padding, on small maps: one
     * matrix over all positions.
     */
    @Test
    public void overlappingAveragePoolingPushMatchesDifferences() {
        Block pool = Pool.avgPool2dBlock(new Shape(5, 5), new Shape(2, 2), new Shape(2, 2));
        checkPush(pool, new Shape(2, 3, 12, 10), 3, 2);
    }

    /**
     * The same pooling on {@code LeNet}'s 28x28 maps, where the pooling goes by one product per
     * axis rather than one matrix over all positions.
     */
    @Test
    public void largeAveragePoolingPushMatchesDifferences() {
        Block pool = Pool.avgPool2dBlock(new Shape(5, 5), new Shape(2, 2), new Shape(2, 2));
        checkPush(pool, new Shape(1, 2, 28, 28), 2, 1);
    }

    /** An activation scales the tangents by its derivative. */
    @Test
    public void activationPushMatchesDifferences() {
        checkPush(Activation.tanhBlock(), new Shape(2, 4, 3, 3), 2, 2);
    }

    /** An activation's curvature is the output gradient times its second derivative. */
    @Test
    public void activationCurvatureMatchesSecondDifferences() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(3, 5);
            Forward forward = new Forward(manager, Activation.sigmoidBlock(), shape);
            NDArray gradient = Fixtures.normal(manager, 3, shape);
            forward.layer.backward(gradient, false);
            NDArray actual = forward.rule.curvatureDiagonal();
            double step = 1e-4;
            NDArray second =
                    forward.run(forward.input.add(step))
                            .sub(forward.run(forward.input).mul(2))
                            .add(forward.run(forward.input.sub(step)))
                            .div(step * step);
            NDArray expected = second.mul(gradient).reshape(3, 5);
            double scale = expected.abs().max().getDouble();
            double error = actual.sub(expected).abs().max().getDouble();
            Assert.assertTrue(error <= 1e-6 * scale, "error " + error + " of " + scale);
        }
    }

    private static void checkPush(Block block, Shape shape, long groups, long count) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Forward forward = new Forward(manager, block, shape);
            Assert.assertTrue(forward.rule.pushes(), "the rule pushes tangents");
            long samples = shape.get(0);
            Shape features = shape.slice(1);
            NDArray values =
                    Fixtures.normal(
                            manager,
                            2,
                            new Shape(samples, groups, count, features.size() / groups));
            Tangents tangents = new Tangents(values, features);
            NDArray pushed = forward.rule.push(tangents, 0, samples).ungrouped().getValues();
            NDArray directions = tangents.ungrouped().getValues();
            for (long k = 0; k < groups * count; k++) {
                NDArray direction = directions.get(new NDIndex(":, 0, {}", k)).reshape(shape);
                NDArray expected =
                        forward.run(forward.input.add(direction.mul(STEP)))
                                .sub(forward.run(forward.input.sub(direction.mul(STEP))))
                                .div(2 * STEP)
                                .reshape(samples, -1);
                assertClose(pushed.get(new NDIndex(":, 0, {}", k)), expected, "tangent " + k);
            }
        }
    }

    private static void assertClose(NDArray actual, NDArray expected, String what) {
        Assert.assertEquals(actual.getShape(), expected.getShape(), what);
        double scale = Math.max(1, expected.abs().max().getDouble());
        double error = actual.sub(expected).abs().max().getDouble();
        Assert.assertTrue(error <= TOLERANCE * scale, what + ": error " + error);
    }

    /** A block's layer after one forward pass in float64. */
    private static final class Forward {

        final NDManager manager;
        final Block block;
        final NDArray input;
        final Layer layer;
        final TangentRule rule;
        final ParameterStore store;

        Forward(NDManager manager, Block block, Shape shape) {
            this.manager = manager;
            this.block = block;
            block.initialize(manager, DataType.FLOAT64, shape);
            input = Fixtures.normal(manager, 1, shape);
            store = new ParameterStore(manager, false);
            layer = Recognition.build(block, manager, false);
            Propagation propagation =
                    new Propagation(
                            manager,
                            SecondOrderEngines.forEngine(manager.getEngine()),
                            new MemoryMeter(1L << 30),
                            false,
                            shape.get(0),
                            false,
                            DataType.FLOAT64);
            layer.forward(propagation, input);
            rule = layer.tangentRule();
            Assert.assertNotNull(rule, "the block has forward-mode rules");
        }

        NDArray run(NDArray x) {
            return block.forward(store, new NDList(x), false).head();
        }

        /** The central difference of the output by one entry of a parameter array. */
        NDArray parameterDifference(NDArray array, long flat) {
            Shape shape = array.getShape();
            double[] values = array.toDoubleArray();
            double original = values[Math.toIntExact(flat)];
            values[Math.toIntExact(flat)] = original + STEP;
            array.set(values);
            NDArray plus = run(input);
            values[Math.toIntExact(flat)] = original - STEP;
            array.set(values);
            NDArray minus = run(input);
            values[Math.toIntExact(flat)] = original;
            array.set(values);
            Assert.assertEquals(array.getShape(), shape);
            return plus.sub(minus).div(2 * STEP).reshape(input.getShape().get(0), -1);
        }
    }
}
