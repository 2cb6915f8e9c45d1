package org.secorder.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.secorder.autograd.AutogradDiagonal;
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngine;
import org.secorder.engine.SecondOrderEngines;
import org.secorder.evaluation.LossFunction;
import org.secorder.evaluation.ParameterSnapshot;
import org.secorder.finitedifference.FiniteDifferenceDiagonal;
import org.secorder.operator.CurvatureOperator;
import org.secorder.structured.StructuredDiagonal;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The diagonal of the Hessian of a scalar loss with respect to parameters.
 *
 * <p>For each parameter the result holds the diagonal of that parameter's own block of the Hessian,
 * shaped like the parameter, with its data type and on its device: element {@code i} is {@code d^2
 * loss / d p_i^2}. With vectors {@code v} it is {@code v_i * H_ii}.
 *
 * <p>Calls leave no trace: parameter values, their gradients, gradient flags, names and the
 * engine's recording state are as they were afterwards, also when a call throws. They work both
 * inside a {@link ai.djl.training.GradientCollector} the caller has open and outside of any.
 *
 * <pre>{@code
 * NDList diagonal = HessianDiagonal.hessianDiagonal(() -> x.matMul(a).matMul(x), new NDList(x));
 * }</pre>
 */
public final class HessianDiagonal {

    /** How the diagonal is computed. */
    public enum Method {
        /** The exact method where the engine has one; otherwise a clear error, never a guess. */
        AUTO,
        /** Exact double backward, one Hessian-vector product per parameter element. */
        AUTOGRAD,
        /**
         * Central differences of first derivatives: approximate, two gradient evaluations per
         * parameter element, available on every engine.
         */
        FINITE_DIFFERENCE,
        /**
         * Exact, for models of supported blocks: a signed factorization of the Hessian carried
         * backwards through the model with first-order arithmetic only, on every engine.
         */
        STRUCTURED,
        /**
         * The exact diagonal of the generalized Gauss-Newton matrix, for models of supported
         * blocks: the structured propagation without the activations' curvature; never negative.
         *
         * @deprecated the generalized Gauss-Newton matrix is another curvature, not another way to
         *     compute the Hessian: use {@link #STRUCTURED} (or {@link #AUTO}) with {@link
         *     Builder#optCurvature(Curvature) optCurvature(Curvature.GGN)}, which this is an alias
         *     of
         */
        @Deprecated
        GGN,
        /**
         * Hutchinson's estimator {@code (1/m) sum_k z_k * (H z_k)} (elementwise products), one
         * Hessian-vector product per probe: unbiased for Rademacher and Gaussian probes alike, as
         * {@code E[z_i z_j] = delta_ij}; standard error: the sample standard deviation of the
         * per-probe terms over {@code sqrt(m)}. Stochastic: use {@link #estimate}.
         */
        HUTCHINSON,
        /**
         * XDiag (Epperly, Tropp and Webber 2024): half of the products sketch a low-rank
         * approximation, every probe serves in turn as a Hutchinson probe of the remainder;
         * unbiased for both probe distributions and far more accurate than {@link #HUTCHINSON}
         * where a few eigenvalues dominate. Spends {@code optProbes} products (at least 4, used in
         * pairs); standard error: the sample standard deviation of its leave-one-out terms over the
         * square root of their number. Stochastic: use {@link #estimate}.
         */
        XDIAG,
        /**
         * The Monte-Carlo generalized Gauss-Newton diagonal (BackPACK's {@code DiagGGNMC}, Sophia's
         * Gauss-Newton-Bartlett estimator), for models: labels drawn from the model's predictive
         * distribution, the squared gradient of the loss at those labels rescaled to be unbiased
         * for the {@link #GGN} diagonal. First-order gradients only, so every engine; one backward
         * pass per sample ({@code optProbes}, at least 2); standard error: the sample standard
         * deviation over samples over the square root of their number.
         */
        MONTE_CARLO
    }

