package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.WeakHashMap;
import org.secorder.evaluation.HostArrays;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.RowMap;
import org.secorder.structured.internal.propagation.LeafLayer;

/**
 * A {@code LambdaBlock} that only moves values within a sample: a reshape, flatten, transpose or
 * any other permutation, named or anonymous.
 *
 * <p>The permutation is read from the block itself on the first input of each shape: it is run on
 * the distinct values {@code 1 .. size}, whose output says where each value came from, and on their
 * negatives, which must give the negated output (so the block is linear on that input, not a sort
 * or an activation); each sample must take its values from itself only, all samples the same way.
 * The block's output on the real input is then checked to be that permutation of it. The transposed
 * Jacobian is the inverse permutation, a gather; a plain reshape is a view.
 */
public final class MovingLayer extends LeafLayer implements RowMap {

    private static final Map<Block, Map<String, long[]>> MAPS =
            Collections.synchronizedMap(new WeakHashMap<>());

    private Shape inputShape;
    private Shape outputFeatures;
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
        if (shape.dimension() == 0 || shape.get(0) != batch || shape.size() != inputShape.size()) {
            throw new UnsupportedOperationException(
                    getDescription()
                            + " maps shape "
                            + inputShape
                            + " to "
                            + shape
                            + "; a block that moves values must keep the batch axis and the"
                            + " number of values per sample");
        }
        outputFeatures = shape.slice(1);
        long[] relative = relative(input);
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
        for (int j = 0; j < relative.length; j++) {
            if (relative[j] != j) {
                inverse = new long[relative.length];
                for (int k = 0; k < relative.length; k++) {
                    inverse[Math.toIntExact(relative[k])] = k;
                }
                break;
            }
        }
        return output;
    }

    private long[] relative(NDArray input) {
        String key = input.getManager().getEngine().getEngineName() + " " + inputShape;
        Map<String, long[]> maps = MAPS.computeIfAbsent(getBlock(), b -> new HashMap<>());
        synchronized (maps) {
            long[] known = maps.get(key);
            if (known != null) {
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
                    || image.getShape().size() != size) {
                throw unsupportedMap();
            }
            double[] forward = image.toType(DataType.FLOAT64, false).toDoubleArray();
            double[] backward = negated.toType(DataType.FLOAT64, false).toDoubleArray();
            return read(forward, backward, size, features);
        }
    }

    /** Reads the permutation of sample 0 from the probe's images, checking every sample's. */
    private long[] read(double[] forward, double[] backward, long size, long features) {
        long[] relative = new long[Math.toIntExact(features)];
        boolean[] hit = new boolean[relative.length];
        for (int i = 0; i < forward.length; i++) {
            double v = forward[i];
            if (v != Math.rint(v) || v < 1 || v > size || backward[i] != -v) {
                throw unsupportedMap();
            }
            long within = (long) v - 1 - i / features * features;
            int j = (int) (i % features);
            if (within < 0 || within >= features) {
                throw unsupportedMap();
            }
            if (i < features) {
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
                        + " is not a permutation of the values of each sample (checked on a probe"
                        + " of distinct values)");
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
        NDArray index = index(rows.getManager(), count, features, inverse);
        return rows.reshape(-1).take(index).reshape(new Shape(count).addAll(inputShape.slice(1)));
    }

    /** {@inheritDoc} */
    @Override
    public long workElements(ColumnSet columns, long count, boolean transposing) {
        if (!transposing || inverse == null) {
            return columns.elementCount(count);
        }
        return columns.elementCount(count) + 3 * columns.denseElements(count);
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        return inputShape == null ? 0 : 3 * inputShape.slice(1).size();
    }
}
