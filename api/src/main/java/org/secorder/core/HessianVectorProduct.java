package org.secorder.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Block;
import ai.djl.training.loss.Loss;
import java.util.function.Supplier;
import org.secorder.operator.CurvatureOperator;

/**
 * Exact products of the Hessian, or of the generalized Gauss-Newton matrix, of a scalar loss with
 * vectors, without ever forming the matrix.
 *
 * <p>The result has one array per parameter, of its shape, data type and device, attached to the
 * parameter's manager: {@code (H v)_i}, the rows of parameter {@code i} of the matrix times {@code
 * v}. Parameters that do not require a gradient are constants: their entries of {@code v} are
 * ignored and their products are zeros (an error with {@code strict}). Calls leave no trace, as
 * {@link HessianDiagonal}'s do, inside and outside a {@link ai.djl.training.GradientCollector}.
 *
 * <pre>{@code
 * NDList hv = HessianVectorProduct.hvp(() -> x.mul(x).mul(x).sum(), new NDList(x), v);
 * NDList ggnV =
 *         HessianVectorProduct.builder()
 *                 .optCurvature(Curvature.GGN)
 *                 .build()
 *                 .compute(model, loss, inputs, labels, v);
 * }</pre>
 *
 * <p>{@link #operator(Supplier, NDList)} and {@link #operator(Block, Loss, NDList, NDList)} give
 * the matrix as a {@link CurvatureOperator} for estimators and eigenvalue solvers.
 */
public final class HessianVectorProduct {

    /** How the products are computed. */
    public enum Method {
        /**
         * The cheapest exact route the engine has: {@link #AUTOGRAD} on PyTorch; for the GGN of a
         * model on other engines {@link #FACTORED}. Never an approximation.
         */
        AUTO,
        /**
         * Double backward: for the Hessian, the gradient of {@code g . v}; for the GGN, {@code J v}
         * by the double-VJP trick, the loss's Hessian-vector product with respect to the output and
         * one backward pass. About two to three gradient evaluations per product, any loss; needs
         * an engine with second derivatives (PyTorch).
         */
        AUTOGRAD,
        /**
         * The GGN of a model only, from first derivatives only, on every engine: the loss Hessian's
         * square-root factor (supported losses as for {@link HessianDiagonal.Method#STRUCTURED})
         * and one vector-Jacobian product through the whole batch per sample and factor column,
         * {@code N (C - 1)} for a softmax cross-entropy over {@code C} classes. Exact, but costly
         * on large batches: a warning is logged when one product needs more than 64 of them.
         */
        FACTORED
    }

    private final Curvature curvature;
    private final Method method;
    private final boolean createGraph;
    private final boolean strict;
    private final boolean training;

    HessianVectorProduct(Builder builder) {
        curvature = builder.curvature;
        method = builder.method;
        createGraph = builder.createGraph;
        strict = builder.strict;
        training = builder.training;
    }

    /**
     * Computes the exact Hessian-vector product of a scalar loss, as {@code torch-secorder}'s
     * {@code hvp} does.
     *
     * @param func computes the scalar loss from {@code params}
     * @param params the parameters
     * @param v one vector per parameter, of its shape and data type
     * @return {@code H v}, one array per parameter
     */
    public static NDList hvp(Supplier<NDArray> func, NDList params, NDList v) {
        return builder().build().compute(func, params, v);
    }

    /**
     * Computes the exact Hessian-vector product of a model's loss with respect to all its
     * parameters.
     *
     * @param model an initialized block
     * @param loss the loss, evaluated as {@code loss.evaluate(targets, predictions)}
     * @param inputs the model's inputs
     * @param targets the labels
     * @param v one vector per entry of {@code model.getParameters()}, of its shape and data type
     * @return {@code H v}, one array per entry of {@code model.getParameters()}
     */
    public static NDList modelHvp(Block model, Loss loss, NDList inputs, NDList targets, NDList v) {
        return builder().build().compute(model, loss, inputs, targets, v);
    }

    /**
     * Creates a builder to configure a {@code HessianVectorProduct}.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Computes the product of the Hessian of a scalar loss with a vector.
     *
     * @param func computes the scalar loss from {@code params}; it is called with gradient
     *     recording on
     * @param params the parameters
     * @param v one vector per parameter, of its shape and data type
     * @return the product, one array per parameter, attached to each parameter's manager
     */
    public NDList compute(Supplier<NDArray> func, NDList params, NDList v) {
        return operator(func, params).multiply(v);
    }