    /** The default {@link Builder#optMemoryBudget(long)}: 256 MiB of factor columns. */
    public static final long DEFAULT_MEMORY_BUDGET = 256L << 20;

    private static final Logger LOGGER = LoggerFactory.getLogger(HessianDiagonal.class);

    private final Method method;
    private final Curvature curvature;
    private final NDList vectors;
    private final boolean createGraph;
    private final boolean strict;
    private final boolean training;
    private final double finiteDifferenceStep;
    private final long memoryBudget;
    private final boolean perSample;
    private final int probes;
    private final long seed;
    private final ProbeDistribution probeDistribution;

    HessianDiagonal(Builder builder) {
        method = builder.method;
        curvature = builder.method == Method.GGN ? Curvature.GGN : builder.curvature;
        vectors = builder.vectors;
        createGraph = builder.createGraph;
        strict = builder.strict;
        training = builder.training;
        finiteDifferenceStep = builder.finiteDifferenceStep;
        memoryBudget = builder.memoryBudget;
        perSample = builder.perSample;
        probes = builder.probes;
        seed = builder.seed;
        probeDistribution = builder.probeDistribution;
    }

    /**
     * Computes the exact Hessian diagonal of a scalar loss.
     *
     * @param func computes the scalar loss from {@code params}
     * @param params the parameters
     * @return one diagonal per parameter, in order
     */
    public static NDList hessianDiagonal(Supplier<NDArray> func, NDList params) {
        return builder().build().compute(func, params);
    }

    /**
     * Computes the exact Hessian diagonal of a scalar loss, as {@code torch-secorder}'s {@code
     * hessian_diagonal} does.
     *
     * @param func computes the scalar loss from {@code params}
     * @param params the parameters
     * @param v vectors shaped like the parameters to scale the diagonal with, or {@code null}
     * @param createGraph whether the result must be differentiable
     * @param strict whether a parameter that does not require a gradient, or that the loss does not
     *     depend on, is an error rather than a diagonal of zeros
     * @return one diagonal per parameter, in order
     */
    public static NDList hessianDiagonal(
            Supplier<NDArray> func, NDList params, NDList v, boolean createGraph, boolean strict) {
        return builder()
                .optVectors(v)
                .optCreateGraph(createGraph)
                .optStrict(strict)
                .build()
                .compute(func, params);
    }

    /**
     * Computes the exact Hessian diagonal of a model's loss with respect to all its parameters.
     *
     * @param model an initialized block
     * @param loss the loss, evaluated as {@code loss.evaluate(targets, predictions)}
     * @param inputs the model's inputs
     * @param targets the labels
     * @return one diagonal per entry of {@code model.getParameters()}, in that order
     */
    public static NDList modelHessianDiagonal(
            Block model, Loss loss, NDList inputs, NDList targets) {
        return builder().build().compute(model, loss, inputs, targets);
    }

    /**
     * Computes the exact Hessian diagonal of a model's loss with respect to all its parameters.
     *
     * @param model an initialized block
     * @param loss the loss, evaluated as {@code loss.evaluate(targets, predictions)}
     * @param inputs the model's inputs
     * @param targets the labels
     * @param createGraph whether the result must be differentiable
     * @param strict whether a frozen parameter, or one the loss does not depend on, is an error
     * @return one diagonal per entry of {@code model.getParameters()}, in that order
     */
    public static NDList modelHessianDiagonal(
            Block model,
            Loss loss,
            NDList inputs,
            NDList targets,
            boolean createGraph,
            boolean strict) {
        return builder()
                .optCreateGraph(createGraph)
                .optStrict(strict)
                .build()
                .compute(model, loss, inputs, targets);
    }

