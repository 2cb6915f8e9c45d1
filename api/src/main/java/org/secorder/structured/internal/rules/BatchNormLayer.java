package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.ParameterList;
import ai.djl.nn.norm.BatchNorm;
import java.util.Arrays;
import org.secorder.structured.internal.PrivateFields;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DenseColumns;
import org.secorder.structured.internal.propagation.Accumulators;
import org.secorder.structured.internal.propagation.LeafLayer;
import org.secorder.structured.internal.propagation.Propagation;

/**
 * {@link BatchNorm} in inference mode: the per-channel affine map {@code y = gamma (x - mean) /
 * sqrt(var + eps) + beta} with the running statistics.
 *
 * <p>Its transposed Jacobian scales each channel by {@code gamma / sqrt(var + eps)}; {@code gamma}
 * sees the normalized input, {@code beta} a constant. The running statistics get zero diagonals:
 * they are not trained by gradients.
 */
public final class BatchNormLayer extends LeafLayer {

    private static final double RELATIVE_TOLERANCE = 1e-4;

    private final Parameter gamma;
    private final Parameter beta;
    private final Parameter runningMean;
    private final Parameter runningVar;
    private final int axis;
    private final float epsilon;
    private Shape featureShape;
    private int channelAxis;
    private NDArray channelScale;
    private NDArray normalized;

    /**
     * Creates the layer of a batch normalization block.
     *
     * @param description the block's path and kind
     * @param block the block
     */
    public BatchNormLayer(String description, BatchNorm block) {
        super(description, block);
        ParameterList parameters = block.getParameters();
        gamma = parameters.get("gamma");
        beta = parameters.get("beta");
        runningMean = parameters.get("runningMean");
        runningVar = parameters.get("runningVar");
        axis = PrivateFields.readInt(block, BatchNorm.class, "axis");
        epsilon = PrivateFields.readFloat(block, BatchNorm.class, "epsilon");
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forwardLeaf(NDArray input) {
        Propagation propagation = getPropagation();
        Shape shape = input.getShape();
        int dimension = shape.dimension();
        int channel = Math.floorMod(axis, dimension);
        if (channel == 0) {
            throw new UnsupportedOperationException(
                    getDescription() + " normalizes over the batch axis, which is not supported");
        }
        featureShape = shape.slice(1);
        channelAxis = channel - 1;
        long[] broadcast = new long[dimension];
        Arrays.fill(broadcast, 1);
        broadcast[channel] = shape.get(channel);
        Shape view = new Shape(broadcast);
        NDArray inverse = runningVar.getArray().add(epsilon).sqrt().pow(-1);
        NDArray scale = gamma.getArray().mul(inverse).reshape(view);
        NDArray mean = runningMean.getArray().reshape(view);
        normalized = propagation.keep(input.sub(mean).mul(inverse.reshape(view)));
        NDArray output = runBlock(input);
        NDArray expected = input.sub(mean).mul(scale).add(beta.getArray().reshape(view));
        double error = output.sub(expected).abs().max().toType(DataType.FLOAT64, false).getDouble();
        double size = expected.abs().max().toType(DataType.FLOAT64, false).getDouble();
        if (!(error <= RELATIVE_TOLERANCE * Math.max(1, size))) {
            throw new UnsupportedOperationException(
                    getDescription()
                            + " does not compute gamma (x - runningMean) / sqrt(runningVar + eps)"
                            + " + beta in inference mode (largest difference "
                            + error
                            + ")");
        }
        channelScale =
                propagation.keep(
                        scale.broadcast(new Shape(1).addAll(featureShape))
                                .reshape(1, featureShape.size()));
        return output;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        return inputNeeded
                ? gradient.mul(channelScale.reshape(new Shape(1).addAll(featureShape)))
                : null;
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet transpose(ColumnSet columns) {
        return columns.scale(channelScale, false);
    }

    /** {@inheritDoc} */
    @Override
    public void accumulate(ColumnSet columns) {
        Accumulators accumulators = getPropagation().getAccumulators();
        NDArray gammaSquares;
        NDArray betaSquares;
        if (featureShape.dimension() == 1) {
            NDArray diagonal = columns.diagonal();
            gammaSquares = diagonal.mul(normalized.square());
            betaSquares = diagonal;
        } else {
            DenseColumns dense = columns.dense();
            NDArray values = dense.shapedValues();
            int[] reduced = otherAxes();
            NDArray gammaProducts = values.mul(normalized.expandDims(1)).sum(reduced);
            NDArray betaProducts = values.sum(reduced);
            gammaSquares = dense.signedColumnSum(gammaProducts.square());
            betaSquares = dense.signedColumnSum(betaProducts.square());
        }
        if (!accumulators.isPerSample()) {
            gammaSquares = gammaSquares.sum(new int[] {0});
            betaSquares = betaSquares.sum(new int[] {0});
        }
        accumulators.add(gamma, gammaSquares);
        accumulators.add(beta, betaSquares);
    }

    private int[] otherAxes() {
        int[] axes = new int[featureShape.dimension() - 1];
        int k = 0;
        for (int i = 0; i < featureShape.dimension(); i++) {
            if (i != channelAxis) {
                axes[k++] = i + 2;
            }
        }
        return axes;
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasParameters() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public long workElements(ColumnSet columns, long count, boolean transposing) {
        long parameterRules =
                featureShape.dimension() == 1
                        ? columns.getBatchSize() * columns.getFeatureCount()
                        : 2 * columns.denseElements(count);
        return super.workElements(columns, count, transposing) + parameterRules;
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        return featureShape == null ? 0 : 4 * featureShape.size();
    }
}
