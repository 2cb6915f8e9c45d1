package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import java.util.function.Supplier;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DenseColumns;
import org.secorder.structured.internal.columns.RowMap;
import org.secorder.structured.internal.propagation.Accumulators;
import org.secorder.structured.internal.propagation.LeafLayer;
import org.secorder.structured.internal.propagation.Propagation;

/**
 * A {@link Linear} block on a batch of vectors, {@code z = x W^T + b}.
 *
 * <p>Its parameters only need the per-sample diagonal of the columns at its output: {@code diag
 * H_W[k, i] = sum_n diagH_z[n, k] x[n, i]^2}, {@code diag H_b[k] = sum_n diagH_z[n, k]}.
 */
public final class LinearLayer extends LeafLayer implements RowMap, Accumulators.Deferred {

    private final Parameter weight;
    private final Parameter bias;
    private NDArray weightArray;
    private NDArray squaredInput;
    private Shape inputFeatures;

    /**
     * Creates the layer of a linear block.
     *
     * @param description the block's path and kind
     * @param block the block
     */
    public LinearLayer(String description, Linear block) {
        super(description, block);
        weight = block.getParameters().get("weight");
        bias = block.getParameters().contains("bias") ? block.getParameters().get("bias") : null;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forwardLeaf(NDArray input) {
        if (input.getShape().dimension() != 2) {
            throw new UnsupportedOperationException(
                    getDescription()
                            + " gets an input of shape "
                            + input.getShape()
                            + "; the structured method supports Linear on (batch, features)"
                            + " inputs only: flatten first");
        }
        Propagation propagation = getPropagation();
        weightArray = propagation.keep(weight.getArray());
        squaredInput = propagation.keep(input.square());
        inputFeatures = new Shape(input.getShape().get(1));
        NDArray output = runBlock(input);
        if (getBlock().getClass() != Linear.class) {
            // a subclass may compute something else: check that it is x W^T + b
            NDArray expected = input.matMul(weightArray.transpose());
            if (bias != null) {
                expected = expected.add(bias.getArray());
            }
            Outputs.check(this, output, expected, "x W^T + b");
        }
        return output;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        return inputNeeded ? gradient.matMul(weightArray) : null;
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet transpose(ColumnSet columns) {
        if (columns instanceof DenseColumns) {
            DenseColumns dense = (DenseColumns) columns;
            NDArray values = dense.matMul(weightArray);
            return new DenseColumns(values, dense.getSigns(), inputFeatures);
        }
        return columns.map(this, inputFeatures);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray apply(NDArray rows) {
        return rows.matMul(weightArray);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray applyToIdentity(Supplier<NDArray> identityRows, long offset, long count) {
        return weightArray.get(new NDIndex("{}:{}", offset, offset + count));
    }

    /** {@inheritDoc} */
    @Override
    public void accumulate(ColumnSet columns) {
        getPropagation().getAccumulators().defer(this, columns.diagonal());
    }

    /** {@inheritDoc} */
    @Override
    public void finish(NDArray diagonal, Accumulators accumulators) {
        if (accumulators.isPerSample()) {
            accumulators.add(weight, diagonal.expandDims(2).mul(squaredInput.expandDims(1)));
            if (bias != null) {
                accumulators.add(bias, diagonal);
            }
        } else {
            accumulators.add(weight, diagonal.transpose().matMul(squaredInput));
            if (bias != null) {
                accumulators.add(bias, diagonal.sum(new int[] {0}));
            }
            diagonal.close();
        }
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasParameters() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public long workElements(ColumnSet columns, long count, boolean transposing) {
        long outputs = columns.getFeatureCount();
        long inputs = inputFeatures.size();
        long batch = columns.getBatchSize();
        long work = columns.elementCount(count);
        if (columns instanceof DenseColumns) {
            work += columns.denseElements(count);
        } else {
            work += batch * count + count * outputs + batch * outputs;
        }
        if (transposing) {
            if (columns.isPerSample()) {
                work += batch * count * (outputs + inputs);
            } else {
                work += count * (outputs + inputs);
            }
        }
        return work;
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        Shape shape = weight.getArray().getShape();
        return 2 * shape.get(0) + shape.get(1);
    }
}
