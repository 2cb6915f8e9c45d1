package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.WeakHashMap;
import org.secorder.evaluation.HostArrays;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.RowMap;
import org.secorder.structured.internal.propagation.LeafLayer;

/**
 * A {@code LambdaBlock} that only moves or selects values within a sample: a reshape, flatten,
 * transpose or any other permutation, or a selection of some of each sample's values (the last step
 * of a sequence, a crop, a slice), named or anonymous.
 *
 * <p>The map is read from the block itself on the first input of each shape: it is run on the
 * distinct values {@code 1 .. size}, whose output says where each value came from, and on their
 * negatives, which must give the negated output (so the block is linear on that input, not a sort
 * or an activation); each sample must take its values from itself only, all samples the same way,
 * and no value twice. The block's output on the real input is then checked to be that selection of
 * it. The transposed Jacobian puts each value back where it came from and zeros elsewhere, a gather
 * from the values and one zero; a plain reshape is a view.
 */
public final class MovingLayer extends LeafLayer implements RowMap {

    private static final Map<Block, Map<String, long[]>> MAPS =
            Collections.synchronizedMap(new WeakHashMap<>());

    private Shape inputShape;
    private Shape outputFeatures;
    // for each input feature, the output feature it went to, or the output count for none
    private long[] inverse;