    /**
     * Creates a builder to configure a {@code HessianDiagonal}.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Computes or estimates the diagonal of a scalar loss with this configuration, with its
     * standard error (zeros for an exact method) and its cost, so that code can switch methods
     * freely. {@link Method#HUTCHINSON} and {@link Method#XDIAG} take Hessian-vector products from
     * {@link HessianVectorProduct}.
     *
     * @param func computes the scalar loss from {@code params}
     * @param params the parameters
     * @return the estimate, its arrays attached to each parameter's manager
     */
    public DiagonalEstimate estimate(Supplier<NDArray> func, NDList params) {
        if (method == Method.HUTCHINSON || method == Method.XDIAG) {
            Arguments.requireNonNull(func, "func");
            NDArray[] scales = Arguments.vectors(vectors, Arguments.parameters(params, "params"));
            CurvatureOperator operator =
                    HessianVectorProduct.builder()
                            .optCurvature(curvature)
                            .optStrict(strict)
                            .build()
                            .operator(func, params);
            return StochasticDiagonals.scaled(
                    StochasticDiagonals.ofOperator(
                            method, operator, probes, seed, probeDistribution, memoryBudget),
                    scales);
        }
        if (method == Method.MONTE_CARLO) {
            throw new IllegalArgumentException(
                    "method MONTE_CARLO samples labels from the model's predictive distribution:"
                            + " use estimate(Block, Loss, NDList, NDList)");
        }
        NDList diagonal = compute(func, params);
        return StochasticDiagonals.exact(diagonal, StochasticDiagonals.exactCost(method, params));
    }

    /**
     * Computes or estimates the diagonal of a model's loss with this configuration, with its
     * standard error (zeros for an exact method) and its cost, so that code can switch methods
     * freely.
     *
     * @param model an initialized block
     * @param loss the loss, evaluated as {@code loss.evaluate(targets, predictions)}
     * @param inputs the model's inputs
     * @param targets the labels
     * @return the estimate, one array per entry of {@code model.getParameters()}, attached to each
     *     parameter's manager
     */
    public DiagonalEstimate estimate(Block model, Loss loss, NDList inputs, NDList targets) {
        if (method == Method.HUTCHINSON || method == Method.XDIAG) {
            CurvatureOperator operator =
                    HessianVectorProduct.builder()
                            .optCurvature(curvature)
                            .optStrict(strict)
                            .optTraining(training)
                            .build()
                            .operator(model, loss, inputs, targets);
            NDArray[] scales =
                    Arguments.vectors(vectors, operator.getParameters().toArray(new NDArray[0]));
            return StochasticDiagonals.scaled(
                    StochasticDiagonals.ofOperator(
                            method, operator, probes, seed, probeDistribution, memoryBudget),
                    scales);
        }
        if (method == Method.MONTE_CARLO) {
            return StochasticDiagonals.monteCarlo(
                    model, loss, inputs, targets, strict, training, probes, seed, vectors);
        }
        NDList diagonal = compute(model, loss, inputs, targets);
        Method resolved = resolve(model, loss);
        return StochasticDiagonals.exact(
                diagonal,
                resolved == Method.STRUCTURED || resolved == Method.GGN
                        ? StochasticDiagonals.outputsPerExample(model, inputs)
                        : StochasticDiagonals.exactCost(
                                resolved, StochasticDiagonals.parametersOf(model)));
    }

    /**
     * Estimates the diagonal of a curvature operator, the Hessian or any symmetric matrix a caller
     * supplies, with {@link Method#HUTCHINSON} or {@link Method#XDIAG}.
     *
     * @param operator the operator; probes are created on each parameter's device, in its data type
     * @return the estimate, its arrays attached to the parameters' managers
     * @throws IllegalArgumentException if the method is not {@link Method#HUTCHINSON} or {@link
     *     Method#XDIAG}
     */
    public DiagonalEstimate estimate(CurvatureOperator operator) {
        Arguments.requireNonNull(operator, "operator");
        NDArray[] scales =
                Arguments.vectors(
                        vectors, Arguments.parameters(operator.getParameters(), "operator"));
        return StochasticDiagonals.scaled(
                StochasticDiagonals.ofOperator(
                        method, operator, probes, seed, probeDistribution, memoryBudget),
                scales);
    }

