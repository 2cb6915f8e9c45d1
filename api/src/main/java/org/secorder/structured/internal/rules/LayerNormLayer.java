package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.norm.LayerNorm;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.secorder.structured.internal.PrivateFields;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DenseColumns;
import org.secorder.structured.internal.columns.DiagonalColumns;
import org.secorder.structured.internal.columns.SampleMap;
import org.secorder.structured.internal.propagation.Accumulators;
import org.secorder.structured.internal.propagation.LeafLayer;
import org.secorder.structured.internal.propagation.Propagation;

/**
 * {@link LayerNorm}: {@code y = gamma * xhat + beta}, {@code xhat = (x - mean) / sqrt(var + eps)},
 * the mean and (biased) variance taken over the trailing axes of each sample that {@code gamma}'s
 * shape names; the leading feature axes are {@code G} groups normalized apart, each of {@code D}
 * values.
 *
 * <p>Per group, with {@code s = 1 / sqrt(var + eps)} and {@code P = I - 1 1^T / D}, the Jacobian is
 * {@code dy/dx = diag(gamma) s (P - xhat xhat^T / D)}, symmetric after the {@code gamma}: a
 * per-sample map, so columns pass through it dense. {@code gamma} sees {@code xhat}, {@code beta} a
 * constant, both linearly: they have no curvature of their own.
 *
 * <p>The input curvature, derived by hand, with {@code h = gamma * g} ({@code g} the loss gradient
 * at the output), {@code a = P h}, {@code q = h . xhat} and {@code k = s^2 / D}, is
 *
 * <pre>
 * sum_j g_j d^2 y_j / dx^2 = k (-(xhat a^T + a xhat^T) + 3 q / D xhat xhat^T + q / D 1 1^T - q I)
 * </pre>
 *
 * a scaled identity plus a matrix of rank three. It is propagated in two parts: the signed diagonal
 * {@code -k q I} as one diagonal column per feature (factored, cheap through the blocks below), and
 * three signed dense columns per group: with {@code b = 3 q / (2 D) xhat - a}, {@code sqrt(k / 2)
 * (xhat + b)} (sign +1), {@code sqrt(k / 2) (xhat - b)} (sign -1) and {@code sqrt(k |q| / D) 1}
 * (the sign of {@code q}).
 */
public final class LayerNormLayer extends LeafLayer implements SampleMap, Accumulators.Deferred {

    private static final int GROUP_COLUMNS = 3;

    private final Parameter gamma;
    private final Parameter beta;
    private final double epsilon;
    private Shape featureShape;
    private long groups;
    private long width;
    private NDArray gammaRow;
    private NDArray normalized;
    private NDArray inverseDeviation;
    private NDArray outputGradient;

