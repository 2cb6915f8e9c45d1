package org.secorder.structured.internal.recurrent;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.recurrent.GRU;
import ai.djl.nn.recurrent.LSTM;
import ai.djl.nn.recurrent.RNN;
import ai.djl.nn.recurrent.RecurrentBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.Pair;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import org.secorder.structured.BlockDerivatives;
import org.secorder.structured.internal.PrivateFields;

/**
 * The derivatives of one of DJL's recurrent blocks (one layer, one direction, batch first, not
 * returning its states), from the cell equations unrolled over time.
 *
 * <ul>
 *   <li>{@link #forward} runs the block and the unrolled cell from zero states of the input's data
 *       type, keeps the cell's values at every step, and refuses the block if the two disagree.
 *   <li>The products are backpropagation through time of {@code N k} rows at once; the parameter
 *       products sum each row's per-step products over time (the weights are shared by the steps).
 *   <li>The block's own curvature: at every step, the Hessian of the cell's outputs weighted by
 *       their adjoints, in a few local coordinates per hidden unit (its gate pre-activations and
 *       previous states), factored into signed columns ({@code L} per unit and step) that are
 *       carried back through time to the input and to the weights; and the bilinear {@code W_hh
 *       h_{t-1}}, whose second derivative couples the recurrent weight with the earlier steps that
 *       depend on it.
 * </ul>
 */
public final class RecurrentDerivatives implements BlockDerivatives {

    /** What the recurrent rules support, for the list of supported blocks. */
    public static final String DESCRIPTION_SUFFIX =
            "with one layer, one direction, batch first, not returning its states, from zero"
                    + " initial states";

    /** About how many array elements the columns carried back through time at once may take. */
    private static final long CHUNK_ELEMENTS = 1L << 25;

    private static final String[] NAMES = {
        "l_0_i2h_WEIGHT", "l_0_h2h_WEIGHT", "l_0_i2h_BIAS", "l_0_h2h_BIAS"
    };

    private final String description;
    private final RecurrentBlock block;
    private final Cell cell;
    private final long hidden;
    private final List<Parameter> parameters = new ArrayList<>();
    private final List<NDArray> kept = new ArrayList<>();
    private NDManager cache;
    private long batch;
    private int steps;
    private long features;
    private DataType type;
    private NDArray x;
    private NDArray inputWeight;
    private NDArray stateWeight;
    private NDArray previousHidden;
    private final List<NDList> stepCaches = new ArrayList<>();
    private final List<NDList> stepPrevious = new ArrayList<>();
    private final List<NDList> rowSlopes = new ArrayList<>();

    /**
     * Creates the derivatives of a recurrent block for one computation.
     *
     * @param description the block's path and kind, for messages
     * @param block the block
     * @throws UnsupportedOperationException if the block's settings are not supported
     */
    public RecurrentDerivatives(String description, RecurrentBlock block) {
        this.description = description;
        this.block = block;
        String refusal = refusal(block);
        if (refusal != null) {
            throw new UnsupportedOperationException(refusal);
        }
        this.cell = cellOf(block);
        this.hidden =
                ((Number) PrivateFields.read(block, RecurrentBlock.class, "stateSize")).longValue();
        for (String name : NAMES) {
            for (Pair<String, Parameter> entry : block.getDirectParameters()) {
                if (entry.getKey().equals(name)) {
                    parameters.add(entry.getValue());
                }
            }
        }
    }

