package org.secorder.structured.internal.propagation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.ParameterList;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The running diagonal of every parameter, summed over the batch or kept per sample.
 *
 * <p>A layer whose parameter diagonals are a fixed map of the diagonal of the columns at its output
 * (a {@link Deferred} rule) sums those instead, and maps the sum once when the results are taken:
 * one product per layer, however many column sets and chunks reach it.
 */
public final class Accumulators {

    private final NDManager manager;
    private final boolean perSample;
    private final long batchSize;
    private final Map<Parameter, NDArray> sums = new IdentityHashMap<>();
    private final Map<Deferred, NDArray> deferred = new IdentityHashMap<>();

    /**
     * Creates empty accumulators.
     *
     * @param manager the manager that owns the running sums
     * @param perSample whether each sample keeps its own diagonal
     * @param batchSize the number of samples
     */
    public Accumulators(NDManager manager, boolean perSample, long batchSize) {
        this.manager = manager;
        this.perSample = perSample;
        this.batchSize = batchSize;
    }

    /**
     * Returns whether contributions carry a leading batch axis.
     *
     * @return whether each sample keeps its own diagonal
     */
    public boolean isPerSample() {
        return perSample;
    }

    /**
     * Adds a contribution to a parameter's diagonal.
     *
     * @param parameter the parameter
     * @param contribution shaped like the parameter, with a leading batch axis if {@link
     *     #isPerSample()}; a fresh array that the caller does not use afterwards, since the first
     *     one becomes the running sum
     */
    public void add(Parameter parameter, NDArray contribution) {
        accumulate(sums, parameter, contribution);
    }

    /**
     * Adds one contribution per sample to a parameter's diagonal: kept per sample where each sample
     * keeps its own diagonal, summed over the batch otherwise.
     *
     * @param parameter the parameter
     * @param contributions {@code (N, parameterShape...)}
     */
    public void addPerSample(Parameter parameter, NDArray contributions) {
        add(parameter, perSample ? contributions : contributions.sum(new int[] {0}));
    }

    /**
     * Adds to the running per-sample diagonal of the columns at a layer's output, which the layer
     * maps to its parameters' diagonals when the results are taken.
     *
     * @param rule the layer
     * @param outputDiagonal {@code (N, d)}; a fresh array that the caller does not use afterwards,
     *     since the first one becomes the running sum
     */
    public void defer(Deferred rule, NDArray outputDiagonal) {
        accumulate(deferred, rule, outputDiagonal);
    }

    private <K> void accumulate(Map<K, NDArray> running, K key, NDArray contribution) {
        NDArray sum = running.get(key);
        if (sum == null) {
            contribution.attach(manager);
            running.put(key, contribution);
        } else {
            sum.addi(contribution);
        }
    }

    /**
     * Returns the diagonal of every entry of a parameter list, zeros where nothing was added.
     *
     * @param entries the model's parameters, in order
     * @param results the manager to attach the results to
     * @return one array per entry
     */
    public NDArray[] results(ParameterList entries, NDManager results) {
        for (Map.Entry<Deferred, NDArray> entry : deferred.entrySet()) {
            entry.getKey().finish(entry.getValue(), this);
        }
        deferred.clear();
        NDArray[] out = new NDArray[entries.size()];
        for (int i = 0; i < out.length; i++) {
            Parameter parameter = entries.get(i).getValue();
            NDArray sum = sums.get(parameter);
            NDArray array = parameter.getArray();
            Shape shape = array.getShape();
            if (perSample) {
                shape = new Shape(batchSize).addAll(shape);
            }
            if (sum == null) {
                sum = manager.zeros(shape, array.getDataType());
            } else if (!sum.getShape().equals(shape)) {
                sum = sum.reshape(shape);
            }
            sum.attach(results);
            out[i] = sum;
        }
        return out;
    }

    /** A layer whose parameter diagonals follow from the per-sample diagonal at its output. */
    public interface Deferred {

        /**
         * Adds the parameter diagonals that the summed output diagonal gives.
         *
         * @param outputDiagonal {@code (N, d)}, the sum over every column set that reached the
         *     layer; the layer may keep it as a contribution
         * @param accumulators where to add the parameter diagonals
         */
        void finish(NDArray outputDiagonal, Accumulators accumulators);
    }
}
