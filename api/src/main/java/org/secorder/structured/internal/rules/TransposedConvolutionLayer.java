package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.convolutional.Deconvolution;
import java.util.Arrays;
import org.secorder.structured.internal.PrivateFields;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DenseColumns;
import org.secorder.structured.internal.columns.RowMap;
import org.secorder.structured.internal.propagation.Accumulators;
import org.secorder.structured.internal.propagation.LeafLayer;
import org.secorder.structured.internal.propagation.Propagation;

/**
 * A transposed convolution (DJL's {@code Conv1dTranspose}, {@code Conv2dTranspose}) with any
 * stride, padding, output padding, dilation and groups, with or without bias: {@code y = C_W^T x +
 * b}, where {@code C_W} is the plain convolution with the block's weight {@code W} (laid out {@code
 * (inputChannels, outputChannels / groups, kernel...)}, as the engines' deconvolution reads it) and
 * its stride, padding, dilation and groups.
 *
 * <p>Linear in its input and in its parameters, it has no curvature of its own. Its transposed
 * Jacobian is that plain convolution, {@code C_W}, shared by all samples. The weight needs, per
 * sample and column {@code v} at the output, {@code J_W^T v}, the weight gradient of {@code <x, C_W
 * v>}: the patches of {@code v} (unfolded as a convolution's input) correlated with the sample's
 * input {@code x}; the bias needs the sum of {@code v} over positions.
 */
public final class TransposedConvolutionLayer extends LeafLayer implements RowMap {

    private static final double RELATIVE_TOLERANCE = 1e-4;

    private final Parameter weight;
    private final Parameter bias;
    private final Shape kernel;
    private final Shape stride;
    private final Shape padding;
    private final Shape outputPadding;
    private final Shape dilation;
    private final int groups;
    private final int spatial;
    private Shape inputShape;
    private Shape outputShape;
    private NDArray weightArray;
    private NDArray groupedInput;

    /**
     * Creates the layer of a transposed convolution block.
     *
     * @param description the block's path and kind
     * @param block the block
     */
    public TransposedConvolutionLayer(String description, Deconvolution block) {
        super(description, block);
        weight = block.getParameters().get("weight");
        boolean includeBias = PrivateFields.readBoolean(block, Deconvolution.class, "includeBias");
        bias = includeBias ? block.getParameters().get("bias") : null;
        kernel = shape(block, "kernelShape");
        stride = shape(block, "stride");
        padding = shape(block, "padding");
        outputPadding = shape(block, "outPadding");
        dilation = shape(block, "dilation");
        groups = PrivateFields.readInt(block, Deconvolution.class, "groups");
        spatial = kernel.dimension();
    }

