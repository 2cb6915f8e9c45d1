package org.secorder.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Block;
import ai.djl.training.loss.Loss;
import java.util.function.Supplier;
import org.secorder.estimation.internal.HutchPlusPlus;
import org.secorder.estimation.internal.Hutchinson;
import org.secorder.estimation.internal.ParameterSpace;
import org.secorder.estimation.internal.Probes;
import org.secorder.estimation.internal.ScalarEstimate;
import org.secorder.operator.CurvatureOperator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The trace of the Hessian or the generalized Gauss-Newton matrix of a loss, exactly or by a
 * stochastic estimator, always with its standard error.
 *
 * <p>A stochastic estimate whose standard error exceeds a fraction of its magnitude ({@link
 * Builder#optRelativeErrorWarning(double)}, 10 per cent by default) is logged as a warning through
 * SLF4J, with the number of probes that would meet the threshold.
 *
 * <pre>{@code
 * TraceEstimate trace =
 *         HessianTrace.builder()
 *                 .optMethod(HessianTrace.Method.HUTCH_PLUS_PLUS)
 *                 .optProbes(99)
 *                 .build()
 *                 .compute(operator);
 * }</pre>
 */
public final class HessianTrace {

    /** How the trace is computed. */
    public enum Method {
        /** Exact: one product per parameter element, with unit vectors. */
        EXACT,
        /**
         * Hutchinson's estimator {@code (1/m) sum_k z_k^T A z_k}, one product per probe; standard
         * error: the sample standard deviation of the terms over {@code sqrt(m)}.
         */
        HUTCHINSON,
        /**
         * Hutch++: the trace of a rank-{@code m/3} approximation exactly and Hutchinson's estimator
         * on the rest, {@code m} products in all; far more accurate than Hutchinson's estimator
         * where a few eigenvalues dominate. Standard error: that of the Hutchinson part, which is
         * the whole of the estimator's randomness. Needs at least 6 probes.
         */
        HUTCH_PLUS_PLUS
    }

    /** The default {@link Builder#optProbes(int)}. */
    public static final int DEFAULT_PROBES = 100;

    /** The default {@link Builder#optRelativeErrorWarning(double)}: 10 per cent. */
    public static final double DEFAULT_RELATIVE_ERROR_WARNING = 0.1;

    private static final Logger LOGGER = LoggerFactory.getLogger(HessianTrace.class);

    private final Method method;
    private final int probes;
    private final long seed;
    private final ProbeDistribution distribution;
    private final Curvature curvature;
    private final double relativeErrorWarning;
    private final long memoryBudget;
    private final boolean training;

    HessianTrace(Builder builder) {
        method = builder.method;
        probes = builder.probes;
        seed = builder.seed;
        distribution = builder.distribution;
        curvature = builder.curvature;
        relativeErrorWarning = builder.relativeErrorWarning;
        memoryBudget = builder.memoryBudget;
        training = builder.training;
    }

    /**
     * Creates a builder to configure a {@code HessianTrace}.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Computes the trace of the Hessian of a scalar loss, its products from {@link
     * HessianVectorProduct}.
     *
     * @param func computes the scalar loss from {@code params}
     * @param params the parameters
     * @return the trace with its standard error and cost
     * @throws IllegalArgumentException if the configuration asks for the GGN, which needs a model
     */
    public TraceEstimate compute(Supplier<NDArray> func, NDList params) {
        Arguments.requireNonNull(func, "func");
        return compute(
                HessianVectorProduct.builder()
                        .optCurvature(curvature)
                        .build()
                        .operator(func, params));
    }

    /**
     * Computes the trace of the Hessian or the GGN of a model's loss, its products from {@link
     * HessianVectorProduct}.
     *
     * @param model an initialized block
     * @param loss the loss, evaluated as {@code loss.evaluate(targets, predictions)}
     * @param inputs the model's inputs
     * @param targets the labels
     * @return the trace with its standard error and cost
     */
    public TraceEstimate compute(Block model, Loss loss, NDList inputs, NDList targets) {
        return compute(
                HessianVectorProduct.builder()
                        .optCurvature(curvature)
                        .optTraining(training)
                        .build()
                        .operator(model, loss, inputs, targets));
    }

    /**
     * Computes the trace of a curvature operator, the Hessian or any symmetric matrix a caller
     * supplies.
     *
     * @param operator the operator; its vectors are created on each parameter's device, in its data
     *     type
     * @return the trace with its standard error and cost
     */
    public TraceEstimate compute(CurvatureOperator operator) {
        Arguments.requireNonNull(operator, "operator");
        NDArray[] parameters = Arguments.parameters(operator.getParameters(), "operator");
        ParameterSpace space = new ParameterSpace(parameters);
        int batch =
                space.batchSize(memoryBudget, method == Method.EXACT ? Integer.MAX_VALUE : probes);
        Probes random = new Probes(seed, distribution == ProbeDistribution.GAUSSIAN);
        ScalarEstimate estimate;
        switch (method) {
            case EXACT:
                estimate = Hutchinson.exactTrace(space, operator, batch);
                break;
            case HUTCHINSON:
                estimate = Hutchinson.trace(space, operator, probes, random, batch);
                break;
            case HUTCH_PLUS_PLUS:
                estimate = HutchPlusPlus.trace(space, operator, probes, random, batch);
                break;
            default:
                throw new IllegalStateException("unknown method " + method);
        }
        TraceEstimate trace =
                new TraceEstimate(
                        estimate.getValue(), estimate.getStandardError(), estimate.getProducts());
        warnIfUncertain(trace);
        return trace;
    }

    private void warnIfUncertain(TraceEstimate trace) {
        double relative = trace.getRelativeStandardError();
        if (relative > relativeErrorWarning) {
            double factor = relative / relativeErrorWarning;
            double needed = Math.ceil(probes * factor * factor);
            LOGGER.warn(
                    "{} trace estimate {} has a relative standard error of {}, above the"
                            + " threshold {} (optRelativeErrorWarning); about {} probes instead of"
                            + " {} would meet it{}",
                    method,
                    trace.getTrace(),
                    relative,
                    relativeErrorWarning,
                    (long) needed,
                    probes,
                    method == Method.HUTCHINSON
                            ? ", and HUTCH_PLUS_PLUS may need far fewer where a few eigenvalues"
                                    + " dominate"
                            : "");
        }
    }

    /** Configures a {@link HessianTrace}; every setting is optional. */
    public static final class Builder {

        Method method = Method.HUTCHINSON;
        int probes = DEFAULT_PROBES;
        long seed;
        ProbeDistribution distribution = ProbeDistribution.RADEMACHER;
        Curvature curvature = Curvature.HESSIAN;
        double relativeErrorWarning = DEFAULT_RELATIVE_ERROR_WARNING;
        long memoryBudget = HessianDiagonal.DEFAULT_MEMORY_BUDGET;
        boolean training;

        Builder() {}

        /**
         * Sets whether a model's forward passes run in training mode; {@code false} by default.
         *
         * @param training whether to run the model in training mode
         * @return this builder
         */
        public Builder optTraining(boolean training) {
            this.training = training;
            return this;
        }

        /**
         * Sets how the trace is computed; {@link Method#HUTCHINSON} by default.
         *
         * @param method the method
         * @return this builder
         */
        public Builder optMethod(Method method) {
            this.method = method;
            return this;
        }

        /**
         * Sets the number of products a stochastic method spends: the probes of {@link
         * Method#HUTCHINSON} (at least 2), the products of {@link Method#HUTCH_PLUS_PLUS} (at least
         * 6); {@link #DEFAULT_PROBES} by default. {@link Method#EXACT} ignores it.
         *
         * @param probes the number of probes
         * @return this builder
         */
        public Builder optProbes(int probes) {
            this.probes = probes;
            return this;
        }

        /**
         * Sets the seed of the probes; 0 by default. The same seed gives the same probes on every
         * engine and device; use different seeds for independent estimates.
         *
         * @param seed the seed
         * @return this builder
         */
        public Builder optSeed(long seed) {
            this.seed = seed;
            return this;
        }

        /**
         * Sets the distribution of the probes' entries; {@link ProbeDistribution#RADEMACHER} by
         * default.
         *
         * @param distribution the distribution
         * @return this builder
         */
        public Builder optProbeDistribution(ProbeDistribution distribution) {
            this.distribution = distribution;
            return this;
        }

        /**
         * Sets whose trace a loss's computation takes, the Hessian's (the default) or the
         * generalized Gauss-Newton matrix's. An operator given to {@link
         * HessianTrace#compute(CurvatureOperator)} is taken as it is.
         *
         * @param curvature the curvature matrix
         * @return this builder
         */
        public Builder optCurvature(Curvature curvature) {
            this.curvature = curvature;
            return this;
        }

        /**
         * Sets the relative standard error above which an estimate is logged as a warning; {@link
         * #DEFAULT_RELATIVE_ERROR_WARNING} by default, {@code Double.POSITIVE_INFINITY} for never.
         *
         * @param threshold a positive fraction of the trace's magnitude
         * @return this builder
         */
        public Builder optRelativeErrorWarning(double threshold) {
            this.relativeErrorWarning = threshold;
            return this;
        }

        /**
         * Sets how many bytes of probes and their products are held on the devices at once; {@link
         * HessianDiagonal#DEFAULT_MEMORY_BUDGET} by default, at least one probe at a time.
         *
         * @param bytes a positive number of bytes
         * @return this builder
         */
        public Builder optMemoryBudget(long bytes) {
            this.memoryBudget = bytes;
            return this;
        }

        /**
         * Builds the configured {@code HessianTrace}.
         *
         * @return the {@code HessianTrace}
         * @throws IllegalArgumentException if a setting is out of range
         */
        public HessianTrace build() {
            validate();
            return new HessianTrace(this);
        }

        private void validate() {
            Arguments.requireNonNull(method, "method");
            Arguments.requireNonNull(distribution, "probeDistribution");
            Arguments.requireNonNull(curvature, "curvature");
            if (probes < 1) {
                throw new IllegalArgumentException("probes must be at least 1, got " + probes);
            }
            if (method == Method.HUTCHINSON && probes < 2) {
                throw new IllegalArgumentException(
                        "probes: HUTCHINSON needs at least 2 probes for a standard error, got "
                                + probes);
            }
            if (method == Method.HUTCH_PLUS_PLUS && probes < 6) {
                throw new IllegalArgumentException(
                        "probes: HUTCH_PLUS_PLUS needs at least 6 products (a third each for the"
                                + " sketch and its basis, and 2 Hutchinson probes for a standard"
                                + " error), got "
                                + probes);
            }
            if (!(relativeErrorWarning > 0)) {
                throw new IllegalArgumentException(
                        "relativeErrorWarning must be positive, got " + relativeErrorWarning);
            }
            if (memoryBudget <= 0) {
                throw new IllegalArgumentException(
                        "memoryBudget must be a positive number of bytes, got " + memoryBudget);
            }
        }
    }
}
