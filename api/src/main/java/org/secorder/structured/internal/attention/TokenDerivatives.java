package org.secorder.structured.internal.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.Pair;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.secorder.structured.BlockDerivatives;
import org.secorder.structured.internal.rules.GenericDerivatives;
import org.secorder.structured.internal.rules.SummedParameterCurvature;

/**
 * What the rules of DJL's attention blocks share: blocks on sequences of tokens, {@code (N, T, E)},
 * whose products are backpropagation written out by hand for {@code N k} rows at once, and whose
 * parameters are per-token affine maps and normalizations, so that each row's parameter product is
 * a sum over the tokens.
 *
 * <p>A subclass computes the block's output from its equations ({@link #compute}), keeping what the
 * products need, and backpropagates rows ({@link #backward}); this class runs the block itself,
 * refuses it if the equations disagree with its output, and lays out rows and products. The block's
 * own curvature (the Hessian only) comes from a {@link GenericDerivatives} by double backward.
 */
abstract class TokenDerivatives implements BlockDerivatives, SummedParameterCurvature {

    private final String description;
    private final Block block;
    private final GenericDerivatives ownCurvature;
    private final List<Parameter> parameters = new ArrayList<>();
    private final List<NDArray> kept = new ArrayList<>();
    private NDManager cache;
    private long batch;
    private Shape tokens;

    /**
     * Creates the derivatives of a block for one computation.
     *
     * @param description the block's path and kind, for messages
     * @param block the block
     * @param ownCurvature whether the block's own curvature is needed (the Hessian)
     */
    TokenDerivatives(String description, Block block, boolean ownCurvature) {
        this.description = description;
        this.block = block;
        this.ownCurvature =
                ownCurvature
                        ? GenericDerivatives.curvatureOnly(
                                description,
                                block,
                                "its rule writes out first derivatives only (the softmax of"
                                        + " attention and the activations have second"
                                        + " derivatives of their own)")
                        : null;
        for (Pair<String, Parameter> entry : block.getParameters()) {
            if (entry.getValue().requiresGradient()) {
                parameters.add(entry.getValue());
            }
        }
    }

    /**
     * Computes the block's output from its equations and keeps what {@link #backward} needs, with
     * {@link #keep}.
     *
     * @param values gives the value of each parameter of the block
     * @param x the input, {@code (N, T, E)}
     * @return the output, {@code (N, T, E')}
     */
    abstract NDArray compute(Values values, NDArray x);

    /**
     * Backpropagates rows on the output.
     *
     * @param rows {@code (N, k, T, E')}
     * @param products receives each row's product with each parameter, {@code (N k,
     *     parameterShape...)}, or {@code null} when they are not wanted
     * @param inputNeeded whether the rows on the input are wanted
     * @return the rows on the input, {@code (N, k, T, E)}, or {@code null}
     */
    abstract NDArray backward(NDArray rows, Map<Parameter, NDArray> products, boolean inputNeeded);

