package org.secorder.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Block;
import ai.djl.training.loss.Loss;
import java.util.function.Supplier;
import org.secorder.operator.CurvatureOperator;
import org.secorder.operator.Eigenpairs;
import org.secorder.operator.Lanczos;

/**
 * The eigenvalues of largest magnitude of the Hessian, or of the generalized Gauss-Newton matrix,
 * of a loss, with their eigenvectors and a measured residual norm each.
 *
 * <p>The Lanczos iteration with full reorthogonalization (see {@link Lanczos}) needs one product
 * per iteration, exact as {@link HessianVectorProduct} computes it, and keeps one vector of the
 * size of all parameters per iteration. It stops once each wanted eigenpair's relative residual
 * estimate is within the tolerance; a warning is logged when the iteration limit comes first.
 *
 * <pre>{@code
 * try (Eigenpairs top =
 *         HessianEigenvalues.builder().optCount(3).build().compute(model, loss, inputs, labels)) {
 *     double sharpest = top.getEigenvalues()[0];
 * }
 * }</pre>
 */
public final class HessianEigenvalues {

    /** The default {@link Builder#optMaxIterations(int)}. */
    public static final int DEFAULT_MAX_ITERATIONS = 100;

    private final int count;
    private final double tolerance;
    private final int maxIterations;
    private final long seed;
    private final HessianVectorProduct products;

    HessianEigenvalues(Builder builder) {
        count = builder.count;
        tolerance = builder.tolerance;
        maxIterations = builder.maxIterations;
        seed = builder.seed;
        products =
                HessianVectorProduct.builder()
                        .optCurvature(builder.curvature)
                        .optMethod(builder.method)
                        .optTraining(builder.training)
                        .build();
    }

    /**
     * Creates a builder to configure a {@code HessianEigenvalues}.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Computes the eigenvalues of the Hessian of a scalar loss.
     *
     * @param func computes the scalar loss from {@code params}
     * @param params the parameters
     * @return the eigenpairs, which the caller must close
     */
    public Eigenpairs compute(Supplier<NDArray> func, NDList params) {
        return compute(products.operator(func, params));
    }

    /**
     * Computes the eigenvalues of the Hessian or GGN of a model's loss, over all its parameters.
     *
     * @param model an initialized block
     * @param loss the loss, evaluated as {@code loss.evaluate(targets, predictions)}
     * @param inputs the model's inputs
     * @param targets the labels
     * @return the eigenpairs, which the caller must close
     */
    public Eigenpairs compute(Block model, Loss loss, NDList inputs, NDList targets) {
        return compute(products.operator(model, loss, inputs, targets));
    }

    /**
     * Computes the eigenvalues of any symmetric operator.
     *
     * @param operator the operator
     * @return the eigenpairs, which the caller must close
     */
    public Eigenpairs compute(CurvatureOperator operator) {
        Arguments.requireNonNull(operator, "operator");
        double relative = tolerance;
        if (Double.isNaN(relative)) {
            NDList parameters = operator.getParameters();
            relative = parameters.head().getDataType() == DataType.FLOAT64 ? 1e-8 : 1e-4;
        }
        return new Lanczos(operator, count, relative, maxIterations, seed).compute();
    }

    /** Configures a {@link HessianEigenvalues}; every setting is optional. */
    public static final class Builder {

        int count = 1;
        Curvature curvature = Curvature.HESSIAN;
        HessianVectorProduct.Method method = HessianVectorProduct.Method.AUTO;
        double tolerance = Double.NaN;
        boolean toleranceSet;
        int maxIterations = DEFAULT_MAX_ITERATIONS;
        long seed;
        boolean training;

        Builder() {}

        /**
         * Sets how many eigenvalues of largest magnitude to find; 1 by default.
         *
         * @param count a positive number, at most the number of parameter elements
         * @return this builder
         */
        public Builder optCount(int count) {
            this.count = count;
            return this;
        }

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
         * Sets how each product is computed; {@link HessianVectorProduct.Method#AUTO} by default.
         *
         * @param method the method
         * @return this builder
         */
        public Builder optMethod(HessianVectorProduct.Method method) {
            this.method = method;
            return this;
        }

        /**
         * Sets the relative residual {@code ||A v - lambda v|| / |lambda|} at which an eigenpair
         * has converged; by default {@code 1e-8} for float64 parameters and {@code 1e-4} for
         * others, near what their rounding allows.
         *
         * @param tolerance a positive, finite tolerance
         * @return this builder
         */
        public Builder optTolerance(double tolerance) {
            this.tolerance = tolerance;
            this.toleranceSet = true;
            return this;
        }

        /**
         * Sets the most Lanczos iterations, each one product and one stored vector of the size of
         * all parameters; {@link #DEFAULT_MAX_ITERATIONS} by default.
         *
         * @param maxIterations at least the count
         * @return this builder
         */
        public Builder optMaxIterations(int maxIterations) {
            this.maxIterations = maxIterations;
            return this;
        }

        /**
         * Sets the seed of the random start vector; 0 by default. The same seed gives the same
         * result.
         *
         * @param seed the seed
         * @return this builder
         */
        public Builder optSeed(long seed) {
            this.seed = seed;
            return this;
        }

        /**
         * Sets whether a model's forward pass runs in training mode; {@code false} by default.
         *
         * @param training whether to run the model in training mode
         * @return this builder
         */
        public Builder optTraining(boolean training) {
            this.training = training;
            return this;
        }

        /**
         * Builds the configured {@code HessianEigenvalues}.
         *
         * @return the {@code HessianEigenvalues}
         * @throws IllegalArgumentException if a setting is out of range
         */
        public HessianEigenvalues build() {
            validate();
            return new HessianEigenvalues(this);
        }

        private void validate() {
            if (count < 1) {
                throw new IllegalArgumentException("count must be positive, got " + count);
            }
            if (toleranceSet && !(tolerance > 0 && Double.isFinite(tolerance))) {
                throw new IllegalArgumentException(
                        "tolerance must be positive and finite, got " + tolerance);
            }
            if (maxIterations < count) {
                throw new IllegalArgumentException(
                        "maxIterations must be at least count ("
                                + count
                                + "), got "
                                + maxIterations);
            }
        }
    }
}