    private static Shape shape(Deconvolution block, String name) {
        return (Shape) PrivateFields.read(block, Deconvolution.class, name);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forwardLeaf(NDArray input) {
        if (input.getShape().dimension() != spatial + 2) {
            throw new UnsupportedOperationException(
                    getDescription() + " gets an input of shape " + input.getShape());
        }
        Propagation propagation = getPropagation();
        NDArray output;
        try {
            output = runBlock(input);
        } catch (UnsupportedOperationException e) {
            throw new UnsupportedOperationException(
                    getDescription()
                            + " cannot run on the "
                            + input.getManager().getEngine().getEngineName()
                            + " engine ("
                            + e.getMessage()
                            + "): DJL 0.36.0 implements the transposed convolution on MXNet only",
                    e);
        }
        inputShape = input.getShape().slice(1);
        outputShape = output.getShape().slice(1);
        weightArray = propagation.keep(weight.getArray());
        long batch = input.getShape().get(0);
        long channels = inputShape.get(0);
        groupedInput =
                propagation.keep(
                        input.reshape(
                                batch, groups, channels / groups, inputShape.slice(1).size()));
        checkAdjoint(input, output);
        return output;
    }

    /**
     * Checks that the block computes {@code C_W^T x + b}: with {@code v = y - b}, {@code <v, v>}
     * must equal {@code <C_W v, x>}. This is what the rule's products assume, and not what every
     * engine computes (DJL 0.36.0 on MXNet gives another map when the dilation is not 1), nor what
     * a subclass has to compute.
     */
    private void checkAdjoint(NDArray input, NDArray output) {
        NDArray v = output;
        if (bias != null) {
            long[] view = new long[spatial + 2];
            Arrays.fill(view, 1);
            view[1] = outputShape.get(0);
            v = output.sub(bias.getArray().reshape(new Shape(view)));
        }
        NDArray z = apply(v);
        String problem = null;
        if (!z.getShape().equals(input.getShape())) {
            problem =
                    "the output "
                            + output.getShape()
                            + " does not have the shape that the convolution maps back to the"
                            + " input "
                            + input.getShape();
        } else {
            double left = total(v.square());
            double right = total(z.mul(input));
            double scale = left + Math.sqrt(total(z.square()) * total(input.square()));
            if (!(Math.abs(left - right) <= RELATIVE_TOLERANCE * scale)) {
                problem = "<y - b, y - b> = " + left + " but <C_W (y - b), x> = " + right;
            }
        }
        if (problem != null) {
            throw new UnsupportedOperationException(
                    getDescription()
                            + " does not compute the transposed convolution of its settings, the"
                            + " adjoint of the convolution with its weight, stride, padding,"
                            + " dilation and groups ("
                            + problem
                            + "); DJL 0.36.0 on MXNet computes another map when the dilation is"
                            + " not 1");
        }
    }

    private static double total(NDArray array) {
        return array.sum().toType(DataType.FLOAT64, false).getDouble();
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        return inputNeeded ? apply(gradient) : null;
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet transpose(ColumnSet columns) {
        return columns.map(this, inputShape);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray apply(NDArray rows) {
        NDArray result =
                rows.getNDArrayInternal()
                        .convolution(rows, weightArray, null, stride, padding, dilation, groups)
                        .head();
        // an output padding of a stride or more reaches positions that no input position has
        for (int i = 0; i < spatial; i++) {
            if (result.getShape().get(i + 2) > inputShape.get(i + 1)) {
                result = Strided.slice(result, i + 2, 0, inputShape.get(i + 1), 1);
            }
        }
        return result;
    }

    /** {@inheritDoc} */
    @Override
    public void accumulate(ColumnSet columns) {
        DenseColumns dense = columns.dense();
        long batch = dense.getBatchSize();
        long count = dense.getColumnCount();
        long filters = outputShape.get(0);
        long channels = inputShape.get(0);
        long positions = inputShape.slice(1).size();
        NDArray values = dense.getValues();
        NDArray rows = values.reshape(new Shape(batch * count).addAll(outputShape));
        // (N K, G, P, filters / G * kernel): the patches of every column at every input position
        NDArray patches = unfold(rows);
        NDArray inputs =
                groupedInput
                        .repeat(0, count)
                        .reshape(batch * count * groups, channels / groups, positions);
        NDArray products =
                inputs.matMul(patches.reshape(batch * count * groups, positions, -1))
                        .reshape(batch, count, weightArray.size());
        Accumulators accumulators = getPropagation().getAccumulators();
        Shape weightShape = weightArray.getShape();
        NDArray weightSquares =
                dense.signedColumnSum(products.square())
                        .reshape(new Shape(batch).addAll(weightShape));
        accumulators.addPerSample(weight, weightSquares);
        if (bias != null) {
            long outputPositions = outputShape.slice(1).size();
            NDArray sums =
                    values.reshape(batch, count, filters, outputPositions).sum(new int[] {3});
            NDArray biasSquares = dense.signedColumnSum(sums.square());
            accumulators.addPerSample(bias, biasSquares);
        }
    }

    /**
     * Unfolds rows at the output as the input of the plain convolution {@code C_W}: for every input
     * position, the values its kernel covers.
     *
     * @param rows {@code (R, filters, outputSpatial...)}
     * @return {@code (R, groups, positions, filters / groups * kernelSize)}
     */
    private NDArray unfold(NDArray rows) {
        long offsets = kernel.size();
        long count = rows.getShape().get(0);
        long filters = outputShape.get(0);
        long positions = inputShape.slice(1).size();
        // (R, filters, kernelSize, spatial...) with the kernel offset after the channel, as the
        // weight (channels, filters / groups, kernel...) flattens its last axes
        NDArray stacked =
                Strided.windows(rows, kernel, stride, padding, dilation, inputShape.slice(1));
        return stacked.reshape(count, groups, filters / groups * offsets, positions)
                .transpose(0, 1, 3, 2);
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasParameters() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public long workElements(ColumnSet columns, long count, boolean transposing) {
        long perSample = columnElements();
        if (!transposing) {
            perSample -= inputShape.size();
        }
        return columns.elementCount(count) + columns.getBatchSize() * count * perSample;
    }

    /**
     * Returns the elements per sample and column: the dense columns, padded, their patches, the
     * repeated input, the weight products and their squares, and the transposed columns.
     *
     * @return the element count
     */
    @Override
    public long columnElements() {
        if (inputShape == null) {
            return 0;
        }
        long weights = weightArray.size();
        long patches = inputShape.slice(1).size() * (outputShape.get(0) / groups) * kernel.size();
        return 2 * outputShape.size() + 2 * patches + inputShape.size() + 2 * weights;
    }
}