    /**
     * Keeps an array for the products, until the next forward pass or the computation's end.
     *
     * @param array the array
     * @return the array
     */
    final NDArray keep(NDArray array) {
        array.attach(cache);
        kept.add(array);
        return array;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forward(ParameterStore parameterStore, NDArray input, boolean training) {
        Shape shape = input.getShape();
        if (shape.dimension() != 3) {
            throw new UnsupportedOperationException(
                    description
                            + " gets input of shape "
                            + shape
                            + "; its rule needs (batch, tokens, embedding)");
        }
        batch = shape.get(0);
        tokens = shape.slice(1);
        NDManager target = input.getManager();
        if (cache != null) {
            cache.close();
            kept.clear();
        }
        cache = target.newSubManager();
        if (ownCurvature != null) {
            ownCurvature.forward(parameterStore, input, training).close();
        }
        NDArray output;
        try (NDManager scope = target.newSubManager()) {
            scope.tempAttachAll(input);
            output = block.forward(parameterStore, new NDList(input), training).singletonOrThrow();
            Values values =
                    parameter -> {
                        NDArray copy =
                                parameterStore
                                        .getValue(parameter, input.getDevice(), training)
                                        .duplicate();
                        copy.attach(scope);
                        return copy;
                    };
            NDArray mine = compute(values, input);
            double scale =
                    Math.max(1, mine.abs().max().toType(DataType.FLOAT64, false).getDouble());
            double difference = -1;
            if (mine.getShape().equals(output.getShape())) {
                difference =
                        mine.sub(output).abs().max().toType(DataType.FLOAT64, false).getDouble();
            }
            // wrong equations differ by the order of the values; the engine's own kernels (its
            // GELU) differ from the formulas by about 1e-7 even in float64
            double tolerance = input.getDataType() == DataType.FLOAT64 ? 1e-6 : 1e-4;
            if (!(difference >= 0 && difference <= tolerance * scale)) {
                throw new UnsupportedOperationException(
                        description
                                + ": the equations of its structured rule differ from the block's"
                                + " output on this engine by "
                                + difference
                                + ", so the rule cannot reproduce this block (a subclass that"
                                + " computes something else needs a rule of its own,"
                                + " BlockRules.register)");
            }
            output.attach(target);
        }
        return output;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray transposedJacobian(NDArray rows, long k) {
        NDManager target = rows.getManager();
        try (NDManager scope = target.newSubManager()) {
            attach(scope, rows);
            NDArray result = backward(inSamples(rows, k), null, true);
            result = result.reshape(new Shape(batch * k).addAll(tokens));
            result.attach(target);
            return result;
        }
    }

    /** {@inheritDoc} */
    @Override
    public List<Parameter> getParameters() {
        return parameters;
    }

    /** {@inheritDoc} */
    @Override
    public NDList parameterProducts(NDArray rows, long k) {
        NDManager target = rows.getManager();
        try (NDManager scope = target.newSubManager()) {
            attach(scope, rows);
            Map<Parameter, NDArray> products = new IdentityHashMap<>();
            backward(inSamples(rows, k), products, false);
            NDList result = new NDList();
            for (Parameter parameter : parameters) {
                NDArray product = products.get(parameter);
                if (product == null) {
                    product =
                            scope.zeros(
                                    new Shape(batch * k).addAll(parameter.getArray().getShape()),
                                    rows.getDataType());
                }
                product.attach(target);
                result.add(product);
            }
            return result;
        }
    }

    /** Lends the kept arrays and the rows to a scope, so that what they make goes there. */
    private void attach(NDManager scope, NDArray rows) {
        List<NDArray> all = new ArrayList<>(kept);
        all.add(rows);
        scope.tempAttachAll(all.toArray(new NDArray[0]));
    }

    /** Rows {@code (N k, T, E')} as {@code (N, k, T, E')}; the scope of the caller owns them. */
    private NDArray inSamples(NDArray rows, long k) {
        Shape shape = rows.getShape();
        return rows.reshape(new Shape(batch, k).addAll(shape.slice(1)));
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasCurvature() {
        return ownCurvature != null;
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasDiagonalCurvature() {
        return false;
    }

    /** {@inheritDoc} */
    @Override
    public NDList curvatureColumns(NDArray outputGradient) {
        return ownCurvature.curvatureColumns(outputGradient);
    }

    /** {@inheritDoc} */
    @Override
    public NDList parameterCurvature(NDArray outputGradient) {
        return ownCurvature.parameterCurvature(outputGradient);
    }

    /** {@inheritDoc} */
    @Override
    public NDList summedParameterCurvature(NDArray outputGradient) {
        return ownCurvature.summedParameterCurvature(outputGradient);
    }

    /**
     * Applies a matrix to the last axis of rows: {@code rows . matrix}.
     *
     * @param rows {@code (..., a)}
     * @param matrix {@code (a, b)}
     * @return {@code (..., b)}
     */
    static NDArray times(NDArray rows, NDArray matrix) {
        Shape shape = rows.getShape();
        long width = shape.get(shape.dimension() - 1);
        // a copy: Shape.getShape() hands out the array the shape itself holds
        long[] dims = shape.getShape().clone();
        dims[dims.length - 1] = matrix.getShape().get(1);
        return rows.reshape(-1, width).matMul(matrix).reshape(new Shape(dims));
    }

    /**
     * The affine map of a Linear block on every token, {@code z W^T + b}.
     *
     * @param z {@code (N, T, in)}
     * @param weight {@code (out, in)}
     * @param bias {@code (out)}, or {@code null}
     * @return {@code (N, T, out)}
     */
    static NDArray affine(NDArray z, NDArray weight, NDArray bias) {
        NDArray y = times(z, weight.transpose());
        return bias == null ? y : y.add(bias);
    }

    /**
     * Each row's product with the weight of a per-token affine map: {@code sum_t g[t]^T z[t]}.
     *
     * @param rows the rows on the map's output, {@code (N, k, T, out)}
     * @param z the map's input, {@code (N, T, in)}
     * @return {@code (N k, out, in)}
     */
    static NDArray weightProducts(NDArray rows, NDArray z) {
        Shape shape = rows.getShape();
        long n = shape.get(0);
        long k = shape.get(1);
        long steps = shape.get(2);
        long width = shape.get(3);
        NDArray products = rows.transpose(0, 1, 3, 2).reshape(n, k * width, steps).matMul(z);
        return products.reshape(n * k, width, z.getShape().get(2));
    }

    /**
     * Each row's sum over the tokens: its product with a per-token bias or shift.
     *
     * @param rows {@code (N, k, T, E)}
     * @return {@code (N k, E)}
     */
    static NDArray tokenSums(NDArray rows) {
        Shape shape = rows.getShape();
        return rows.sum(new int[] {2}).reshape(shape.get(0) * shape.get(1), shape.get(3));
    }

    /**
     * Records a product where it is wanted.
     *
     * @param products the products, or {@code null}
     * @param parameter the parameter, or {@code null} for none
     * @param product computes the product
     */
    static void record(
            Map<Parameter, NDArray> products, Parameter parameter, Supplier<NDArray> product) {
        if (products != null && parameter != null && parameter.requiresGradient()) {
            products.put(parameter, product.get());
        }
    }

    /** The values of a block's parameters for one forward pass. */
    interface Values {

        /**
         * Returns a parameter's value.
         *
         * @param parameter the parameter
         * @return its value
         */
        NDArray of(Parameter parameter);
    }
}