    /**
     * Computes the Hessian diagonal of a scalar loss with this configuration.
     *
     * @param func computes the scalar loss from {@code params}; it is called with gradient
     *     recording on
     * @param params the parameters
     * @return one diagonal per parameter, in order, attached to each parameter's manager
     */
    public NDList compute(Supplier<NDArray> func, NDList params) {
        if (StochasticDiagonals.isStochastic(method)) {
            return StochasticDiagonals.diagonalOf(estimate(func, params));
        }
        Arguments.requireNonNull(func, "func");
        if (method == Method.STRUCTURED || method == Method.GGN || curvature == Curvature.GGN) {
            throw new IllegalArgumentException(
                    "method "
                            + method
                            + " with curvature "
                            + curvature
                            + " needs the model's structure: use compute(Block, Loss, NDList,"
                            + " NDList)");
        }
        NDArray[] parameters = Arguments.parameters(params, "params");
        String[] names = new String[parameters.length];
        for (int i = 0; i < parameters.length; i++) {
            names[i] = parameters[i].getName();
        }
        List<NDArray> callerArrays = new ArrayList<>(List.of(parameters));
        SecondOrderEngine engine = SecondOrderEngines.of(parameters[0]);
        DiagonalSource source =
                byDifferentiation(engine, method, func, "func", callerArrays, parameters);
        return diagonal(source, engine, parameters, names, callerArrays);
    }

    /**
     * Computes the Hessian diagonal of a model's loss with respect to all its parameters, with this
     * configuration.
     *
     * @param model an initialized block
     * @param loss the loss, evaluated as {@code loss.evaluate(targets, predictions)}
     * @param inputs the model's inputs
     * @param targets the labels
     * @return one diagonal per entry of {@code model.getParameters()}, in that order, attached to
     *     each parameter's manager
     */
    public NDList compute(Block model, Loss loss, NDList inputs, NDList targets) {
        if (StochasticDiagonals.isStochastic(method)) {
            return StochasticDiagonals.diagonalOf(estimate(model, loss, inputs, targets));
        }
        Arguments.ModelParameters checked =
                Arguments.model(model, loss, inputs, targets, "its Hessian diagonal is computed");
        NDArray[] parameters = checked.arrays;
        String[] names = checked.names;
        SecondOrderEngine engine = SecondOrderEngines.of(parameters[0]);
        Supplier<NDArray> func =
                () -> {
                    NDManager manager = inputs.head().getManager();
                    ParameterStore store = new ParameterStore(manager, false);
                    RecordingScope mode = engine.trainingMode(training);
                    try {
                        NDList predictions = model.forward(store, inputs, training);
                        return loss.evaluate(targets, predictions);
                    } finally {
                        mode.close();
                    }
                };
        List<NDArray> callerArrays = new ArrayList<>(List.of(parameters));
        callerArrays.addAll(inputs);
        callerArrays.addAll(targets);
        DiagonalSource source =
                modelSource(engine, model, loss, inputs, targets, func, callerArrays, parameters);
        if (!training) {
            return diagonal(source, engine, parameters, names, callerArrays);
        }
        // Training-mode layers such as BatchNorm update running statistics in every forward pass.
        try (ParameterSnapshot snapshot =
                new ParameterSnapshot(engine, parameters, parameters[0].getManager())) {
            try {
                return diagonal(source, engine, parameters, names, callerArrays);
            } finally {
                snapshot.restore();
            }
        }
    }