    /**
     * Creates the layer of a lambda that may move values.
     *
     * @param description the block's path and kind
     * @param block the block
     */
    public MovingLayer(String description, Block block) {
        super(description, block);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forwardLeaf(NDArray input) {
        inputShape = input.getShape();
        NDArray output = runBlock(input);
        Shape shape = output.getShape();
        long batch = inputShape.get(0);
        long features = inputShape.size() / Math.max(1, batch);
        if (shape.dimension() == 0 || shape.get(0) != batch || shape.size() > inputShape.size()) {
            throw new UnsupportedOperationException(
                    getDescription()
                            + " maps shape "
                            + inputShape
                            + " to "
                            + shape
                            + "; a block that moves or selects values must keep the batch axis"
                            + " and at most the number of values per sample");
        }
        outputFeatures = shape.slice(1);
        long[] relative = relative(input, outputFeatures.size());
        NDManager manager = input.getManager();
        NDArray index = index(manager, batch, features, relative);
        NDArray moved = input.reshape(-1).take(index).reshape(shape);
        double error = moved.sub(output).abs().max().toType(DataType.FLOAT64, false).getDouble();
        if (!(error == 0)) {
            throw new UnsupportedOperationException(
                    getDescription()
                            + " does not move the values of its input as it moves a probe's");
        }
        inverse = null;
        boolean identity = relative.length == features;
        for (int j = 0; j < relative.length && identity; j++) {
            identity = relative[j] == j;
        }
        if (!identity) {
            inverse = new long[Math.toIntExact(features)];
            Arrays.fill(inverse, relative.length);
            for (int k = 0; k < relative.length; k++) {
                inverse[Math.toIntExact(relative[k])] = k;
            }
        }
        return output;
    }

    private long[] relative(NDArray input, long outputCount) {
        String key = input.getManager().getEngine().getEngineName() + " " + inputShape;
        Map<String, long[]> maps = MAPS.computeIfAbsent(getBlock(), b -> new HashMap<>());
        synchronized (maps) {
            long[] known = maps.get(key);
            if (known != null && known.length == outputCount) {
                return known;
            }
        }
        long[] found = probe(input);
        synchronized (maps) {
            maps.put(key, found);
        }
        return found;
    }

    private long[] probe(NDArray input) {
        long size = inputShape.size();
        long batch = inputShape.get(0);
        long features = size / batch;
        DataType type = input.getDataType();
        if (type != DataType.FLOAT64 && !(type == DataType.FLOAT32 && size < (1L << 24))) {
            throw new UnsupportedOperationException(
                    getDescription() + " gets " + type + " input, on which no probe is exact");
        }
        try (NDManager scope = input.getManager().newSubManager()) {
            NDArray values = scope.arange(1, size + 1, 1, type).reshape(inputShape);
            NDArray image = run(scope, values);
            NDArray negated = run(scope, values.neg());
            if (image == null
                    || negated == null
                    || !image.getShape().equals(negated.getShape())
                    || image.getShape().dimension() == 0
                    || image.getShape().get(0) != batch
                    || image.getShape().size() > size) {
                throw unsupportedMap();
            }
            double[] forward = image.toType(DataType.FLOAT64, false).toDoubleArray();
            double[] backward = negated.toType(DataType.FLOAT64, false).toDoubleArray();
            return read(forward, backward, size, features, forward.length / batch);
        }
    }

    /** Reads the selection of sample 0 from the probe's images, checking every sample's. */
    private long[] read(
            double[] forward, double[] backward, long size, long features, long outputs) {
        long[] relative = new long[Math.toIntExact(outputs)];
        boolean[] hit = new boolean[Math.toIntExact(features)];
        for (int i = 0; i < forward.length; i++) {
            double v = forward[i];
            if (v != Math.rint(v) || v < 1 || v > size || backward[i] != -v) {
                throw unsupportedMap();
            }
            long within = (long) v - 1 - i / outputs * features;
            int j = (int) (i % outputs);
            if (within < 0 || within >= features) {
                throw unsupportedMap();
            }
            if (i < outputs) {
                if (hit[(int) within]) {
                    throw unsupportedMap();
                }
                hit[(int) within] = true;
                relative[j] = within;
            } else if (relative[j] != within) {
                throw unsupportedMap();
            }
        }
        return relative;
    }

    private NDArray run(NDManager manager, NDArray input) {
        try {
            NDList outputs =
                    getBlock()
                            .forward(new ParameterStore(manager, false), new NDList(input), false);
            return outputs.size() == 1 ? outputs.head() : null;
        } catch (RuntimeException e) {
            return null;
        }
    }

    private UnsupportedOperationException unsupportedMap() {
        return new UnsupportedOperationException(
                getDescription()
                        + " neither moves nor selects the values of each sample, each at most once"
                        + " (checked on a probe of distinct values)");
    }

    private static NDArray index(NDManager manager, long rows, long features, long[] relative) {
        NDArray within =
                HostArrays.create(manager, relative, new Shape(relative.length)).expandDims(0);
        NDArray starts = manager.arange(0, rows * features, features, DataType.INT64).expandDims(1);
        return starts.add(within);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        if (!inputNeeded) {
            return null;
        }
        return inverse == null ? gradient.reshape(inputShape) : apply(gradient);
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet transpose(ColumnSet columns) {
        Shape features = inputShape.slice(1);
        return inverse == null ? columns.reshape(features) : columns.map(this, features);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray apply(NDArray rows) {
        long count = rows.getShape().get(0);
        long features = outputFeatures.size();
        NDArray flat = rows.reshape(count, features);
        if (inverse.length != features) {
            // one zero after each row's values, for the input values that were not selected
            NDArray zero = rows.getManager().zeros(new Shape(count, 1), rows.getDataType());
            flat = NDArrays.concat(new NDList(flat, zero), 1);
            features++;
        }
        NDArray index = index(rows.getManager(), count, features, inverse);
        return flat.reshape(-1).take(index).reshape(new Shape(count).addAll(inputShape.slice(1)));
    }

    /** {@inheritDoc} */
    @Override
    public long workElements(ColumnSet columns, long count, boolean transposing) {
        if (!transposing || inverse == null) {
            return columns.elementCount(count);
        }
        return columns.elementCount(count) + columns.getBatchSize() * count * columnElements();
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        // the dense columns, padded, and the gathered columns with their index
        return inputShape == null
                ? 0
                : 2 * (outputFeatures.size() + 1 + inputShape.slice(1).size());
    }
}
