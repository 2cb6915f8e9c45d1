package org.secorder.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;
import ai.djl.nn.ParameterList;
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
        FINITE_DIFFERENCE
    }

    private final Method method;
    private final NDList vectors;
    private final boolean createGraph;
    private final boolean strict;
    private final boolean training;
    private final double finiteDifferenceStep;

    HessianDiagonal(Builder builder) {
        method = builder.method;
        vectors = builder.vectors;
        createGraph = builder.createGraph;
        strict = builder.strict;
        training = builder.training;
        finiteDifferenceStep = builder.finiteDifferenceStep;
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
     * Computes the Hessian diagonal of a scalar loss with this configuration.
     *
     * @param func computes the scalar loss from {@code params}; it is called with gradient
     *     recording on
     * @param params the parameters
     * @return one diagonal per parameter, in order, attached to each parameter's manager
     */
    public NDList compute(Supplier<NDArray> func, NDList params) {
        Arguments.requireNonNull(func, "func");
        NDArray[] parameters = Arguments.parameters(params, "params");
        String[] names = new String[parameters.length];
        for (int i = 0; i < parameters.length; i++) {
            names[i] = parameters[i].getName();
        }
        List<NDArray> callerArrays = new ArrayList<>(List.of(parameters));
        return diagonal(func, parameters, names, callerArrays);
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
        Arguments.requireNonNull(model, "model");
        Arguments.requireNonNull(loss, "loss");
        Arguments.arrays(inputs, "inputs");
        Arguments.arrays(targets, "targets");
        if (!model.isInitialized()) {
            throw new IllegalStateException(
                    "model must be initialized before its Hessian diagonal is computed: call"
                            + " model.initialize(manager, dataType, inputShapes) first");
        }
        ParameterList entries = model.getParameters();
        if (entries.isEmpty()) {
            throw new IllegalArgumentException("model has no parameters");
        }
        NDArray[] parameters = new NDArray[entries.size()];
        String[] names = new String[entries.size()];
        for (int i = 0; i < parameters.length; i++) {
            names[i] = entries.get(i).getKey();
            parameters[i] = entries.get(i).getValue().getArray();
        }
        Arguments.parameters(new NDList(parameters), "model.getParameters()");
        Supplier<NDArray> func =
                () -> {
                    NDManager manager = inputs.head().getManager();
                    ParameterStore store = new ParameterStore(manager, false);
                    NDList predictions = model.forward(store, inputs, training);
                    return loss.evaluate(targets, predictions);
                };
        List<NDArray> callerArrays = new ArrayList<>(List.of(parameters));
        callerArrays.addAll(inputs);
        callerArrays.addAll(targets);
        if (!training) {
            return diagonal(func, parameters, names, callerArrays);
        }
        // Training-mode layers such as BatchNorm update running statistics in every forward pass.
        SecondOrderEngine engine = SecondOrderEngines.of(parameters[0]);
        try (ParameterSnapshot snapshot =
                new ParameterSnapshot(engine, parameters, parameters[0].getManager())) {
            try {
                return diagonal(func, parameters, names, callerArrays);
            } finally {
                snapshot.restore();
            }
        }
    }

    private NDList diagonal(
            Supplier<NDArray> func,
            NDArray[] parameters,
            String[] names,
            List<NDArray> callerArrays) {
        NDArray[] scales = Arguments.vectors(vectors, parameters);
        if (scales != null) {
            callerArrays.addAll(List.of(scales));
        }
        SecondOrderEngine engine = SecondOrderEngines.of(parameters[0]);
        List<Integer> active = new ArrayList<>();
        for (int i = 0; i < parameters.length; i++) {
            if (parameters[i].hasGradient()) {
                active.add(i);
            } else if (strict) {
                throw new IllegalArgumentException(
                        "strict: parameter "
                                + Arguments.describe(i, names[i])
                                + " does not require a gradient");
            }
        }
        NDArray[] variables = new NDArray[active.size()];
        for (int k = 0; k < variables.length; k++) {
            variables[k] = parameters[active.get(k)];
        }
        LossFunction loss = new LossFunction(engine, func, callerArrays);
        NDManager[] owners = new NDManager[parameters.length];
        for (int i = 0; i < parameters.length; i++) {
            owners[i] = parameters[i].getManager();
        }
        try (NDManager work = owners[0].newSubManager()) {
            NDArray[] diagonals = new NDArray[parameters.length];
            if (variables.length > 0) {
                NDArray[] computed = run(loss, engine, variables, work);
                for (int k = 0; k < variables.length; k++) {
                    diagonals[active.get(k)] = computed[k];
                }
            }
            NDList result = new NDList(parameters.length);
            RecordingScope recording = engine.recording(createGraph);
            try {
                for (int i = 0; i < parameters.length; i++) {
                    NDArray diagonal = diagonals[i];
                    if (diagonal == null) {
                        if (strict) {
                            throw new IllegalArgumentException(
                                    "strict: the loss does not depend on parameter "
                                            + Arguments.describe(i, names[i]));
                        }
                        NDArray parameter = parameters[i];
                        diagonal =
                                work.zeros(
                                        parameter.getShape(),
                                        parameter.getDataType(),
                                        parameter.getDevice());
                    }
                    if (scales != null) {
                        diagonal = diagonal.mul(scales[i]);
                    }
                    result.add(diagonal);
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

    private NDArray[] run(
            LossFunction loss, SecondOrderEngine engine, NDArray[] variables, NDManager work) {
        switch (method) {
            case AUTO:
            case AUTOGRAD:
                return AutogradDiagonal.compute(loss, variables, createGraph, work);
            case FINITE_DIFFERENCE:
                return FiniteDifferenceDiagonal.compute(
                        loss, variables, finiteDifferenceStep, work);
            default:
                throw new IllegalStateException("Unknown method " + method);
        }
    }

    /** Configures a {@link HessianDiagonal}; every setting is optional. */
    public static final class Builder {

        Method method = Method.AUTO;
        NDList vectors;
        boolean createGraph;
        boolean strict;
        boolean training;
        double finiteDifferenceStep = Double.NaN;
        boolean finiteDifferenceStepSet;

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
         * Builds the configured {@code HessianDiagonal}.
         *
         * @return the {@code HessianDiagonal}
         * @throws IllegalArgumentException if the settings contradict each other
         */
        public HessianDiagonal build() {
            validate();
            return new HessianDiagonal(this);
        }

        private void validate() {
            Arguments.requireNonNull(method, "method");
            if (createGraph && method == Method.FINITE_DIFFERENCE) {
                throw new IllegalArgumentException(
                        "createGraph: finite differences give no differentiable result; use"
                                + " Method.AUTOGRAD (or AUTO) with createGraph=true");
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