    /** Picks how a model's diagonals are computed. */
    private DiagonalSource modelSource(
            SecondOrderEngine engine,
            Block model,
            Loss loss,
            NDList inputs,
            NDList targets,
            Supplier<NDArray> func,
            List<NDArray> callerArrays,
            NDArray[] parameters) {
        Method resolved = resolve(model, loss);
        String lossSource = "loss.evaluate(targets, predictions)";
        if (resolved == Method.STRUCTURED || resolved == Method.GGN) {
            boolean ggn = curvature == Curvature.GGN;
            DiagonalSource structured =
                    (variables, work) ->
                            StructuredDiagonal.compute(
                                    model,
                                    loss,
                                    inputs,
                                    targets,
                                    ggn,
                                    perSample,
                                    training,
                                    memoryBudget,
                                    work);
            return method == Method.AUTO && !ggn
                    ? fallingBack(
                            parameters,
                            structured,
                            byDifferentiation(
                                    engine,
                                    Method.AUTOGRAD,
                                    func,
                                    lossSource,
                                    callerArrays,
                                    parameters))
                    : structured;
        }
        if (method == Method.AUTO && !createGraph) {
            List<String> unsupported = unsupportedBlocks(model, loss);
            warnFallback(unsupported.isEmpty() ? "(none found)" : unsupported.get(0), parameters);
        }
        return byDifferentiation(engine, resolved, func, lossSource, callerArrays, parameters);
    }

    /**
     * Logs the one warning of a call whose {@link Method#AUTO} takes the double backward.
     *
     * @param reason the first unsupported block or loss, with the reason
     * @param parameters the parameters
     */
    private static void warnFallback(String reason, NDArray[] parameters) {
        long products = 0;
        for (NDArray parameter : parameters) {
            if (parameter.hasGradient()) {
                products += parameter.size();
            }
        }
        LOGGER.warn(
                "Method.AUTO computes this Hessian diagonal by double backward, one Hessian-vector"
                        + " product per parameter element: {} products, each about two backward"
                        + " passes (Method.STRUCTURED takes a few). {} HessianDiagonal."
                        + "unsupportedBlocks lists every such block; BlockRules.register adds a"
                        + " rule.",
                products,
                reason);
    }

    /**
     * Returns the blocks of a model (and the loss) that the structured methods do not support, each
     * with the reason, in the mode of this configuration ({@link Builder#optTraining}): what makes
     * {@link Method#AUTO} take the double backward, one Hessian-vector product per parameter
     * element. Empty if the model is supported.
     *
     * <p>The children of an unsupported block are not looked at; what depends on the data (the rank
     * of a {@code Linear} block's input) shows only when computing. With {@link Curvature#GGN}, a
     * block without a rule of its own is covered by the generic rule (its products from first-order
     * autograd, logged with its cost when it runs) and is not listed.
     *
     * @param model the model
     * @param loss the loss
     * @return one message per unsupported block or loss
     */
    public List<String> unsupportedBlocks(Block model, Loss loss) {
        Arguments.requireNonNull(model, "model");
        Arguments.requireNonNull(loss, "loss");
        return StructuredDiagonal.unsupportedBlocks(
                model, loss, training, curvature == Curvature.GGN);
    }

    /**
     * Returns the method a call of {@link #compute(Block, Loss, NDList, NDList)} with this
     * configuration uses: {@link Method#AUTO} becomes {@link Method#STRUCTURED} where every block
     * and the loss are supported and no graph is asked for, or where the curvature is {@link
     * Curvature#GGN} (which only the structured method computes), and {@link Method#AUTOGRAD}
     * otherwise. When {@code AUTO} takes {@code AUTOGRAD} for a model, {@code compute} logs one
     * warning naming the first unsupported block and the number of Hessian-vector products.
     *
     * @param model the model
     * @param loss the loss
     * @return the method that will run
     */
    public Method resolve(Block model, Loss loss) {
        if (method != Method.AUTO) {
            return method;
        }
        if (curvature == Curvature.GGN) {
            return Method.STRUCTURED;
        }
        return !createGraph && StructuredDiagonal.supports(model, loss, training)
                ? Method.STRUCTURED
                : Method.AUTOGRAD;
    }

