package org.secorder.structured.internal.propagation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DenseColumns;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The first layers of a network (convolutions, activations, pooling and reshaping up to the first
 * other block), whose Hessian diagonals are computed in forward mode where that is cheaper than
 * propagating the columns through them.
 *
 * <p>The columns that reach the top of these layers, {@code H = sum_c sign_c v_c v_c^T}, are
 * collected there instead of being propagated further. Then every parameter entry's tangent, the
 * derivative of the layers' values with respect to that entry, is pushed up by the layers'
 * Jacobians: its diagonal entry is {@code sum_c sign_c (t . v_c)^2} at the top plus {@code sum_i
 * w_i t_i^2} at every activation it passes, {@code w = g * phi''(x)} the activation's curvature.
 * That is exact: it is the same quadratic form as the backward route's, {@code J^T H J} with the
 * activations' curvature added where it arises, evaluated from the other end.
 *
 * <p>The backward route propagates every column through every layer, and the curvature of an
 * activation gives one column per element, so its cost grows with the columns times the layers'
 * cost; the forward route pushes one tangent per parameter entry, each non-zero in one filter's
 * channel until the next convolution, so its cost grows with the parameters of the first layers.
 * Which is cheaper is estimated from both counts once the columns are known, for every split of the
 * layers: the parameters below the split take the forward route, those above it the backward one.
 * The backward route also runs for all of them where the collected columns would not fit half the
 * memory budget (or the working set), where a layer cannot push tangents for its actual input, and
 * for the generalized Gauss-Newton matrix (no activation curvature arises); only splits whose
 * tangents for one sample fit the same half are considered.
 */
public final class TangentLayer extends Layer {

    private static final Logger LOGGER = LoggerFactory.getLogger(TangentLayer.class);
    private static final AtomicLong FORWARD_ROUTES = new AtomicLong();

    private final List<Layer> children;
    private final SequenceLayer columnMode;
    private final List<DenseColumns> collected = new ArrayList<>();
    private Propagation propagation;
    private long collectedElements;
    private boolean flushed;
    private Continuation next;
    private Continuation spawnBelow;

    /**
     * Creates the layer of a network's first layers.
     *
     * @param description the layers' description
     * @param children the layers, first applied first; each has a {@link TangentRule}
     */
    public TangentLayer(String description, List<Layer> children) {
        super(description);
        this.children = List.copyOf(children);
        this.columnMode = new SequenceLayer(description, children);
    }

    /**
     * Returns how many computations in this process took the forward route for some parameters, for
     * tests that check which route a network takes.
     *
     * @return the count
     */
    public static long forwardRouteCount() {
        return FORWARD_ROUTES.get();
    }

