package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import java.util.Random;
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngine;
import org.secorder.evaluation.HostArrays;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DenseColumns;
import org.secorder.structured.internal.columns.LocalColumns;
import org.secorder.structured.internal.columns.LocalMap;
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
 *
 * <p>Where the windows do not overlap (kernel equal to stride, no padding), the transposed Jacobian
 * is the output repeated over each window times the product of ones, {@code J^T 1}: each input
 * element receives its own window's value times its weight (the selection of max pooling, {@code 1
 * / size} of average pooling). That is checked once per forward pass, against the engine's own
 * product with a random vector, and then maps {@link LocalColumns} without autograd.
 */
public final class PoolingLayer extends LeafLayer implements SampleMap, LocalMap {

    private static final double CHECK_TOLERANCE = 1e-5;

    private NDArray input;
    private Shape inputShape;
    private Shape outputShape;
    private long[] window;
    private NDArray selection;

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
        window = null;
        selection = null;
        if (inputShape.dimension() >= 2 && outputShape.dimension() == inputShape.dimension()) {
            checkWindows(output);
        }
        return output;
    }

    /** Keeps the selection if the pool's windows are the non-overlapping ones of its shapes. */
    private void checkWindows(NDArray output) {
        int spatial = inputShape.dimension() - 1;
        long[] candidate = new long[spatial];
        if (outputShape.get(0) != inputShape.get(0)) {
            return;
        }
        for (int i = 0; i < spatial; i++) {
            long out = outputShape.get(i + 1);
            if (out == 0 || inputShape.get(i + 1) / out == 0) {
                return;
            }
            candidate[i] = inputShape.get(i + 1) / out;
        }
        window = candidate;
        NDArray ones = apply(output.onesLike(), 1);
        Random random = new Random(output.size());
        double[] values = new double[Math.toIntExact(output.size())];
        for (int i = 0; i < values.length; i++) {
            values[i] = random.nextGaussian();
        }
        NDArray probe =
                HostArrays.create(output.getManager(), values, output.getShape())
                        .toType(output.getDataType(), false);
        NDArray expected = apply(probe, 1);
        NDArray local = upsample(probe).mul(ones);
        double scale = expected.abs().max().toType(DataType.FLOAT64, false).getDouble();
        double error = expected.sub(local).abs().max().toType(DataType.FLOAT64, false).getDouble();
        if (error <= CHECK_TOLERANCE * scale) {
            selection = getPropagation().keep(ones);
        } else {
            window = null;
        }
    }

    /** Repeats every output element over its window and pads to the input's size. */
    private NDArray upsample(NDArray rows) {
        NDArray spread = applyToPatches(rows);
        for (int i = 0; i < window.length; i++) {
            long covered = outputShape.get(i + 1) * window[i];
            spread = Strided.pad(spread, i + 2, 0, inputShape.get(i + 1) - covered);
        }
        return spread;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        return inputNeeded ? apply(gradient, 1) : null;
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet transpose(ColumnSet columns) {
        LocalColumns local = selection == null ? null : columns.local();
        if (local != null && local.fits(this, inputShape)) {
            return local.mapLocal(this, inputShape);
        }
        if (selection != null) {
            // every column repeated over the windows, times the selection: no autograd
            DenseColumns dense = columns.dense();
            long batch = dense.getBatchSize();
            long count = dense.getColumnCount();
            NDArray rows = dense.getValues().reshape(new Shape(batch * count).addAll(outputShape));
            NDArray spread =
                    upsample(rows)
                            .reshape(new Shape(batch, count).addAll(inputShape))
                            .mul(selection.expandDims(1));
            return new DenseColumns(
                    spread.reshape(batch, count, inputShape.size()), dense.getSigns(), inputShape);
        }
        return columns.mapSamples(this, inputShape);
    }

    /** {@inheritDoc} */
    @Override
    public long[] getLocalStride() {
        return window.clone();
    }

    /** {@inheritDoc} */
    @Override
    public long[] getLocalPadding() {
        return new long[window.length];
    }

    /** {@inheritDoc} */
    @Override
    public long[] getLocalExtent() {
        return window.clone();
    }

    /** {@inheritDoc} */
    @Override
    public NDArray applyToPatches(NDArray patches) {
        NDArray spread = patches;
        for (int i = 0; i < window.length; i++) {
            spread = spread.repeat(i + 2, window[i]);
        }
        return spread;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray getLocalFactor() {
        return selection;
    }

    /** {@inheritDoc} */
    @Override
    public boolean carriesFactor() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray mapFactor(NDArray factor) {
        return factor == null ? selection : upsample(factor).mul(selection);
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
        if (selection != null && columns instanceof LocalColumns) {
            LocalColumns local = (LocalColumns) columns;
            return columns.elementCount(count) + local.mapElements(this, inputShape, count);
        }
        if (selection != null && columns.localWindow() != null) {
            // the identity kernel, repeated over the windows, and the selection as its factor
            long batch = columns.getBatchSize();
            long channels = inputShape.get(0);
            long kernels = channels * channels * inputShape.slice(1).size() / outputShape.size();
            return columns.elementCount(count)
                    + 2 * batch * count
                    + 2 * kernels
                    + 3 * batch * inputShape.size();
        }
        long perColumn = columnElements();
        if (selection != null) {
            // the dense columns, repeated twice, padded and multiplied by the selection
            perColumn = 2 * outputShape.size() + 4 * inputShape.size();
        }
        return columns.elementCount(count) + columns.getBatchSize() * count * perColumn;
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        return inputShape == null ? 0 : 2 * (inputShape.size() + outputShape.size());
    }
}