    /**
     * What {@link Method#AUTO} runs once it picked {@link Method#STRUCTURED}: some limits (a {@code
     * Linear} block on inputs of rank above 2, say) show only in the data, and then the exact
     * double backward takes over.
     */
    private static DiagonalSource fallingBack(
            NDArray[] parameters, DiagonalSource structured, DiagonalSource autograd) {
        return (active, work) -> {
            try {
                return structured.compute(active, work);
            } catch (UnsupportedOperationException e) {
                warnFallback(e.getMessage(), parameters);
                return autograd.compute(active, work);
            }
        };
    }

    /** Diagonals of every parameter from the differentiation methods, which see only a loss. */
    private DiagonalSource byDifferentiation(
            SecondOrderEngine engine,
            Method resolved,
            Supplier<NDArray> func,
            String lossSource,
            List<NDArray> callerArrays,
            NDArray[] parameters) {
        return (indices, work) -> {
            NDArray[] variables = new NDArray[indices.length];
            for (int k = 0; k < indices.length; k++) {
                variables[k] = parameters[indices[k]];
            }
            LossFunction loss = new LossFunction(engine, func, lossSource, callerArrays);
            NDArray[] computed;
            if (resolved == Method.FINITE_DIFFERENCE) {
                computed =
                        FiniteDifferenceDiagonal.compute(
                                loss, variables, finiteDifferenceStep, work);
            } else {
                computed = AutogradDiagonal.compute(loss, variables, createGraph, work);
            }
            NDArray[] diagonals = new NDArray[parameters.length];
            for (int k = 0; k < indices.length; k++) {
                diagonals[indices[k]] = computed[k];
            }
            return diagonals;
        };
    }

    /**
     * Computes per-parameter results with this configuration's strict, zero and {@code v} handling,
     * attached to each parameter's manager; also used for Hessian-vector products.
     */
    NDList diagonal(
            DiagonalSource source,
            SecondOrderEngine engine,
            NDArray[] parameters,
            String[] names,
            List<NDArray> callerArrays) {
        NDArray[] scales = Arguments.vectors(vectors, parameters);
        if (scales != null) {
            callerArrays.addAll(List.of(scales));
        }
        boolean[] active = new boolean[parameters.length];
        int activeCount = 0;
        for (int i = 0; i < parameters.length; i++) {
            active[i] = parameters[i].hasGradient();
            if (active[i]) {
                activeCount++;
            } else if (strict) {
                throw new IllegalArgumentException(
                        "strict: parameter "
                                + Arguments.describe(i, names[i])
                                + " does not require a gradient");
            }
        }
        NDManager[] owners = new NDManager[parameters.length];
        for (int i = 0; i < parameters.length; i++) {
            owners[i] = parameters[i].getManager();
        }
        try (NDManager work = owners[0].newSubManager()) {
            int[] indices = new int[activeCount];
            for (int i = 0, k = 0; i < parameters.length; i++) {
                if (active[i]) {
                    indices[k++] = i;
                }
            }
            NDArray[] diagonals =
                    activeCount == 0
                            ? new NDArray[parameters.length]
                            : source.compute(indices, work);
            NDList result = new NDList(parameters.length);
            RecordingScope recording = engine.recording(createGraph);
            try {
                for (int i = 0; i < parameters.length; i++) {
                    result.add(finish(diagonals[i], parameters, i, active[i], names, scales, work));
                }
            } finally {
                recording.close();
            }
            for (int i = 0; i < parameters.length; i++) {
                result.get(i).attach(owners[i]);
            }
            return result;
        }
    }

    /** Applies {@code strict}, zeros and {@code v} to one parameter's diagonal. */
    private NDArray finish(
            NDArray computed,
            NDArray[] parameters,
            int index,
            boolean active,
            String[] names,
            NDArray[] scales,
            NDManager work) {
        NDArray diagonal = computed;
        if (diagonal == null && active && strict) {
            throw new IllegalArgumentException(
                    "strict: the loss does not depend on parameter "
                            + Arguments.describe(index, names[index]));
        }
        if (diagonal == null) {
            NDArray parameter = parameters[index];
            diagonal =
                    work.zeros(
                            parameter.getShape(), parameter.getDataType(), parameter.getDevice());
        } else if (!active) {
            // computed for a frozen parameter by a method that sees the whole model
            diagonal = diagonal.zerosLike();
        }
        return scales == null ? diagonal : diagonal.mul(scales[index]);
    }