    /**
     * Returns the leading layers of a sequence that have forward-mode rules, if among them are
     * parameters and activation curvature, where the forward route may pay.
     *
     * @param children a sequence's children, first applied first
     * @return the number of leading children to wrap, or 0
     */
    public static int leadingLayers(List<Layer> children) {
        int count = 0;
        boolean parameters = false;
        boolean curvature = false;
        while (count < children.size() && children.get(count).tangentRule() != null) {
            Layer child = children.get(count);
            parameters |= child.hasParameters();
            // curvature above the first parameters is the backward route's cheap part
            curvature |= parameters && child.hasCurvature();
            count++;
        }
        return parameters && curvature ? count : 0;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray forward(Propagation computation, NDArray input) {
        propagation = computation;
        collected.clear();
        collectedElements = 0;
        flushed = false;
        next = null;
        spawnBelow = null;
        computation.atEnd(this::finish);
        return columnMode.forward(computation, input);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray backward(NDArray gradient, boolean inputNeeded) {
        return columnMode.backward(gradient, inputNeeded);
    }

    /** {@inheritDoc} */
    @Override
    public void propagate(ColumnSet columns, Continuation below) {
        next = below;
        if (!flushed) {
            // the dense size first: a local or diagonal set may be far larger when dense
            long elements = columns.denseElements(columns.getColumnCount());
            if (collectedElements + elements <= propagation.pieceElements()) {
                collected.add(propagation.retain(columns.dense()));
                collectedElements += elements;
                return;
            }
            flush();
        }
        columnMode.propagate(columns, below);
    }

    /** {@inheritDoc} */
    @Override
    public void spawn(Continuation below) {
        // the curvature of the activations inside waits for the columns from above
        spawnBelow = below;
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasParameters() {
        return columnMode.hasParameters();
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasCurvature() {
        return columnMode.hasCurvature();
    }

    /** {@inheritDoc} */
    @Override
    public long columnElements() {
        return columnMode.columnElements();
    }

    /** Computes the diagonals once every column set has arrived. */
    private void finish() {
        int split = flushed || spawnBelow == null || collected.isEmpty() ? 0 : split();
        if (split == 0) {
            flush();
            if (spawnBelow != null) {
                columnMode.spawn(spawnBelow);
            }
            return;
        }
        FORWARD_ROUTES.incrementAndGet();
        pushTangents(split);
        for (Layer child : children.subList(0, split)) {
            // the blocks' own curvature with respect to their parameters, if any
            child.spawn(Continuation.NONE);
        }
        if (split < children.size()) {
            // the layers above the split take the columns the backward way, down to the split
            SequenceLayer upper =
                    new SequenceLayer(getDescription(), children.subList(split, children.size()));
            for (DenseColumns columns : collected) {
                propagation.run(() -> columns, into(upper, Continuation.NONE));
            }
            upper.spawn(Continuation.NONE);
        }
        release();
    }

    /** Propagates the collected columns the backward way, and every later set too. */
    private void flush() {
        flushed = true;
        for (DenseColumns columns : collected) {
            propagation.run(() -> columns, into(columnMode, next));
        }
        release();
    }

    /** A continuation that propagates columns through some layers and on. */
    private static Continuation into(Layer layers, Continuation below) {
        return new Continuation() {
            @Override
            public boolean isNeeded() {
                return true;
            }

            @Override
            public void accept(ColumnSet set) {
                layers.propagate(set, below);
            }
        };
    }

    private void release() {
        for (DenseColumns columns : collected) {
            columns.getValues().close();
            if (columns.getSigns() != null) {
                columns.getSigns().close();
            }
        }
        collected.clear();
        collectedElements = 0;
    }

    /**
     * Returns where the routes meet, by the estimated cost of both: the parameters of the layers
     * below the split take the forward route, those above it the backward one. 0 where every layer
     * takes the backward route, also where a layer cannot push tangents for its input.
     */
    private int split() {
        int size = children.size();
        TangentRule[] rules = new TangentRule[size];
        for (int i = 0; i < size; i++) {
            rules[i] = children.get(i).tangentRule();
            if (rules[i] == null || !rules[i].pushes()) {
                return 0;
            }
        }
        long count = 0;
        for (DenseColumns columns : collected) {
            count += columns.getColumnCount();
        }
        long features = collected.get(0).getFeatureCount();
        int best = 0;
        double bestCost = Double.MAX_VALUE;
        double backward = 0;
        double forward = 0;
        double elements = 0;
        long limit = propagation.pieceElements();
        for (int split = 0; split <= size; split++) {
            if (split > 0) {
                double[] estimate = forwardEstimate(rules, split - 1, count, features);
                forward += estimate[0];
                elements += estimate[1];
                if (elements > limit) {
                    // one sample's tangents would not fit: nor would those of a higher split
                    break;
                }
            }
            if (split < size && split > 0 && rules[split - 1].parameterTangentShape() == null) {
                // the same split as one further down: no parameters in between
                continue;
            }
            double cost = forward + backwardCost(rules, split, count);
            if (split == 0) {
                backward = cost;
            }
            if (cost < bestCost) {
                bestCost = cost;
                best = split;
            }
        }
        LOGGER.debug(
                "{}: the parameters of the first {} of {} blocks take the forward route, for {}"
                        + " columns (estimated {} against {} multiplications per sample)",
                getDescription(),
                best,
                size,
                count,
                (long) bestCost,
                (long) backward);
        return best;
    }

    /**
     * The forward route's multiplications per sample for the parameters of one layer, and the most
     * tangent elements one sample holds at once for them (a block's tangents at its input and
     * output, or their products with the columns).
     */
    private double[] forwardEstimate(TangentRule[] rules, int layer, long count, long features) {
        long[] shape = rules[layer].parameterTangentShape();
        if (shape == null) {
            return new double[2];
        }
        long groups = shape[0];
        long tangents = shape[1];
        // a tangent holds one group's block, d / G values: T d per sample for every layout
        double held = (double) tangents * rules[layer].outputFeatures();
        double peak = held;
        double cost = 0;
        for (int i = layer + 1; i < rules.length; i++) {
            cost += rules[i].pushCost(groups, tangents);
            if (!rules[i].keepsGroups()) {
                tangents *= groups;
                groups = 1;
            }
            double pushed = (double) tangents * rules[i].outputFeatures();
            peak = Math.max(peak, held + pushed);
            held = pushed;
        }
        peak = Math.max(peak, held + 2.0 * groups * tangents * count);
        // the quadratic forms with the columns, and their squares summed
        cost +=
                Tangents.columnSquaresCost(groups, tangents, features, count)
                        + TangentRule.ELEMENT_COST * groups * tangents * count;
        return new double[] {cost, peak};
    }

    /**
     * The backward route's multiplications per sample for the parameters of the layers from {@code
     * split} up: the columns propagated down to the lowest parameters among them, and the columns
     * of their activations, each at least one column down to those parameters.
     */
    private double backwardCost(TangentRule[] rules, int split, long count) {
        int lowest = -1;
        for (int i = split; i < rules.length && lowest < 0; i++) {
            if (rules[i].parameterTangentShape() != null) {
                lowest = i;
            }
        }
        if (lowest < 0) {
            return 0;
        }
        double column = 0;
        double cost = 0;
        for (int i = lowest; i < rules.length; i++) {
            if (children.get(i).hasCurvature()) {
                cost += column;
            }
            column += rules[i].columnCost(i > lowest);
        }
        return cost + count * column;
    }

    /**
     * Pushes the tangents of the parameters below the split up in blocks of samples and adds their
     * diagonals.
     */
    private void pushTangents(int split) {
        List<NDArray> ownArrays = new ArrayList<>();
        for (DenseColumns columns : collected) {
            ownArrays.add(columns.getValues());
            if (columns.getSigns() != null) {
                ownArrays.add(columns.getSigns());
            }
        }
        try (NDManager pass = propagation.openScope(ownArrays)) {
            NDArray columnValues = concat(collected, false);
            NDArray columnSigns = concat(collected, true);
            long batch = columnValues.getShape().get(0);
            List<NDArray> inputs = new ArrayList<>(List.of(columnValues));
            if (columnSigns != null) {
                inputs.add(columnSigns);
            }
            List<NDArray> curvatures = new ArrayList<>();
            for (Layer child : children) {
                NDArray curvature = null;
                if (child.hasCurvature()) {
                    curvature = child.tangentRule().curvatureDiagonal();
                    if (curvature == null) {
                        throw new IllegalStateException(
                                child.getDescription() + " has curvature but no diagonal of it");
                    }
                    inputs.add(curvature);
                }
                curvatures.add(curvature);
            }
            Map<TangentRule, NDList> parts = new IdentityHashMap<>();
            long samples = 1;
            for (long from = 0, to; from < batch; from = to) {
                to = Math.min(batch, from + samples);
                long perSample;
                NDManager chunk = propagation.openScope(inputs);
                try {
                    perSample =
                            pushSamples(
                                    from,
                                    to,
                                    split,
                                    columnValues,
                                    columnSigns,
                                    curvatures,
                                    parts,
                                    pass);
                } finally {
                    chunk.close();
                }
                if (from == 0) {
                    // the first sample alone shows what one sample holds; the collected columns
                    // are held throughout
                    samples = Math.max(1, propagation.pieceElements() / perSample);
                    propagation.observe(collectedElements + Math.min(batch, samples) * perSample);
                }
            }
            Accumulators accumulators = propagation.getAccumulators();
            for (Map.Entry<TangentRule, NDList> entry : parts.entrySet()) {
                NDList pieces = entry.getValue();
                NDArray squares = pieces.size() == 1 ? pieces.head() : NDArrays.concat(pieces, 0);
                long[] shape = entry.getKey().parameterTangentShape();
                entry.getKey()
                        .addTangentSquares(
                                squares.reshape(batch, shape[0], shape[1]), accumulators);
            }
        }
    }

    /** The collected columns' values {@code (N, K, d)}, or signs {@code (N, K)} if any has some. */
    private static NDArray concat(List<DenseColumns> sets, boolean signs) {
        NDList parts = new NDList();
        boolean signed = false;
        for (DenseColumns columns : sets) {
            NDArray values = columns.getValues();
            if (!signs) {
                parts.add(values);
            } else if (columns.getSigns() != null) {
                signed = true;
                parts.add(columns.getSigns());
            } else {
                parts.add(
                        values.getManager()
                                .ones(values.getShape().slice(0, 2), values.getDataType()));
            }
        }
        if (signs && !signed) {
            return null;
        }
        return parts.size() == 1 ? parts.head() : NDArrays.concat(parts, 1);
    }

    /**
     * Pushes the tangents of the samples {@code from .. to - 1} and adds their quadratic forms to
     * the parts of their rules, attached to a manager that outlives the samples' scope.
     *
     * @return the most tangent elements held at once, per sample
     */
    private long pushSamples(
            long from,
            long to,
            int split,
            NDArray columnValues,
            NDArray columnSigns,
            List<NDArray> curvatures,
            Map<TangentRule, NDList> parts,
            NDManager keep) {
        NDIndex samples = new NDIndex("{}:{}", from, to);
        List<TangentRule> owners = new ArrayList<>();
        List<Tangents> live = new ArrayList<>();
        List<NDArray> sums = new ArrayList<>();
        long peak = 0;
        for (int i = 0; i < children.size(); i++) {
            TangentRule rule = children.get(i).tangentRule();
            NDArray curvature = curvatures.get(i);
            long held = 0;
            for (int k = 0; k < live.size(); k++) {
                Tangents tangents = live.get(k);
                if (curvature != null) {
                    sums.get(k)
                            .addi(
                                    tangents.weightedSquares(curvature.get(samples))
                                            .reshape(to - from, -1));
                }
                Tangents pushed = rule.push(tangents, from, to);
                held += tangents.getValues().size() + pushed.getValues().size();
                if (pushed.getValues() != tangents.getValues()) {
                    tangents.getValues().close();
                }
                live.set(k, pushed);
            }
            Tangents own = i < split ? rule.parameterTangents(from, to) : null;
            if (own != null) {
                NDArray values = own.getValues();
                owners.add(rule);
                live.add(own);
                sums.add(
                        values.getManager()
                                .zeros(
                                        new Shape(to - from, own.getGroups() * own.getCount()),
                                        values.getDataType()));
                held += values.size();
            }
            peak = Math.max(peak, held);
        }
        NDArray values = columnValues.get(samples);
        NDArray signs = columnSigns == null ? null : columnSigns.get(samples);
        long count = values.getShape().get(1);
        for (int k = 0; k < live.size(); k++) {
            Tangents tangents = live.get(k);
            NDArray sum = sums.get(k);
            sum.addi(tangents.columnSquares(values, signs).reshape(to - from, -1));
            long products = tangents.getValues().size() / tangents.getValues().getShape().get(3);
            peak = Math.max(peak, tangents.getValues().size() + 2 * products * count);
            sum.attach(keep);
            parts.computeIfAbsent(owners.get(k), o -> new NDList()).add(sum);
        }
        return Math.max(1, peak / (to - from));
    }
}
