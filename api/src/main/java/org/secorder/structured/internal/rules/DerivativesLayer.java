package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import java.util.List;
import org.secorder.structured.BlockDerivatives;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DenseColumns;
import org.secorder.structured.internal.columns.DiagonalColumns;
import org.secorder.structured.internal.columns.SampleMap;
import org.secorder.structured.internal.propagation.Accumulators;
import org.secorder.structured.internal.propagation.LeafLayer;
import org.secorder.structured.internal.propagation.Propagation;

/**
 * The layer of a block whose rule a user registered: the structured quantities computed from the
 * products of its {@link BlockDerivatives}, on dense columns.
 */
public final class DerivativesLayer extends LeafLayer implements SampleMap {

    private final BlockDerivatives derivatives;
    private final List<Parameter> parameters;
    private Shape inputShape;
    private Shape outputShape;
    private NDArray outputGradient;

    /**
     * Creates the layer of a block with a user's rule.
     *
     * @param description the block's path and kind
     * @param block the block
     * @param derivatives the block's derivatives for this computation
     */
    public DerivativesLayer(String description, Block block, BlockDerivatives derivatives) {
        super(description, block);
        this.derivatives = derivatives;
        this.parameters = List.copyOf(derivatives.getParameters());
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forwardLeaf(NDArray input) {
        Propagation propagation = getPropagation();
        inputShape = input.getShape();
        NDArray output =
                derivatives.forward(
                        propagation.getParameterStore(), input, propagation.isTraining());
        outputShape = output.getShape();
        if (outputShape.dimension() == 0 || outputShape.get(0) != inputShape.get(0)) {
            throw new UnsupportedOperationException(
                    getDescription()
                            + " changes the batch axis: "
                            + inputShape
                            + " to "
                            + outputShape);
        }
        propagation.keep(input);
        propagation.keep(output);
        return output;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        if (derivatives.hasCurvature()) {
            outputGradient = getPropagation().keep(gradient);
        }
        return inputNeeded ? derivatives.transposedJacobian(gradient, 1) : null;
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet transpose(ColumnSet columns) {
        return columns.mapSamples(this, inputShape.slice(1));
    }

    /** {@inheritDoc} */
    @Override
    public NDArray apply(NDArray rows, long k) {
        return derivatives.transposedJacobian(rows, k);
    }

    /** {@inheritDoc} */
    @Override
    public void accumulate(ColumnSet columns) {
        if (parameters.isEmpty()) {
            return;
        }
        DenseColumns dense = columns.dense();
        long batch = dense.getBatchSize();
        long count = dense.getColumnCount();
        NDArray rows =
                dense.getValues().reshape(new Shape(batch * count).addAll(outputShape.slice(1)));
        NDList products = derivatives.parameterProducts(rows, count);
        if (products.size() != parameters.size()) {
            throw new IllegalStateException(
                    getDescription()
                            + ": parameterProducts returned "
                            + products.size()
                            + " arrays for "
                            + parameters.size()
                            + " parameters");
        }
        Accumulators accumulators = getPropagation().getAccumulators();
        for (int i = 0; i < parameters.size(); i++) {
            Shape shape = parameters.get(i).getArray().getShape();
            NDArray squares = products.get(i).square().reshape(batch, count, shape.size());
            NDArray perSample =
                    dense.signedColumnSum(squares).reshape(new Shape(batch).addAll(shape));
            accumulators.addPerSample(parameters.get(i), perSample);
        }
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet residual() {
        long batch = inputShape.get(0);
        Shape features = inputShape.slice(1);
        if (!derivatives.hasDiagonalCurvature()) {
            return columns(derivatives.curvatureColumns(outputGradient), batch, features);
        }
        NDArray curvature = derivatives.curvature(outputGradient);
        if (curvature.size() != batch * features.size()) {
            throw new IllegalStateException(
                    getDescription()
                            + ": curvature returned shape "
                            + curvature.getShape()
                            + ", expected the input's shape "
                            + inputShape);
        }
        curvature = curvature.reshape(batch, features.size());
        return DiagonalColumns.of(curvature.abs().sqrt(), curvature.sign(), features);
    }

    /**
     * Checks what {@link BlockDerivatives#curvatureColumns} returned and wraps it; {@code null} for
     * no columns.
     */
    private DenseColumns columns(NDList factor, long batch, Shape features) {
        if (factor == null || factor.size() != 2) {
            throw new IllegalStateException(
                    getDescription()
                            + ": curvatureColumns must return two arrays (the columns and their"
                            + " signs), not "
                            + (factor == null ? "null" : factor.size()));
        }
        NDArray values = factor.get(0);
        NDArray signs = factor.get(1);
        Shape shape = values.getShape();
        if (shape.dimension() < 2
                || shape.get(0) != batch
                || !shape.slice(2).equals(features)
                || !signs.getShape().equals(shape.slice(0, 2))) {
            throw new IllegalStateException(
                    getDescription()
                            + ": curvatureColumns returned columns of shape "
                            + shape
                            + " and signs of shape "
                            + signs.getShape()
                            + ", expected columns ("
                            + batch
                            + ", K) followed by the input's features "
                            + features
                            + " and signs ("
                            + batch
                            + ", K)");
        }
        if (shape.get(1) == 0) {
            return null;
        }
        NDArray outside = signs.square().sub(signs.abs()).abs().max();
        if (outside.toType(DataType.FLOAT64, false).getDouble() != 0) {
            throw new IllegalStateException(
                    getDescription() + ": curvatureColumns returned signs other than +1, -1, 0");
        }
        long count = shape.get(1);
        return new DenseColumns(
                values.reshape(batch, count, features.size()),
                signs.toType(values.getDataType(), false),
                features);
    }

    /** {@inheritDoc} */
    @Override
    public void accumulateOwnCurvature() {
        if (parameters.isEmpty()) {
            return;
        }
        Accumulators accumulators = getPropagation().getAccumulators();
        boolean summed =
                !accumulators.isPerSample() && derivatives instanceof SummedParameterCurvature;
        NDList curvatures =
                summed
                        ? ((SummedParameterCurvature) derivatives)
                                .summedParameterCurvature(outputGradient)
                        : derivatives.parameterCurvature(outputGradient);
        if (curvatures == null || curvatures.isEmpty()) {
            return;
        }
        if (curvatures.size() != parameters.size()) {
            throw new IllegalStateException(
                    getDescription()
                            + ": parameterCurvature returned "
                            + curvatures.size()
                            + " arrays for "
                            + parameters.size()
                            + " parameters");
        }
        long batch = inputShape.get(0);
        for (int i = 0; i < parameters.size(); i++) {
            NDArray curvature = curvatures.get(i);
            Shape shape = parameters.get(i).getArray().getShape();
            Shape expected = summed ? shape : new Shape(batch).addAll(shape);
            if (!curvature.getShape().equals(expected)) {
                throw new IllegalStateException(
                        getDescription()
                                + ": parameterCurvature returned shape "
                                + curvature.getShape()
                                + " for parameter "
                                + parameters.get(i).getName()
                                + ", expected "
                                + expected);
            }
            accumulators.add(
                    parameters.get(i),
                    accumulators.isPerSample() || summed
                            ? curvature.duplicate()
                            : curvature.sum(new int[] {0}));
        }
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasParameters() {
        return !parameters.isEmpty();
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasCurvature() {
        return derivatives.hasCurvature();
    }

    /** {@inheritDoc} */
    @Override
    public long workElements(ColumnSet columns, long count, boolean transposing) {
        long parameterElements = 0;
        for (Parameter parameter : parameters) {
            parameterElements += parameter.getArray().size();
        }
        long perColumn = 2 * (columns.getFeatureCount() + parameterElements);
        if (transposing) {
            perColumn += 2 * inputShape.slice(1).size();
        }
        return columns.elementCount(count) + columns.getBatchSize() * count * perColumn;
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        if (inputShape == null) {
            return 0;
        }
        long parameterElements = 0;
        for (Parameter parameter : parameters) {
            parameterElements += parameter.getArray().size();
        }
        return 2 * (outputShape.slice(1).size() + parameterElements + inputShape.slice(1).size());
    }
}