    /** Configures a {@link HessianDiagonal}; every setting is optional. */
    public static final class Builder {

        Method method = Method.AUTO;
        Curvature curvature = Curvature.HESSIAN;
        NDList vectors;
        boolean createGraph;
        boolean strict;
        boolean training;
        double finiteDifferenceStep = Double.NaN;
        boolean finiteDifferenceStepSet;
        long memoryBudget = DEFAULT_MEMORY_BUDGET;
        boolean perSample;
        int probes = HessianTrace.DEFAULT_PROBES;
        long seed;
        ProbeDistribution probeDistribution = ProbeDistribution.RADEMACHER;

        Builder() {}

        /**
         * Sets how the diagonal is computed; {@link Method#AUTO} by default.
         *
         * @param method the method
         * @return this builder
         */
        public Builder optMethod(Method method) {
            this.method = method;
            return this;
        }

        /**
         * Sets which curvature's diagonal is computed: {@link Curvature#HESSIAN} (the default) or
         * {@link Curvature#GGN}, the generalized Gauss-Newton matrix, which only {@link
         * Method#STRUCTURED} computes (and {@link Method#AUTO}, which then picks it) and which is
         * never negative where the loss is convex in the model's output.
         *
         * @param curvature the curvature
         * @return this builder
         */
        public Builder optCurvature(Curvature curvature) {
            this.curvature = curvature;
            return this;
        }

        /**
         * Sets vectors {@code v}, one per parameter and shaped like it, to compute {@code v_i *
         * H_ii} instead of {@code H_ii}; {@code null} (the default) for the plain diagonal.
         *
         * @param vectors the vectors, or {@code null}
         * @return this builder
         */
        public Builder optVectors(NDList vectors) {
            this.vectors = vectors;
            return this;
        }

        /**
         * Sets whether the result is differentiable, for higher derivatives; {@code false} by
         * default. Needs an exact method.
         *
         * @param createGraph whether to record the computation of the diagonal
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
         * Sets whether a model's forward pass runs in training mode; {@code false} (deterministic
         * inference mode) by default. Running statistics that training mode updates are put back
         * afterwards.
         *
         * @param training whether to run the model in training mode
         * @return this builder
         */
        public Builder optTraining(boolean training) {
            this.training = training;
            return this;
        }

        /**
         * Sets the step of {@link Method#FINITE_DIFFERENCE}, relative to {@code max(1, |x|)}; by
         * default the cube root of the machine epsilon of each parameter's data type.
         *
         * @param relativeStep a positive, finite step
         * @return this builder
         */
        public Builder optFiniteDifferenceStep(double relativeStep) {
            this.finiteDifferenceStep = relativeStep;
            this.finiteDifferenceStepSet = true;
            return this;
        }

        /**
         * Sets how many bytes of factor columns {@link Method#STRUCTURED} and {@link Method#GGN}
         * hold at once; wider layers are processed in chunks. {@link #DEFAULT_MEMORY_BUDGET} by
         * default.
         *
         * @param bytes a positive number of bytes
         * @return this builder
         */
        public Builder optMemoryBudget(long bytes) {
            this.memoryBudget = bytes;
            return this;
        }

        /**
         * Sets whether {@link Method#STRUCTURED} or {@link Method#GGN} return one diagonal per
         * example of the batch, along a new leading axis; they sum to the batch's diagonal. {@code
         * false} by default.
         *
         * @param perSample whether to return per-example diagonals
         * @return this builder
         */
        public Builder optPerSample(boolean perSample) {
            this.perSample = perSample;
            return this;
        }