    /**
     * Computes the product of the Hessian or the GGN of a model's loss with a vector.
     *
     * @param model an initialized block
     * @param loss the loss, evaluated as {@code loss.evaluate(targets, predictions)}
     * @param inputs the model's inputs
     * @param targets the labels
     * @param v one vector per entry of {@code model.getParameters()}, of its shape and data type
     * @return the product, one array per entry of {@code model.getParameters()}, attached to each
     *     parameter's manager
     */
    public NDList compute(Block model, Loss loss, NDList inputs, NDList targets, NDList v) {
        return operator(model, loss, inputs, targets).multiply(v);
    }

    /**
     * Returns the Hessian of a scalar loss as an operator; each product evaluates the loss again,
     * so {@code func} and {@code params} must stay valid while it is used.
     *
     * @param func computes the scalar loss from {@code params}
     * @param params the parameters
     * @return the operator
     * @throws IllegalArgumentException if this configuration asks for the GGN, which needs a model
     */
    public CurvatureOperator operator(Supplier<NDArray> func, NDList params) {
        Arguments.requireNonNull(func, "func");
        if (curvature == Curvature.GGN) {
            throw new IllegalArgumentException(
                    "curvature GGN needs the model's output and loss: use compute(Block, Loss,"
                            + " NDList, NDList, NDList) or operator(Block, Loss, NDList, NDList)");
        }
        return ProductOperator.forLoss(this, func, params);
    }

    /**
     * Returns the Hessian or the GGN of a model's loss as an operator; each product runs the
     * forward pass again, so the model, inputs and targets must stay valid while it is used.
     *
     * @param model an initialized block
     * @param loss the loss, evaluated as {@code loss.evaluate(targets, predictions)}
     * @param inputs the model's inputs
     * @param targets the labels
     * @return the operator, over the entries of {@code model.getParameters()}
     */
    public CurvatureOperator operator(Block model, Loss loss, NDList inputs, NDList targets) {
        return ProductOperator.forModel(this, model, loss, inputs, targets);
    }

    Curvature getCurvature() {
        return curvature;
    }

    Method getMethod() {
        return method;
    }

    boolean isCreateGraph() {
        return createGraph;
    }

    boolean isStrict() {
        return strict;
    }

    boolean isTraining() {
        return training;
    }

    /** Configures a {@link HessianVectorProduct}; every setting is optional. */
    public static final class Builder {

        Curvature curvature = Curvature.HESSIAN;
        Method method = Method.AUTO;
        boolean createGraph;
        boolean strict;
        boolean training;

        Builder() {}

        /**
         * Sets the matrix: {@link Curvature#HESSIAN} (the default) or {@link Curvature#GGN}, the
         * latter for models only.
         *
         * @param curvature the matrix
         * @return this builder
         */
        public Builder optCurvature(Curvature curvature) {
            this.curvature = curvature;
            return this;
        }

        /**
         * Sets how the products are computed; {@link Method#AUTO} by default.
         *
         * @param method the method
         * @return this builder
         */
        public Builder optMethod(Method method) {
            this.method = method;
            return this;
        }

        /**
         * Sets whether the result is differentiable, for higher derivatives; {@code false} by
         * default. Needs {@link Method#AUTOGRAD} (or {@code AUTO}) on PyTorch.
         *
         * @param createGraph whether to record the computation of the product
         * @return this builder
         */
        public Builder optCreateGraph(boolean createGraph) {
            this.createGraph = createGraph;
            return this;
        }

        /**
         * Sets whether a parameter that does not require a gradient, or that the loss does not
         * depend on, throws an {@link IllegalArgumentException}; {@code false} (zeros) by default.
         *
         * @param strict whether to fail on such parameters
         * @return this builder
         */
        public Builder optStrict(boolean strict) {
            this.strict = strict;
            return this;
        }

        /**
         * Sets whether a model's forward pass runs in training mode; {@code false} by default.
         * Running statistics that training mode updates are put back afterwards.
         *
         * @param training whether to run the model in training mode
         * @return this builder
         */
        public Builder optTraining(boolean training) {
            this.training = training;
            return this;
        }

        /**
         * Builds the configured {@code HessianVectorProduct}.
         *
         * @return the {@code HessianVectorProduct}
         * @throws IllegalArgumentException if the settings contradict each other
         */
        public HessianVectorProduct build() {
            validate();
            return new HessianVectorProduct(this);
        }

        private void validate() {
            Arguments.requireNonNull(curvature, "curvature");
            Arguments.requireNonNull(method, "method");
            if (method == Method.FACTORED && curvature != Curvature.GGN) {
                throw new IllegalArgumentException(
                        "method FACTORED computes products of the GGN only: use"
                                + " optCurvature(Curvature.GGN), or Method.AUTOGRAD for the"
                                + " Hessian");
            }
            if (createGraph && method == Method.FACTORED) {
                throw new IllegalArgumentException(
                        "createGraph: method FACTORED gives no differentiable result; use"
                                + " Method.AUTOGRAD (or AUTO) with createGraph=true");
            }
        }
    }
}