    /**
     * Creates the layer of a layer normalization block.
     *
     * @param description the block's path and kind
     * @param block the block
     */
    public LayerNormLayer(String description, LayerNorm block) {
        super(description, block);
        gamma = block.getParameters().get("gamma");
        beta = block.getParameters().get("beta");
        epsilon = PrivateFields.readFloat(block, LayerNorm.class, "epsilon");
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forwardLeaf(NDArray input) {
        Propagation propagation = getPropagation();
        Shape shape = input.getShape();
        Shape normalizedShape = gamma.getArray().getShape();
        int trailing = normalizedShape.dimension();
        if (shape.dimension() < trailing + 1
                || !shape.slice(shape.dimension() - trailing).equals(normalizedShape)) {
            throw new UnsupportedOperationException(
                    getDescription()
                            + " normalizes over axes of shape "
                            + normalizedShape
                            + " that are not the trailing axes of its input "
                            + shape
                            + "; the structured rule supports normalization over trailing axes"
                            + " (what both engines compute)");
        }
        long batch = shape.get(0);
        featureShape = shape.slice(1);
        width = normalizedShape.size();
        groups = featureShape.size() / width;
        NDArray x = input.reshape(batch, groups, width);
        NDArray centered = x.sub(x.mean(new int[] {2}, true));
        NDArray inverse = centered.square().mean(new int[] {2}, true).add(epsilon).sqrt().pow(-1);
        NDArray xhat = centered.mul(inverse);
        gammaRow = propagation.keep(gamma.getArray().reshape(1, 1, width));
        NDArray betaRow = beta.getArray().reshape(1, 1, width);
        NDArray output = runBlock(input);
        NDArray expected = xhat.mul(gammaRow).add(betaRow).reshape(shape);
        Outputs.check(this, output, expected, "gamma (x - mean) / sqrt(var + eps) + beta");
        normalized = propagation.keep(xhat);
        inverseDeviation = propagation.keep(inverse);
        return output;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        outputGradient = getPropagation().keep(gradient);
        return inputNeeded ? apply(gradient, 1) : null;
    }

    /** {@inheritDoc} */
    @Override
    public ColumnSet transpose(ColumnSet columns) {
        return columns.mapSamples(this, featureShape);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray apply(NDArray rows, long k) {
        long batch = normalized.getShape().get(0);
        NDArray u = rows.reshape(batch, k, groups, width).mul(gammaRow.expandDims(0));
        NDArray xhat = normalized.expandDims(1);
        NDArray projected =
                u.sub(u.mean(new int[] {3}, true))
                        .sub(xhat.mul(u.mul(xhat).mean(new int[] {3}, true)));
        return projected
                .mul(inverseDeviation.expandDims(1))
                .reshape(new Shape(batch * k).addAll(featureShape));
    }

    /** {@inheritDoc} */
    @Override
    public void accumulate(ColumnSet columns) {
        if (groups == 1) {
            getPropagation().getAccumulators().defer(this, columns.diagonal());
            return;
        }
        DenseColumns dense = columns.dense();
        long batch = dense.getBatchSize();
        long count = dense.getColumnCount();
        NDArray values = dense.getValues().reshape(batch, count, groups, width);
        NDArray gammaProducts = values.mul(normalized.expandDims(1)).sum(new int[] {2});
        NDArray betaProducts = values.sum(new int[] {2});
        Accumulators accumulators = getPropagation().getAccumulators();
        add(accumulators, gamma, dense.signedColumnSum(gammaProducts.square()));
        add(accumulators, beta, dense.signedColumnSum(betaProducts.square()));
    }

    /** {@inheritDoc} */
    @Override
    public void finish(NDArray outputDiagonal, Accumulators accumulators) {
        NDArray diagonal = outputDiagonal.reshape(outputDiagonal.getShape().get(0), width);
        add(accumulators, gamma, diagonal.mul(normalized.reshape(-1, width).square()));
        add(accumulators, beta, diagonal);
    }

    /** Adds a per-sample diagonal {@code (N, D)} to a parameter that takes a gradient. */
    private static void add(Accumulators accumulators, Parameter parameter, NDArray perSample) {
        if (!parameter.requiresGradient()) {
            return;
        }
        Shape shape = parameter.getArray().getShape();
        if (accumulators.isPerSample()) {
            accumulators.add(
                    parameter,
                    perSample.reshape(new Shape(perSample.getShape().get(0)).addAll(shape)));
        } else {
            accumulators.add(parameter, perSample.sum(new int[] {0}).reshape(shape));
        }
    }

    /**
     * {@inheritDoc}
     *
     * <p>The diagonal part, then the dense part in runs of groups, each run's columns within {@link
     * Propagation#WORKING_SET_BYTES}: the columns of {@code G} groups are {@code 3 G} vectors of
     * all {@code G D} features of a sample, so all at once would hold {@code 3 N G^2 D} values.
     */
    @Override
    public List<Supplier<ColumnSet>> residuals() {
        List<Supplier<ColumnSet>> parts = new ArrayList<>();
        parts.add(this::diagonalPart);
        long batch = normalized.getShape().get(0);
        long run =
                Math.min(
                        groups,
                        getPropagation()
                                .columnsWithinLimit(
                                        0, batch * GROUP_COLUMNS * featureShape.size()));
        for (long from = 0; from < groups; from += run) {
            long start = from;
            long end = Math.min(groups, from + run);
            parts.add(() -> rankPart(start, end));
        }
        return parts;
    }

    /** The part {@code -k q I}: one signed diagonal column per feature. */
    private ColumnSet diagonalPart() {
        long batch = normalized.getShape().get(0);
        NDArray weights =
                product()
                        .mul(inverseDeviation.square())
                        .div(-width)
                        .broadcast(new Shape(batch, groups, width))
                        .reshape(batch, featureShape.size());
        return DiagonalColumns.of(weights.abs().sqrt(), weights.sign(), featureShape);
    }

    /**
     * The part of rank three per group, for the groups {@code from .. to - 1}, as signed dense
     * columns.
     */
    private ColumnSet rankPart(long from, long to) {
        long batch = normalized.getShape().get(0);
        long count = to - from;
        NDIndex part = new NDIndex(":, {}:{}", from, to);
        NDArray xhat = normalized.get(part);
        NDArray inverse = inverseDeviation.get(part);
        NDArray h = weightedGradient().get(part);
        NDArray a = h.sub(h.mean(new int[] {2}, true));
        NDArray q = h.mul(xhat).sum(new int[] {2}, true);
        NDArray scale = inverse.div(Math.sqrt(2.0 * width));
        NDArray b = xhat.mul(q.mul(1.5 / width)).sub(a);
        NDArray plus = xhat.add(b).mul(scale);
        NDArray minus = xhat.sub(b).mul(scale);
        NDArray constant =
                q.abs().sqrt().mul(inverse.div(width)).broadcast(new Shape(batch, count, width));
        // (N, g, 3, D) per group of the run, placed on its own group: (N, g, 3, G, D)
        NDArray perGroup = NDArrays.stack(new NDList(plus, minus, constant), 2);
        NDArray placement =
                perGroup.getManager()
                        .arange(from, to, 1, DataType.INT64)
                        .oneHot(Math.toIntExact(groups), perGroup.getDataType())
                        .reshape(1, count, 1, groups, 1);
        NDArray values =
                perGroup.expandDims(3)
                        .mul(placement)
                        .reshape(batch, GROUP_COLUMNS * count, featureShape.size());
        NDArray ones = q.onesLike();
        NDArray signs =
                NDArrays.stack(new NDList(ones, ones.neg(), q.sign()), 2)
                        .reshape(batch, GROUP_COLUMNS * count);
        return new DenseColumns(values, signs, featureShape);
    }

    /** Returns {@code h = gamma * g} per group, {@code (N, G, D)}. */
    private NDArray weightedGradient() {
        long batch = normalized.getShape().get(0);
        return outputGradient.reshape(batch, groups, width).mul(gammaRow);
    }

    /** Returns {@code q = h . xhat} per group, {@code (N, G, 1)}. */
    private NDArray product() {
        return weightedGradient().mul(normalized).sum(new int[] {2}, true);
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasParameters() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasCurvature() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public long workElements(ColumnSet columns, long count, boolean transposing) {
        long work = columns.elementCount(count);
        if (groups == 1) {
            work += columns.isPerSample() ? 0 : columns.denseElements(count);
        } else {
            work += 3 * columns.denseElements(count);
        }
        if (transposing) {
            work += 4 * columns.denseElements(count);
        }
        return work;
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        // the dense part holds 3 columns per group of its run of the sample's features
        return featureShape == null ? 0 : 2 * featureShape.size() * (4 + GROUP_COLUMNS);
    }
}