        /**
         * Sets the number of probes of a stochastic method: the Hessian-vector products of {@link
         * Method#HUTCHINSON} and {@link Method#XDIAG}, the sampled labels (backward passes) of
         * {@link Method#MONTE_CARLO}; {@link HessianTrace#DEFAULT_PROBES} by default. Exact methods
         * ignore it.
         *
         * @param probes the number of probes
         * @return this builder
         */
        public Builder optProbes(int probes) {
            this.probes = probes;
            return this;
        }

        /**
         * Sets the seed of a stochastic method's probes or sampled labels; 0 by default. The same
         * seed gives the same result on every engine and device; use different seeds for
         * independent estimates.
         *
         * @param seed the seed
         * @return this builder
         */
        public Builder optSeed(long seed) {
            this.seed = seed;
            return this;
        }

        /**
         * Sets the distribution of the entries of the probes of {@link Method#HUTCHINSON} and
         * {@link Method#XDIAG}; {@link ProbeDistribution#RADEMACHER} by default.
         *
         * @param distribution the distribution
         * @return this builder
         */
        public Builder optProbeDistribution(ProbeDistribution distribution) {
            this.probeDistribution = distribution;
            return this;
        }

        /**
         * Builds the configured {@code HessianDiagonal}.
         *
         * @return the {@code HessianDiagonal}
         * @throws IllegalArgumentException if the settings contradict each other
         */
        public HessianDiagonal build() {
            validate();
            return new HessianDiagonal(this);
        }

        /**
         * Checks the curvature against the method.
         *
         * @return whether the curvature is the generalized Gauss-Newton matrix
         */
        private boolean validateCurvature() {
            Arguments.requireNonNull(curvature, "curvature");
            boolean ggn = curvature == Curvature.GGN || method == Method.GGN;
            if (ggn
                    && method != Method.AUTO
                    && method != Method.STRUCTURED
                    && method != Method.GGN
                    && !StochasticDiagonals.isStochastic(method)) {
                throw new IllegalArgumentException(
                        "curvature: the generalized Gauss-Newton diagonal needs Method.STRUCTURED,"
                                + " Method.AUTO or a stochastic method, got "
                                + method);
            }
            if (ggn && createGraph) {
                throw new IllegalArgumentException(
                        "createGraph: the generalized Gauss-Newton diagonal is computed by"
                                + " Method.STRUCTURED, which gives no differentiable result");
            }
            return ggn;
        }

        private void validate() {
            Arguments.requireNonNull(method, "method");
            boolean ggn = validateCurvature();
            StochasticDiagonals.validate(method, probes, probeDistribution, createGraph);
            if (createGraph && method == Method.FINITE_DIFFERENCE) {
                throw new IllegalArgumentException(
                        "createGraph: finite differences give no differentiable result; use"
                                + " Method.AUTOGRAD (or AUTO) with createGraph=true");
            }
            boolean structured = method == Method.STRUCTURED || method == Method.GGN;
            if (createGraph && structured) {
                throw new IllegalArgumentException(
                        "createGraph: method "
                                + method
                                + " gives no differentiable result; use Method.AUTOGRAD (or AUTO)"
                                + " with createGraph=true");
            }
            if (perSample && !structured && !(ggn && method == Method.AUTO)) {
                throw new IllegalArgumentException(
                        "perSample: per-example diagonals need Method.STRUCTURED or Method.GGN, got"
                                + " "
                                + method);
            }
            if (memoryBudget <= 0) {
                throw new IllegalArgumentException(
                        "memoryBudget must be a positive number of bytes, got " + memoryBudget);
            }
            if (finiteDifferenceStepSet
                    && !(finiteDifferenceStep > 0 && Double.isFinite(finiteDifferenceStep))) {
                throw new IllegalArgumentException(
                        "finiteDifferenceStep must be positive and finite, got "
                                + finiteDifferenceStep);
            }
        }
    }
}
