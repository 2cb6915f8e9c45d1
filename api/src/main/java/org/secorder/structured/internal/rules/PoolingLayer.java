package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngine;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.SampleMap;
import org.secorder.structured.internal.propagation.LeafLayer;
import org.secorder.structured.internal.propagation.Propagation;

/**
 * A max or average pooling block from DJL's {@code Pool}: piecewise linear, so it adds no curvature
 * of its own.
 *
 * <p>DJL keeps the window settings of these blocks inside a lambda, so the transposed Jacobian is
 * taken from the engine's first-order autograd: one vector-Jacobian product through the block
 * itself for all columns at once, with every sample's input repeated once per column. The window
 * selection of max pooling depends only on the input, so this is exact.
 */
public final class PoolingLayer extends LeafLayer implements SampleMap {

    private NDArray input;
    private Shape inputShape;
    private Shape outputShape;

    /**
     * Creates the layer of a pooling block.
     *
     * @param description the block's path and kind
     * @param block the block
     */
    public PoolingLayer(String description, Block block) {
        super(description, block);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forwardLeaf(NDArray x) {
        input = getPropagation().keep(x);
        inputShape = x.getShape().slice(1);
        NDArray output = runBlock(x);
        outputShape = output.getShape().slice(1);
        return output;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        return inputNeeded ? apply(gradient, 1) : null;
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet transpose(ColumnSet columns) {
        return columns.mapSamples(this, inputShape);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray apply(NDArray rows, long k) {
        Propagation propagation = getPropagation();
        SecondOrderEngine engine = propagation.getEngine();
        NDArray repeated = k == 1 ? input.duplicate() : input.repeat(0, k);
        repeated.setRequiresGradient(true);
        RecordingScope recording = engine.recording(true);
        try {
            NDList outputs =
                    getBlock()
                            .forward(
                                    propagation.getParameterStore(),
                                    new NDList(repeated),
                                    propagation.isTraining());
            NDArray product = outputs.head().mul(rows.reshape(outputs.head().getShape())).sum();
            NDArray[] gradients = engine.gradient(product, new NDArray[] {repeated}, false);
            if (gradients[0] == null) {
                return repeated.zerosLike();
            }
            return gradients[0];
        } finally {
            recording.close();
        }
    }

    /** {@inheritDoc} */
    @Override
    public long workElements(ColumnSet columns, long count, boolean transposing) {
        if (!transposing) {
            return columns.elementCount(count);
        }
        return columns.elementCount(count) + columns.getBatchSize() * count * columnElements();
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        return inputShape == null ? 0 : 2 * (inputShape.size() + outputShape.size());
    }
}
