package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DiagonalColumns;
import org.secorder.structured.internal.propagation.LeafLayer;
import org.secorder.structured.internal.propagation.Propagation;
import org.secorder.structured.internal.propagation.TangentRule;
import org.secorder.structured.internal.propagation.Tangents;

/**
 * An elementwise activation {@code y = phi(x)}.
 *
 * <p>Its transposed Jacobian scales columns by {@code phi'(x)}. Where {@code phi''} is not zero,
 * the Hessian with respect to its input gains {@code diag(g * phi''(x))}, {@code g} the loss
 * gradient with respect to its output: one signed diagonal column set.
 */
public final class ActivationLayer extends LeafLayer implements TangentRule {

    private final ActivationFunction function;
    private final double[] parameters;
    private NDArray input;
    private NDArray output;
    private NDArray firstDerivative;
    private NDArray outputGradient;
    private Shape featureShape;

    /**
     * Creates the layer of an activation block.
     *
     * @param description the block's path and kind
     * @param block the block
     * @param function the activation it computes
     * @param parameters the activation's parameters
     */
    public ActivationLayer(
            String description, Block block, ActivationFunction function, double[] parameters) {
        super(description, block);
        this.function = function;
        this.parameters = parameters.clone();
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forwardLeaf(NDArray x) {
        Propagation propagation = getPropagation();
        input = x;
        output = runBlock(x);
        featureShape = x.getShape().slice(1);
        long batch = x.getShape().get(0);
        NDArray first = function.first(x, output, parameters);
        if (x.getShape().dimension() != 2) {
            first = first.reshape(batch, featureShape.size());
        }
        firstDerivative = propagation.keep(first);
        return output;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        if (function.isSmooth()) {
            outputGradient = getPropagation().keep(gradient);
        }
        if (!inputNeeded) {
            return null;
        }
        if (gradient.getShape().dimension() == 2) {
            return gradient.mul(firstDerivative);
        }
        return gradient.mul(firstDerivative.reshape(gradient.getShape()));
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet transpose(ColumnSet columns) {
        return columns.scale(firstDerivative, true);
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet residual() {
        NDArray curvature = curvatureDiagonal();
        return DiagonalColumns.of(curvature.abs().sqrt(), curvature.sign(), featureShape);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray curvatureDiagonal() {
        if (!function.isSmooth()) {
            return null;
        }
        long batch = input.getShape().get(0);
        return outputGradient
                .mul(function.second(input, output, parameters))
                .reshape(batch, featureShape.size());
    }

    /** {@inheritDoc} */
    @Override
    public TangentRule tangentRule() {
        return this;
    }

    /** {@inheritDoc} */
    @Override
    public boolean pushes() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public Tangents push(Tangents tangents, long from, long to) {
        return tangents.scale(firstDerivative.get(new NDIndex("{}:{}", from, to)));
    }

    /** {@inheritDoc} */
    @Override
    public long pushCost(long groups, long count) {
        // the product with phi', and with a curvature the squares weighted by it
        return count * featureShape.size() * ELEMENT_COST * (function.isSmooth() ? 3 : 1);
    }

    /** {@inheritDoc} */
    @Override
    public long outputFeatures() {
        return featureShape.size();
    }

    /** {@inheritDoc} */
    @Override
    public boolean keepsGroups() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public long columnCost(boolean transposing) {
        return transposing ? ELEMENT_COST * featureShape.size() : 0;
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasCurvature() {
        return function.isSmooth();
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        return featureShape == null ? 0 : 2 * featureShape.size();
    }
}
