package org.secorder.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.training.loss.Loss;
import org.secorder.engine.SecondOrderEngine;
import org.secorder.engine.SecondOrderEngines;
import org.secorder.estimation.internal.FlatEstimate;
import org.secorder.estimation.internal.Hutchinson;
import org.secorder.estimation.internal.MonteCarloGgn;
import org.secorder.estimation.internal.ParameterSpace;
import org.secorder.estimation.internal.Probes;
import org.secorder.estimation.internal.XDiag;
import org.secorder.evaluation.ParameterSnapshot;
import org.secorder.operator.CurvatureOperator;

/** The stochastic methods of {@link HessianDiagonal} and the wrapping of results as estimates. */
final class StochasticDiagonals {

    private StochasticDiagonals() {}

    /** Whether a method is a stochastic estimator. */
    static boolean isStochastic(HessianDiagonal.Method method) {
        return method == HessianDiagonal.Method.HUTCHINSON
                || method == HessianDiagonal.Method.XDIAG
                || method == HessianDiagonal.Method.MONTE_CARLO;
    }

    /** Checks the builder settings of the stochastic methods. */
    static void validate(
            HessianDiagonal.Method method,
            int probes,
            ProbeDistribution distribution,
            boolean createGraph) {
        Arguments.requireNonNull(distribution, "probeDistribution");
        if (probes < 1) {
            throw new IllegalArgumentException("probes must be at least 1, got " + probes);
        }
        if (isStochastic(method)) {
            int minimum = minimumProbes(method);
            if (probes < minimum) {
                throw new IllegalArgumentException(
                        "probes: "
                                + method
                                + " needs at least "
                                + minimum
                                + " probes for a standard error, got "
                                + probes);
            }
            if (createGraph) {
                throw new IllegalArgumentException(
                        "createGraph: the stochastic method "
                                + method
                                + " gives no differentiable result; use Method.AUTOGRAD (or"
                                + " AUTO) with createGraph=true");
            }
        }
    }

    /** The fewest probes a method can give a standard error with. */
    static int minimumProbes(HessianDiagonal.Method method) {
        return method == HessianDiagonal.Method.XDIAG ? 4 : 2;
    }

    /**
     * Estimates an operator's diagonal by {@link HessianDiagonal.Method#HUTCHINSON} or {@link
     * HessianDiagonal.Method#XDIAG}.
     */
    static DiagonalEstimate ofOperator(
            HessianDiagonal.Method method,
            CurvatureOperator operator,
            int probes,
            long seed,
            ProbeDistribution distribution,
            long memoryBudget) {
        Arguments.requireNonNull(operator, "operator");
        if (method != HessianDiagonal.Method.HUTCHINSON && method != HessianDiagonal.Method.XDIAG) {
            throw new IllegalArgumentException(
                    "method "
                            + method
                            + " needs a loss; the diagonal of a curvature operator is estimated by"
                            + " Method.HUTCHINSON or Method.XDIAG");
        }
        NDArray[] parameters = Arguments.parameters(operator.getParameters(), "operator");
        ParameterSpace space = new ParameterSpace(parameters);
        Probes random = new Probes(seed, distribution == ProbeDistribution.GAUSSIAN);
        int batch = space.batchSize(memoryBudget, probes);
        FlatEstimate estimate =
                method == HessianDiagonal.Method.HUTCHINSON
                        ? Hutchinson.diagonal(space, operator, probes, random, batch)
                        : XDiag.diagonal(space, operator, probes / 2, random, batch);
        return of(space, estimate);
    }

    /** Copies a host estimate to the parameters' devices and data types. */
    static DiagonalEstimate of(ParameterSpace space, FlatEstimate estimate) {
        NDList diagonal = space.toParameters(estimate.getMean());
        NDList standardError = space.toParameters(estimate.getStandardError());
        return new DiagonalEstimate(diagonal, standardError, estimate.getProducts());
    }

    /** Wraps an exact diagonal, with a standard error of zeros attached like it. */
    static DiagonalEstimate exact(NDList diagonal, long products) {
        NDList zeros = new NDList(diagonal.size());
        for (NDArray array : diagonal) {
            zeros.add(array.zerosLike());
        }
        return new DiagonalEstimate(diagonal, zeros, products);
    }

