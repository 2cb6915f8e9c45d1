package org.secorder.structured.internal.rules;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
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
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngine;
import org.secorder.engine.SecondOrderEngines;
import org.secorder.structured.BlockDerivatives;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The generic rule: the derivatives of a block without an explicit rule, taken from the engine's
 * first-order autograd ({@link SecondOrderEngine#gradient}), which every engine has; for the
 * Hessian also the block's own curvature, taken by double backward, which needs an engine that
 * differentiates its operators twice.
 *
 * <p>It assumes that the block keeps samples independent (sample {@code n} of its output depends on
 * sample {@code n} of its input only) and checks this on every forward pass: each sample run alone
 * must give the output it has in the batch. BatchNorm in training mode, a recurrent block whose
 * batch is not the first axis, or a random block in training mode fail that check and are refused.
 *
 * <ul>
 *   <li>{@link #transposedJacobian}: one vector-Jacobian product through the block for all rows at
 *       once, every sample's input repeated once per row (exact, as samples are independent).
 *   <li>{@link #parameterProducts}: reverse mode sums parameter gradients over the batch, so each
 *       sample's product with each row is one forward and backward pass of that sample alone:
 *       {@code N k} products of one sample for {@code N} samples and {@code k} rows per sample.
 *   <li>{@link #curvatureColumns} (the Hessian only): {@code M_n = sum_j g_nj d^2 y_nj / dx_n^2},
 *       one Hessian-vector product of {@code sum_n g_n . y_n} per input feature {@code i}, with
 *       {@code e_i} in every sample at once (samples are independent, so the product is {@code M_n
 *       e_i} for every {@code n}); then {@code M_n = sum_i [(e_i + m_i)(e_i + m_i)^T - (e_i -
 *       m_i)(e_i - m_i)^T] / 4}, {@code m_i = M_n e_i}: {@code 2 d} signed columns for {@code d}
 *       input features, exact since {@code M_n} is symmetric.
 *   <li>{@link #parameterCurvature} (the Hessian only): the diagonal of the second derivative of
 *       {@code sum_n g_n . y_n} with respect to the block's parameters, by the engine's
 *       double-backward diagonal: one Hessian-vector product per parameter element for the batch
 *       summed, one per element and sample for per-sample diagonals.
 * </ul>
 *
 * <p>The block runs with stand-in copies of its parameters (from a store of its own), so that the
 * caller's parameters, gradient buffers and flags are never touched; parameters that do not require
 * a gradient (running statistics, frozen parameters) get no diagonal. One warning per computation
 * names the block and this cost.
 */
public final class GenericDerivatives implements BlockDerivatives, SummedParameterCurvature {

    private static final Logger LOGGER = LoggerFactory.getLogger(GenericDerivatives.class);

    /** The most elements of Hessian-vector products taken in one double-backward call. */
    private static final long PRODUCT_ELEMENTS = 1L << 22;

    private final String description;
    private final Block block;
    private final String reason;
    private final boolean ownCurvature;
    private final boolean curvatureOnly;
    private final List<Parameter> parameters = new ArrayList<>();
    private NDArray input;
    private boolean training;
    private boolean warned;

    /**
     * Creates the generic derivatives of a block for one computation.
     *
     * @param description the block's path and kind, for messages
     * @param block the block
     * @param reason why the block has no explicit products, for the warning
     * @param ownCurvature whether the block's own curvature is needed (the Hessian): it takes
     *     double backward
     */
    public GenericDerivatives(
            String description, Block block, String reason, boolean ownCurvature) {
        this(description, block, reason, ownCurvature, false);
    }

    private GenericDerivatives(
            String description,
            Block block,
            String reason,
            boolean ownCurvature,
            boolean curvatureOnly) {
        this.description = description;
        this.block = block;
        this.reason = reason;
        this.ownCurvature = ownCurvature;
        this.curvatureOnly = curvatureOnly;
        for (Pair<String, Parameter> entry : block.getParameters()) {
            if (entry.getValue().requiresGradient()) {
                parameters.add(entry.getValue());
            }
        }
    }

    /**
     * Creates the generic derivatives of a block whose products an explicit rule gives, for the
     * block's own curvature only (the Hessian): {@link #curvatureColumns} and the parameter
     * curvatures, by double backward. Its warning names that cost alone.
     *
     * @param description the block's path and kind, for messages
     * @param block the block
     * @param reason why the explicit rule has no curvature of its own, for the warning
     * @return the derivatives
     */
    public static GenericDerivatives curvatureOnly(String description, Block block, String reason) {
        return new GenericDerivatives(description, block, reason, true, true);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forward(ParameterStore parameterStore, NDArray x, boolean trainingMode) {
        input = x;
        training = trainingMode;
        long batch = x.getShape().get(0);
        warnOnce(batch, x.getShape().slice(1).size());
        NDManager target = x.getManager();
        try (NDManager scope = target.newSubManager()) {
            StandIns standIns = new StandIns(scope, false);
            NDArray output = run(standIns, x);
            NDList alone = new NDList();
            for (long n = 0; n < batch; n++) {
                alone.add(run(standIns, sample(x, n, scope)));
            }
            checkIndependent(output, NDArrays.concat(alone, 0));
            output.attach(target);
            return output;
        }
    }

    /** {@inheritDoc} */
    @Override
    public NDArray transposedJacobian(NDArray rows, long k) {
        NDManager target = rows.getManager();
        try (NDManager scope = target.newSubManager()) {
            StandIns standIns = new StandIns(scope, false);
            NDArray repeated = k == 1 ? input.duplicate() : input.repeat(0, k);
            repeated.attach(scope);
            repeated.setRequiresGradient(true);
            NDArray[] gradients = vectorJacobian(standIns, repeated, rows, repeated);
            NDArray result = gradients[0] == null ? repeated.zerosLike() : gradients[0];
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
        if (parameters.isEmpty()) {
            return new NDList();
        }
        NDManager target = rows.getManager();
        try (NDManager scope = target.newSubManager()) {
            StandIns standIns = new StandIns(scope, true);
            NDArray[] variables = standIns.variables();
            long batch = input.getShape().get(0);
            List<NDList> products = new ArrayList<>();
            for (int p = 0; p < variables.length; p++) {
                products.add(new NDList());
            }
            for (long n = 0; n < batch; n++) {
                for (long r = 0; r < k; r++) {
                    try (NDManager pass = scope.newSubManager()) {
                        NDArray alone = sample(input, n, pass);
                        NDArray row = rows.get(new NDIndex("{}:{}", n * k + r, n * k + r + 1));
                        row.attach(pass);
                        NDArray[] gradients = vectorJacobian(standIns, alone, row, variables);
                        for (int p = 0; p < variables.length; p++) {
                            NDArray gradient =
                                    gradients[p] == null ? variables[p].zerosLike() : gradients[p];
                            gradient.attach(scope);
                            products.get(p).add(gradient);
                        }
                    }
                }
            }
            NDList result = new NDList();
            for (NDList product : products) {
                NDArray stacked = NDArrays.stack(product);
                stacked.attach(target);
                result.add(stacked);
            }
            return result;
        }
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasCurvature() {
        return ownCurvature;
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasDiagonalCurvature() {
        return false;
    }

    /** {@inheritDoc} */
    @Override
    public NDList curvatureColumns(NDArray outputGradient) {
        NDManager target = outputGradient.getManager();
        Shape inputShape = input.getShape();
        long batch = inputShape.get(0);
        Shape features = inputShape.slice(1);
        long d = features.size();
        try (NDManager scope = target.newSubManager()) {
            StandIns standIns = new StandIns(scope, false);
            NDArray identity = scope.eye(Math.toIntExact(d)).toType(input.getDataType(), false);
            NDList rows = new NDList();
            long perCall = Math.max(1, PRODUCT_ELEMENTS / Math.max(1, batch * d));
            for (long from = 0; from < d; from += perCall) {
                long to = Math.min(d, from + perCall);
                try (NDManager pass = scope.newSubManager()) {
                    NDArray x = input.duplicate();
                    x.attach(pass);
                    x.setRequiresGradient(true);
                    NDArray[][] vectors = new NDArray[Math.toIntExact(to - from)][];
                    for (long i = from; i < to; i++) {
                        NDArray unit = identity.get(i).reshape(new Shape(1).addAll(features));
                        vectors[Math.toIntExact(i - from)] =
                                new NDArray[] {unit.broadcast(inputShape)};
                    }
                    NDArray[][] products = secondDerivatives(standIns, x, outputGradient, vectors);
                    for (NDArray[] product : products) {
                        NDArray row =
                                product[0] == null
                                        ? scope.zeros(new Shape(batch, d), input.getDataType())
                                        : product[0].reshape(batch, d);
                        row.attach(scope);
                        rows.add(row);
                    }
                }
            }
            // m (N, d, d): row i is M_n e_i, a column of the symmetric M_n
            NDArray m = NDArrays.stack(rows, 1);
            NDArray unit = identity.expandDims(0);
            NDArray plus = unit.add(m).mul(0.5);
            NDArray minus = unit.sub(m).mul(0.5);
            NDArray values =
                    NDArrays.concat(new NDList(plus, minus), 1)
                            .reshape(new Shape(batch, 2 * d).addAll(features));
            NDArray signs =
                    NDArrays.concat(
                            new NDList(
                                    scope.ones(new Shape(batch, d), input.getDataType()),
                                    scope.ones(new Shape(batch, d), input.getDataType()).neg()),
                            1);
            values.attach(target);
            signs.attach(target);
            return new NDList(values, signs);
        }
    }

    /** {@inheritDoc} */
    @Override
    public NDList parameterCurvature(NDArray outputGradient) {
        long batch = input.getShape().get(0);
        List<long[]> samples = new ArrayList<>();
        for (long n = 0; n < batch; n++) {
            samples.add(new long[] {n, n + 1});
        }
        return ownParameterCurvature(outputGradient, samples);
    }

    /** {@inheritDoc} */
    @Override
    public NDList summedParameterCurvature(NDArray outputGradient) {
        long batch = input.getShape().get(0);
        NDList whole = ownParameterCurvature(outputGradient, List.of(new long[] {0, batch}));
        NDList result = new NDList();
        for (NDArray diagonal : whole) {
            NDArray squeezed = diagonal.squeeze(0);
            squeezed.attach(diagonal.getManager());
            result.add(squeezed);
        }
        return result;
    }

    /**
     * Takes the double-backward diagonal of {@code sum g . y} with respect to the parameters over
     * each range of samples: one range per sample gives per-sample diagonals, one range of the
     * whole batch their sum.
     *
     * @return one array per parameter, {@code (ranges, parameterShape...)}
     */
    private NDList ownParameterCurvature(NDArray outputGradient, List<long[]> ranges) {
        if (parameters.isEmpty()) {
            return new NDList();
        }
        NDManager target = outputGradient.getManager();
        try (NDManager scope = target.newSubManager()) {
            StandIns standIns = new StandIns(scope, true);
            NDArray[] variables = standIns.variables();
            List<NDList> diagonals = new ArrayList<>();
            for (int p = 0; p < variables.length; p++) {
                diagonals.add(new NDList());
            }
            for (long[] range : ranges) {
                try (NDManager pass = scope.newSubManager()) {
                    NDArray part = samples(input, range, pass);
                    NDArray gradient = samples(outputGradient, range, pass);
                    SecondOrderEngine engine = SecondOrderEngines.of(part);
                    NDArray[] diagonal;
                    RecordingScope recording = engine.recording(true);
                    try {
                        NDArray output = run(standIns, part);
                        NDArray product = output.mul(gradient.reshape(output.getShape())).sum();
                        diagonal = engine.hessianDiagonal(product, variables, false);
                    } finally {
                        recording.close();
                    }
                    for (int p = 0; p < variables.length; p++) {
                        NDArray value =
                                diagonal[p] == null ? variables[p].zerosLike() : diagonal[p];
                        value.attach(scope);
                        diagonals.get(p).add(value);
                    }
                }
            }
            NDList result = new NDList();
            for (NDList diagonal : diagonals) {
                NDArray stacked = NDArrays.stack(diagonal);
                stacked.attach(target);
                result.add(stacked);
            }
            return result;
        }
    }

    /** Runs the block recorded and takes Hessian-vector products of {@code sum(output * g)}. */
    private NDArray[][] secondDerivatives(
            StandIns standIns, NDArray x, NDArray outputGradient, NDArray[][] vectors) {
        SecondOrderEngine engine = SecondOrderEngines.of(x);
        RecordingScope recording = engine.recording(true);
        try {
            NDArray output = run(standIns, x);
            NDArray product = output.mul(outputGradient.reshape(output.getShape())).sum();
            return engine.hessianVectorProducts(product, new NDArray[] {x}, vectors, false);
        } finally {
            recording.close();
        }
    }

    /** Runs the block recorded and differentiates {@code sum(output * rows)}. */
    private NDArray[] vectorJacobian(
            StandIns standIns, NDArray x, NDArray rows, NDArray... variables) {
        SecondOrderEngine engine = SecondOrderEngines.of(x);
        RecordingScope recording = engine.recording(true);
        try {
            NDArray output = run(standIns, x);
            NDArray product = output.mul(rows.reshape(output.getShape())).sum();
            return engine.gradient(product, variables, false);
        } finally {
            recording.close();
        }
    }

    private NDArray run(ParameterStore store, NDArray x) {
        NDList outputs = block.forward(store, new NDList(x), training);
        if (outputs.size() != 1) {
            throw new UnsupportedOperationException(
                    description + " returns " + outputs.size() + " arrays, not one");
        }
        return outputs.head();
    }

    private static NDArray sample(NDArray x, long n, NDManager scope) {
        return samples(x, new long[] {n, n + 1}, scope);
    }

    private static NDArray samples(NDArray x, long[] range, NDManager scope) {
        NDArray part = x.get(new NDIndex("{}:{}", range[0], range[1]));
        part.attach(scope);
        return part;
    }

    private void checkIndependent(NDArray batched, NDArray alone) {
        if (!batched.getShape().equals(alone.getShape())) {
            throw new UnsupportedOperationException(
                    "The generic rule does not support the block "
                            + description
                            + ": its output for one sample has shape "
                            + alone.getShape().slice(1)
                            + " alone but "
                            + batched.getShape().slice(1)
                            + " in the batch, so it does not keep samples independent along the"
                            + " first axis");
        }
        double scale = alone.abs().max().toType(DataType.FLOAT64, false).getDouble();
        double difference =
                alone.sub(batched).abs().max().toType(DataType.FLOAT64, false).getDouble();
        double tolerance = batched.getDataType() == DataType.FLOAT64 ? 1e-9 : 1e-4;
        if (!(difference <= tolerance * Math.max(scale, Double.MIN_NORMAL))) {
            throw new UnsupportedOperationException(
                    "The generic rule does not support the block "
                            + description
                            + ": its output for a sample run alone differs from that in the batch"
                            + " (by "
                            + difference
                            + ", largest output "
                            + scale
                            + "), so it couples samples (BatchNorm in training mode, a recurrent"
                            + " block whose batch is not the first axis) or is random (Dropout in"
                            + " training mode). The generic rule needs each sample's output to"
                            + " depend on that sample's input only; register a rule with"
                            + " BlockRules.register, or use inference mode.");
        }
    }

    private void warnOnce(long batch, long inputFeatures) {
        if (warned) {
            return;
        }
        warned = true;
        long elements = 0;
        for (Parameter parameter : parameters) {
            elements += parameter.getArray().size();
        }
        if (curvatureOnly) {
            LOGGER.warn(
                    "{}: {}, so for the Hessian its own curvature takes double backward: {}"
                        + " Hessian-vector products through the block for the batch (one per input"
                        + " feature) and {} for its parameters (one per element; per-sample"
                        + " diagonals take one per element and sample). The generalized"
                        + " Gauss-Newton diagonal needs none of them.",
                    description,
                    reason,
                    inputFeatures,
                    elements);
            return;
        }
        LOGGER.warn(
                "{}: {}, so its products come from first-order autograd (the generic rule): per"
                        + " column of the loss factor (about one per model output) one"
                        + " vector-Jacobian product through the block for the whole batch and, for"
                        + " its {} parameter elements, one forward and backward pass of each of the"
                        + " {} samples alone.{} BlockRules.register adds an explicit rule.",
                description,
                reason,
                elements,
                batch,
                ownCurvature
                        ? " For the Hessian its own curvature takes double backward as well: "
                                + inputFeatures
                                + " Hessian-vector products through the block for the batch (one"
                                + " per input feature) and "
                                + elements
                                + " for its parameters (one per element; per-sample diagonals take"
                                + " one per element and sample)."
                        : "");
    }

    /**
     * A parameter store that hands the block copies of its parameters, made in a scope of their
     * own, so that differentiating never touches the caller's arrays.
     */
    private final class StandIns extends ParameterStore {

        private final Map<Parameter, NDArray> copies = new IdentityHashMap<>();

        StandIns(NDManager scope, boolean differentiable) {
            super(scope, false);
            for (Pair<String, Parameter> entry : block.getParameters()) {
                Parameter parameter = entry.getValue();
                NDArray copy = parameter.getArray().duplicate();
                copy.attach(scope);
                if (differentiable && parameters.contains(parameter)) {
                    copy.setRequiresGradient(true);
                }
                copies.put(parameter, copy);
            }
        }

        NDArray[] variables() {
            NDArray[] variables = new NDArray[parameters.size()];
            for (int i = 0; i < variables.length; i++) {
                variables[i] = copies.get(parameters.get(i));
            }
            return variables;
        }

        /** {@inheritDoc} */
        @Override
        public NDArray getValue(Parameter parameter, Device device, boolean trainingMode) {
            NDArray copy = copies.get(parameter);
            return copy != null ? copy : super.getValue(parameter, device, trainingMode);
        }
    }
}