    /**
     * Returns why a recurrent block's settings are not supported, or {@code null} if they are.
     *
     * @param block the block
     * @return the reason, or {@code null}
     */
    public static String refusal(RecurrentBlock block) {
        if (!(block instanceof LSTM || block instanceof GRU || block instanceof RNN)) {
            return "it is a recurrent block of a kind the rules do not know";
        }
        List<String> reasons = new ArrayList<>();
        int layers = PrivateFields.readInt(block, RecurrentBlock.class, "numLayers");
        if (layers != 1) {
            reasons.add(layers + " layers (only one is supported; stack single-layer blocks)");
        }
        if (PrivateFields.readBoolean(block, RecurrentBlock.class, "bidirectional")) {
            reasons.add("bidirectional");
        }
        if (!PrivateFields.readBoolean(block, RecurrentBlock.class, "batchFirst")) {
            reasons.add("not batch first");
        }
        if (PrivateFields.readBoolean(block, RecurrentBlock.class, "returnState")) {
            reasons.add("returning its states");
        }
        if (reasons.isEmpty()) {
            return null;
        }
        return "the recurrent rules support one layer, one direction, batch first, not returning"
                + " the states; this block is "
                + String.join(", ", reasons);
    }

    private static Cell cellOf(RecurrentBlock block) {
        if (block instanceof LSTM) {
            return new LstmCell();
        }
        if (block instanceof GRU) {
            return new GruCell();
        }
        Object activation = PrivateFields.read(block, RNN.class, "activation");
        return new RnnCell(activation == RNN.Activation.RELU);
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
                            + "; the recurrent rules need (batch, time, features)");
        }
        batch = shape.get(0);
        steps = Math.toIntExact(shape.get(1));
        features = shape.get(2);
        type = input.getDataType();
        NDManager target = input.getManager();
        if (cache != null) {
            cache.close();
            kept.clear();
        }
        cache = target.newSubManager();
        NDArray output;
        try (NDManager scope = target.newSubManager()) {
            // what the block and the checks make goes to the scope, but for the output
            scope.tempAttachAll(input);
            NDList inputs = new NDList(input);
            for (int s = 0; s < cell.states(); s++) {
                inputs.add(scope.zeros(new Shape(1, batch, hidden), type));
            }
            NDList outputs = block.forward(parameterStore, inputs, training);
            output = outputs.singletonOrThrow();
            NDArray[] values = new NDArray[parameters.size()];
            for (int p = 0; p < values.length; p++) {
                values[p] =
                        keep(
                                parameterStore
                                        .getValue(parameters.get(p), input.getDevice(), training)
                                        .duplicate());
            }
            x = keep(input.duplicate());
            inputWeight = values[0];
            stateWeight = values[1];
            scope.tempAttachAll(kept.toArray(new NDArray[0]));
            NDArray mine = unroll(scope, values);
            double scale =
                    Math.max(1, mine.abs().max().toType(DataType.FLOAT64, false).getDouble());
            double difference =
                    mine.sub(output).abs().max().toType(DataType.FLOAT64, false).getDouble();
            // wrong equations (a gate order, an activation) differ by the order of the values;
            // MXNet runs its ReLU RNN in float32 precision even on float64 arrays (about 1e-7)
            double tolerance = (type == DataType.FLOAT64 ? 1e-6 : 1e-4) * steps;
            if (!(difference <= tolerance * scale)) {
                throw new UnsupportedOperationException(
                        description
                                + ": the cell equations of the structured rule differ from the"
                                + " block's output on this engine by "
                                + difference
                                + ", so the rule cannot reproduce this block");
            }
            output.attach(target);
        }
        return output;
    }

    /** Runs the cell over time, keeping what the products need. */
    private NDArray unroll(NDManager scope, NDArray[] values) {
        NDArray u = x.reshape(batch * steps, features).matMul(inputWeight.transpose());
        if (values.length > 2) {
            u = u.add(values[2]);
        }
        u = u.reshape(batch, steps, -1);
        NDList states = new NDList();
        for (int s = 0; s < cell.states(); s++) {
            states.add(scope.zeros(new Shape(batch, hidden), type));
        }
        NDList outputs = new NDList();
        NDList previous = new NDList();
        stepCaches.clear();
        stepPrevious.clear();
        rowSlopes.clear();
        for (int t = 0; t < steps; t++) {
            NDArray v = states.get(0).matMul(stateWeight.transpose());
            if (values.length > 2) {
                v = v.add(values[3]);
            }
            NDList result = cell.forward(u.get(new NDIndex(":, {}", t)), v, states);
            NDList stepCache = new NDList(result.subNDList(cell.states()));
            stepPrevious.add(keepAll(states));
            stepCaches.add(keepAll(stepCache));
            rowSlopes.add(keepAll(expand(cell.slopes(stepCache, states))));
            previous.add(states.get(0));
            states = new NDList(result.subNDList(0, cell.states()));
            outputs.add(states.get(0));
        }
        previousHidden = keep(NDArrays.stack(previous, 1));
        return NDArrays.stack(outputs, 1);
    }

    private static NDList expand(NDList arrays) {
        NDList expanded = new NDList();
        for (NDArray array : arrays) {
            expanded.add(array.expandDims(1));
        }
        return expanded;
    }

    private NDArray keep(NDArray array) {
        // an array kept twice would be attached to a scope twice, and closed with it
        for (NDArray known : kept) {
            if (known == array) {
                return array;
            }
        }
        array.attach(cache);
        kept.add(array);
        return array;
    }

    private NDList keepAll(NDList arrays) {
        for (NDArray array : arrays) {
            keep(array);
        }
        return arrays;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray transposedJacobian(NDArray rows, long k) {
        NDManager target = rows.getManager();
        try (NDManager scope = target.newSubManager()) {
            attach(scope, rows);
            NDArray[] products =
                    backThroughTime(
                            scope, rows.reshape(batch, k, steps, hidden), k, steps - 1, null, null);
            NDArray result = times(products[0], inputWeight).reshape(batch * k, steps, features);
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
            NDArray[] products =
                    backThroughTime(
                            scope, rows.reshape(batch, k, steps, hidden), k, steps - 1, null, null);
            NDList result = new NDList();
            result.add(weightProducts(products[0], x, k));
            result.add(weightProducts(products[1], previousHidden, k));
            if (parameters.size() > 2) {
                long width = products[0].getShape().get(3);
                result.add(products[0].sum(new int[] {2}).reshape(batch * k, width));
                result.add(products[1].sum(new int[] {2}).reshape(batch * k, width));
            }
            for (NDArray array : result) {
                array.attach(target);
            }
            return result;
        }
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasCurvature() {
        // the bilinear W_hh h_{t-1} curves the parameters even where the cell is piecewise linear
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public boolean hasDiagonalCurvature() {
        return !cell.hasCurvature();
    }

    /** {@inheritDoc} */
    @Override
    public NDArray curvature(NDArray outputGradient) {
        // a piecewise linear cell: W_hh h_{t-1} is linear in the input
        return outputGradient.getManager().zeros(x.getShape(), type);
    }

    /** {@inheritDoc} */
    @Override
    public NDList curvatureColumns(NDArray outputGradient) {
        NDManager target = outputGradient.getManager();
        try (NDManager scope = target.newSubManager()) {
            attach(scope, outputGradient);
            List<NDList> adjoints = lossPass(scope, outputGradient).adjoints;
            NDList values = new NDList();
            NDList signs = new NDList();
            for (int t = 0; t < steps; t++) {
                Sources sources = sources(scope, t, adjoints);
                signs.add(sources.signs);
                for (long from = 0; from < sources.count; from += chunk()) {
                    try (NDManager part = scope.newSubManager()) {
                        NDArray[] rows = carry(part, t, sources, from);
                        NDArray columns = times(rows[0], inputWeight);
                        columns.attach(scope);
                        values.add(columns);
                    }
                }
            }
            NDList result = new NDList(NDArrays.concat(values, 1), NDArrays.concat(signs, 1));
            result.attach(target);
            return result;
        }
    }

    /** {@inheritDoc} */
    @Override
    public NDList parameterCurvature(NDArray outputGradient) {
        NDManager target = outputGradient.getManager();
        try (NDManager scope = target.newSubManager()) {
            attach(scope, outputGradient);
            LossPass loss = lossPass(scope, outputGradient);
            List<NDList> adjoints = loss.adjoints;
            NDArray gramU = null;
            NDArray gramV = null;
            if (!cell.hasCurvature()) {
                long width = cell.gates() * hidden;
                gramU = scope.zeros(new Shape(batch, width, steps, steps), type);
            }
            for (int t = 0; t < steps && cell.hasCurvature(); t++) {
                Sources sources = sources(scope, t, adjoints);
                for (long from = 0; from < sources.count; from += chunk()) {
                    try (NDManager part = scope.newSubManager()) {
                        NDArray[] rows = carry(part, t, sources, from);
                        NDArray signs = rows[2];
                        gramU = sum(gramU, gram(rows[0], signs));
                        gramU.attach(scope);
                        if (rows[1] != rows[0]) {
                            gramV = sum(gramV, gram(rows[1], signs));
                            gramV.attach(scope);
                        }
                    }
                }
            }
            if (gramV == null) {
                gramV = gramU;
            }
            NDList result = new NDList();
            result.add(quadratic(gramU, x));
            result.add(quadratic(gramV, previousHidden).add(recurrentCross(scope, loss.onV)));
            if (parameters.size() > 2) {
                result.add(gramU.sum(new int[] {2, 3}));
                result.add(gramV.sum(new int[] {2, 3}));
            }
            result.attach(target);
            return result;
        }
    }

    /** Runs the loss gradient back through time. */
    private LossPass lossPass(NDManager scope, NDArray outputGradient) {
        List<NDList> record = new ArrayList<>(Collections.nCopies(steps, (NDList) null));
        NDArray[] products =
                backThroughTime(
                        scope,
                        outputGradient.reshape(batch, 1, steps, hidden),
                        1,
                        steps - 1,
                        null,
                        record);
        return new LossPass(products[1], record);
    }

    /** The loss gradient run back through time. */
    private static final class LossPass {

        /** The rows on {@code v}, {@code (N, 1, T, G H)}. */
        final NDArray onV;

        /** The adjoints of the states after each step, {@code (N, 1, H)} each. */
        final List<NDList> adjoints;

        LossPass(NDArray onV, List<NDList> adjoints) {
            this.onV = onV;
            this.adjoints = adjoints;
        }
    }

    /** The signed columns of the cell's own curvature at one step, on that step's coordinates. */
    private static final class Sources {

        /** The number {@code C} of columns per sample. */
        final long count;

        /** The columns on {@code u}, {@code (N, C, G H)}. */
        final NDArray onU;

        /** The columns on {@code v} (the same array where the cell shares them). */
        final NDArray onV;

        /** The columns on the states before the step, {@code (N, C, H)} each. */
        final NDList onStates;

        /** The signs, {@code (N, C)}. */
        final NDArray signs;

        Sources(long count, NDArray onU, NDArray onV, NDList onStates, NDArray signs) {
            this.count = count;
            this.onU = onU;
            this.onV = onV;
            this.onStates = onStates;
            this.signs = signs;
        }
    }

    /**
     * Factors the cell's local curvature at step {@code t} into {@code C = L H} signed columns per
     * sample, column {@code e H + j} on unit {@code j}.
     */
    private Sources sources(NDManager scope, int t, List<NDList> adjoints) {
        int size = cell.localSize();
        long count = size * hidden;
        NDList local = new NDList();
        for (NDArray adjoint : adjoints.get(t)) {
            local.add(adjoint.squeeze(1));
        }
        NDArray hessian = cell.localHessian(stepCaches.get(t), stepPrevious.get(t), local);
        double[] matrices = hessian.toType(DataType.FLOAT64, false).toDoubleArray();
        double[] factors = new double[matrices.length];
        double[] signs = new double[matrices.length / size];
        SymmetricFactors.factor(matrices, size, factors, signs);
        boolean shared = true;
        for (int l = 0; l < size; l++) {
            shared &= cell.coordinateU(l) == cell.coordinateV(l);
        }
        // column e H + j is unit j's: its entries go to that unit's place in each gate and state
        int units = Math.toIntExact(hidden);
        int columns = Math.toIntExact(count);
        int width = cell.gates() * units;
        double[] onU = new double[Math.toIntExact(batch * count * width)];
        double[] onV = shared ? onU : new double[onU.length];
        double[][] onStates = new double[cell.states()][Math.toIntExact(batch * count * hidden)];
        double[] columnSigns = new double[Math.toIntExact(batch * count)];
        for (int m = 0; m < batch * units; m++) {
            int j = m % units;
            for (int e = 0; e < size; e++) {
                int column = (m / units) * columns + e * units + j;
                columnSigns[column] = signs[m * size + e];
                for (int l = 0; l < size; l++) {
                    double value = factors[(m * size + e) * size + l];
                    int gate = cell.coordinateU(l);
                    if (gate >= 0) {
                        onU[column * width + gate * units + j] += value;
                    }
                    gate = cell.coordinateV(l);
                    if (!shared && gate >= 0) {
                        onV[column * width + gate * units + j] += value;
                    }
                    int state = cell.coordinateState(l);
                    if (state >= 0) {
                        onStates[state][column * units + j] += value;
                    }
                }
            }
        }
        NDArray injectedU = create(scope, onU, new Shape(batch, count, width));
        NDArray injectedV = shared ? injectedU : create(scope, onV, new Shape(batch, count, width));
        NDList states = new NDList();
        for (double[] state : onStates) {
            states.add(create(scope, state, new Shape(batch, count, hidden)));
        }
        NDArray sign = create(scope, columnSigns, new Shape(batch, count));
        return new Sources(count, injectedU, injectedV, states, sign);
    }

    /**
     * Carries the columns {@code from .. from + chunk()} of step {@code t} back through time.
     *
     * @return the rows on {@code u} and on {@code v} at every step, {@code (N, c, T, G H)} each
     *     (zero after {@code t}; the same array where the cell shares them), and their signs,
     *     {@code (N, c)}
     */
    private NDArray[] carry(NDManager part, int t, Sources sources, long from) {
        long to = Math.min(sources.count, from + chunk());
        long count = to - from;
        NDIndex range = new NDIndex(":, {}:{}", from, to);
        boolean shared = sources.onU == sources.onV;
        NDArray injectedU = sources.onU.get(range);
        injectedU.attach(part);
        NDArray injectedV = injectedU;
        if (!shared) {
            injectedV = sources.onV.get(range);
            injectedV.attach(part);
        }
        NDArray signs = sources.signs.get(range);
        signs.attach(part);
        NDArray rowsU;
        NDArray rowsV;
        if (t == 0) {
            rowsU = injectedU.expandDims(2);
            rowsV = shared ? rowsU : injectedV.expandDims(2);
        } else {
            NDList start = new NDList();
            for (NDArray state : sources.onStates) {
                NDArray slice = state.get(range);
                slice.attach(part);
                start.add(slice);
            }
            start.set(0, start.get(0).add(times(injectedV, stateWeight)));
            NDArray[] earlier = backThroughTime(part, null, count, t - 1, start, null);
            rowsU = earlier[0].concat(injectedU.expandDims(2), 2);
            rowsV =
                    shared && earlier[1] == earlier[0]
                            ? rowsU
                            : earlier[1].concat(injectedV.expandDims(2), 2);
        }
        if (t < steps - 1) {
            long width = cell.gates() * hidden;
            NDArray zeros = part.zeros(new Shape(batch, count, steps - 1 - t, width), type);
            boolean same = rowsU == rowsV;
            rowsU = rowsU.concat(zeros, 2);
            rowsV = same ? rowsU : rowsV.concat(zeros, 2);
        }
        return new NDArray[] {rowsU, rowsV, signs};
    }

    /**
     * Returns how many columns are carried back through time at once: about {@link #CHUNK_ELEMENTS}
     * array elements of rows.
     */
    private long chunk() {
        long perColumn = 4 * batch * steps * cell.gates() * hidden;
        return Math.max(1, CHUNK_ELEMENTS / perColumn);
    }

    private NDArray create(NDManager scope, double[] values, Shape shape) {
        NDArray array = scope.create(values, shape);
        return type == DataType.FLOAT64 ? array : array.toType(type, false);
    }

    private static NDArray sum(NDArray total, NDArray term) {
        return total == null ? term : total.add(term);
    }

    /**
     * Per sample and gate unit {@code g}, {@code sum_c sign_c d_c[s, g] d_c[q, g]}: rows {@code (N,
     * C, T, G H)} and signs {@code (N, C)} to {@code (N, G H, T, T)}.
     */
    private NDArray gram(NDArray rows, NDArray signs) {
        Shape shape = rows.getShape();
        long count = shape.get(1);
        long width = shape.get(3);
        NDArray weighted =
                rows.mul(signs.reshape(batch, count, 1, 1))
                        .transpose(0, 3, 2, 1)
                        .reshape(batch * width, steps, count);
        NDArray plain = rows.transpose(0, 3, 1, 2).reshape(batch * width, count, steps);
        return weighted.matMul(plain).reshape(batch, width, steps, steps);
    }

    /**
     * The diagonal of the squared products with a weight whose image at step {@code t} is {@code
     * d_t z_t^T}: {@code sum_{s, q} M[g, s, q] z[s, f] z[q, f]}, {@code (N, G H, F)}.
     */
    private NDArray quadratic(NDArray gram, NDArray z) {
        long width = gram.getShape().get(1);
        long columns = z.getShape().get(2);
        NDArray mixed =
                gram.reshape(batch, width * steps, steps)
                        .matMul(z)
                        .reshape(batch, width, steps, columns);
        return mixed.mul(z.expandDims(1)).sum(new int[] {2});
    }

    /**
     * The diagonal of the bilinear {@code W_hh h_{t-1}}'s curvature: {@code 2 sum_t g_{v_t}[k] d
     * h_{t-1}[j] / d W_hh[k, j]}, {@code (N, G H, H)}, where the last factor runs unit {@code j} of
     * {@code h_{t-1}} back through time: {@code sum_{s < t} d h_{t-1}[j] / d v_s[k] h_{s-1}[j]}.
     */
    private NDArray recurrentCross(NDManager scope, NDArray lossOnV) {
        long width = cell.gates() * hidden;
        NDArray eye = scope.eye(Math.toIntExact(hidden)).toType(type, false);
        NDList parts = new NDList();
        for (long from = 0; from < hidden; from += chunk()) {
            long to = Math.min(hidden, from + chunk());
            long count = to - from;
            NDArray cross = scope.zeros(new Shape(batch, width, count), type);
            for (int t = 0; t + 1 < steps; t++) {
                try (NDManager part = scope.newSubManager()) {
                    // rows e_j on h_t for the units j of this chunk
                    NDList start = new NDList();
                    start.add(
                            part.zeros(new Shape(batch, count, hidden), type)
                                    .add(eye.get(new NDIndex("{}:{}", from, to))));
                    for (int s = 1; s < cell.states(); s++) {
                        start.add(part.zeros(new Shape(batch, count, hidden), type));
                    }
                    NDArray onV = backThroughTime(part, null, count, t, start, null)[1];
                    NDArray earlier =
                            previousHidden.get(new NDIndex(":, 0:{}, {}:{}", t + 1, from, to));
                    earlier.attach(part);
                    NDArray derivative =
                            onV.mul(earlier.transpose(0, 2, 1).expandDims(3))
                                    .sum(new int[] {2})
                                    .transpose(0, 2, 1);
                    NDArray weight = lossOnV.get(new NDIndex(":, 0, {}", t + 1)).expandDims(2);
                    weight.attach(part);
                    cross = cross.add(derivative.mul(weight).mul(2));
                    cross.attach(scope);
                }
            }
            parts.add(cross);
        }
        return NDArrays.concat(parts, 2);
    }

    /**
     * Per row, {@code sum_t d_t^T z_t}: {@code (N, k, T, G H)} and {@code (N, T, F)} to {@code (N
     * k, G H, F)}.
     */
    private NDArray weightProducts(NDArray products, NDArray z, long k) {
        long width = products.getShape().get(3);
        NDArray rows = products.transpose(0, 1, 3, 2).reshape(batch, k * width, steps).matMul(z);
        return rows.reshape(batch * k, width, z.getShape().get(2));
    }

    /**
     * Backpropagation through time of {@code N k} rows.
     *
     * @param scope where the arrays go
     * @param outputs rows on the outputs, {@code (N, k, T', H)} with {@code T' > top}, or {@code
     *     null}
     * @param k rows per sample
     * @param top the last step the rows reach
     * @param start rows on the states after step {@code top}, {@code (N, k, H)} each, or {@code
     *     null} for zeros
     * @param record receives the rows on the states after each step, or {@code null}
     * @return the rows on {@code u} and on {@code v} at steps {@code 0 .. top}, {@code (N, k, top +
     *     1, G H)} each (the same array where the cell shares them)
     */
    private NDArray[] backThroughTime(
            NDManager scope, NDArray outputs, long k, int top, NDList start, List<NDList> record) {
        NDList adjoints = start;
        if (adjoints == null) {
            adjoints = new NDList();
            for (int s = 0; s < cell.states(); s++) {
                adjoints.add(scope.zeros(new Shape(batch, k, hidden), type));
            }
        }
        NDArray[] onU = new NDArray[top + 1];
        NDArray[] onV = new NDArray[top + 1];
        boolean shared = true;
        for (int t = top; t >= 0; t--) {
            if (outputs != null) {
                adjoints.set(0, adjoints.get(0).add(outputs.get(new NDIndex(":, :, {}", t))));
            }
            if (record != null) {
                record.set(t, adjoints);
            }
            NDArray[] back = cell.backward(rowSlopes.get(t), adjoints);
            onU[t] = back[0];
            onV[t] = back[1];
            shared &= onU[t] == onV[t];
            if (t == 0) {
                break;
            }
            NDList next = new NDList();
            NDArray recurrent = times(onV[t], stateWeight);
            next.add(back[2] == null ? recurrent : recurrent.add(back[2]));
            for (int s = 1; s < cell.states(); s++) {
                next.add(back[2 + s]);
            }
            adjoints = next;
        }
        NDArray u = NDArrays.stack(new NDList(onU), 2);
        NDArray v = shared ? u : NDArrays.stack(new NDList(onV), 2);
        return new NDArray[] {u, v};
    }

    /** {@code (..., G H)} times {@code (G H, F)}. */
    private static NDArray times(NDArray rows, NDArray matrix) {
        Shape shape = rows.getShape();
        long width = shape.get(shape.dimension() - 1);
        NDArray product = rows.reshape(-1, width).matMul(matrix);
        long[] dims = shape.getShape().clone();
        dims[dims.length - 1] = matrix.getShape().get(1);
        return product.reshape(new Shape(dims));
    }

    private void attach(NDManager scope, NDArray... arrays) {
        List<NDArray> all = new ArrayList<>(kept);
        all.addAll(Arrays.asList(arrays));
        scope.tempAttachAll(all.toArray(new NDArray[0]));
    }
}