    /**
     * Scales an estimate by vectors {@code v}: the diagonal by {@code v}, the standard error by
     * {@code |v|}; closes the unscaled arrays.
     */
    static DiagonalEstimate scaled(DiagonalEstimate estimate, NDArray[] scales) {
        if (scales == null) {
            return estimate;
        }
        NDList diagonal = new NDList(scales.length);
        NDList standardError = new NDList(scales.length);
        try (estimate) {
            for (int i = 0; i < scales.length; i++) {
                NDArray d = estimate.getDiagonal().get(i);
                NDArray e = estimate.getStandardError().get(i);
                NDArray scaledDiagonal = d.mul(scales[i]);
                NDArray absolute = scales[i].abs();
                NDArray scaledError = e.mul(absolute);
                absolute.close();
                scaledDiagonal.attach(d.getManager());
                scaledError.attach(e.getManager());
                diagonal.add(scaledDiagonal);
                standardError.add(scaledError);
            }
        }
        return new DiagonalEstimate(diagonal, standardError, estimate.getProducts());
    }

    /** Keeps an estimate's diagonal and closes its standard error. */
    static NDList diagonalOf(DiagonalEstimate estimate) {
        estimate.getStandardError().close();
        return estimate.getDiagonal();
    }

    /** The model's parameter arrays, in the order of {@code getParameters()}. */
    static NDList parametersOf(Block model) {
        NDList parameters = new NDList();
        for (var entry : model.getParameters()) {
            parameters.add(entry.getValue().getArray());
        }
        return parameters;
    }

    /**
     * The cost of an exact differentiation method: one Hessian-vector product per element of the
     * parameters that require gradients for {@code AUTOGRAD} (and {@code AUTO} on a loss), two
     * gradient evaluations per element for {@code FINITE_DIFFERENCE}.
     */
    static long exactCost(HessianDiagonal.Method method, NDList params) {
        long elements = 0;
        for (NDArray parameter : params) {
            if (parameter.hasGradient()) {
                elements += parameter.size();
            }
        }
        return method == HessianDiagonal.Method.FINITE_DIFFERENCE ? 2 * elements : elements;
    }

    /**
     * The loss columns of the structured methods: the model's outputs per example, the columns of
     * the loss's Hessian that they carry backwards.
     */
    static long outputsPerExample(Block model, NDList inputs) {
        Shape output = model.getOutputShapes(inputs.getShapes())[0];
        long batch = output.dimension() == 0 ? 1 : Math.max(1, output.get(0));
        return output.size() / batch;
    }

    /** {@link HessianDiagonal.Method#MONTE_CARLO} for a model. */
    static DiagonalEstimate monteCarlo(
            Block model,
            Loss loss,
            NDList inputs,
            NDList targets,
            boolean strict,
            boolean training,
            int probes,
            long seed,
            NDList vectors) {
        Arguments.ModelParameters checked =
                Arguments.model(model, loss, inputs, targets, "its GGN diagonal is estimated");
        NDArray[] parameters = checked.arrays;
        NDArray[] scales = Arguments.vectors(vectors, parameters);
        boolean[] active = new boolean[parameters.length];
        for (int i = 0; i < parameters.length; i++) {
            active[i] = parameters[i].hasGradient();
            if (!active[i] && strict) {
                throw new IllegalArgumentException(
                        "strict: parameter "
                                + Arguments.describe(i, checked.names[i])
                                + " does not require a gradient");
            }
        }
        SecondOrderEngine engine = SecondOrderEngines.of(parameters[0]);
        ParameterSpace space = new ParameterSpace(parameters);
        FlatEstimate estimate;
        if (training) {
            // training-mode layers such as BatchNorm update running statistics in every pass
            try (ParameterSnapshot snapshot =
                    new ParameterSnapshot(engine, parameters, parameters[0].getManager())) {
                try {
                    estimate =
                            MonteCarloGgn.estimate(
                                    engine,
                                    model,
                                    loss,
                                    inputs,
                                    targets,
                                    parameters,
                                    active,
                                    true,
                                    probes,
                                    seed);
                } finally {
                    snapshot.restore();
                }
            }
        } else {
            estimate =
                    MonteCarloGgn.estimate(
                            engine,
                            model,
                            loss,
                            inputs,
                            targets,
                            parameters,
                            active,
                            false,
                            probes,
                            seed);
        }
        return scaled(of(space, estimate), scales);
    }
}
