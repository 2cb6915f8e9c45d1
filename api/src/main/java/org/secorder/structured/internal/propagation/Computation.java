package org.secorder.structured.internal.propagation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.nn.Block;
import ai.djl.nn.ParameterList;
import ai.djl.training.loss.Loss;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;
import org.secorder.engine.SecondOrderEngine;
import org.secorder.structured.MemoryMeter;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.losses.LossCheck;
import org.secorder.structured.internal.losses.LossCurvature;
import org.secorder.structured.internal.losses.LossCurvatures;

/**
 * One structured computation over a batch: the forward pass, the loss rules, the gradient pass
 * where activations have curvature, and the propagation of every column set.
 *
 * <p>Every supported block treats samples independently, so a wide network may run the batch in
 * slices of samples, each slice propagated on its own and the diagonals summed (or, per sample,
 * concatenated); the loss rules still divide by the whole batch. Slices keep the arrays of one rule
 * within the working set of {@link Propagation}, where very large temporaries cost more to allocate
 * than to compute with.
 *
 * <p>Whether to slice is known only after a forward pass, which gives the column memory per sample;
 * that memory depends only on the model, the per-sample input shape, data type, engine and options,
 * so it is remembered for each of them (for as long as the model lives), and a later call that
 * slices runs only the slices forward, not the whole batch as well. It decides the slicing only,
 * never a result.
 */
public final class Computation {

    private static final Map<Block, Map<String, Long>> COLUMN_ELEMENTS =
            Collections.synchronizedMap(new WeakHashMap<>());

    private final Block model;

    private final Layer root;
    private final LossCurvature curvature;
    private final Loss loss;
    private final SecondOrderEngine engine;
    private final MemoryMeter meter;
    private final boolean ggn;
    private final boolean perSample;
    private final boolean training;
    private final List<NDArray> parameters;

    /**
     * Creates a computation.
     *
     * @param model the model, the key of its remembered column memory per sample
     * @param root the model's layers
     * @param loss the DJL loss
     * @param engine the engine adapter
     * @param meter the memory budget
     * @param ggn whether to leave out the curvature of the activations
     * @param perSample whether each sample keeps its own diagonal
     * @param training whether blocks run in training mode
     * @param parameters the model's parameter arrays
     */
    public Computation(
            Block model,
            Layer root,
            Loss loss,
            SecondOrderEngine engine,
            MemoryMeter meter,
            boolean ggn,
            boolean perSample,
            boolean training,
            List<NDArray> parameters) {
        this.model = model;
        this.root = root;
        this.loss = loss;
        this.curvature = LossCurvatures.of(loss);
        this.engine = engine;
        this.meter = meter;
        this.ggn = ggn;
        this.perSample = perSample;
        this.training = training;
        this.parameters = List.copyOf(parameters);
    }

    /**
     * Computes the diagonals.
     *
     * @param input the model's input
     * @param target the labels
     * @param entries the model's parameters
     * @param work the manager of the computation, closed by the caller
     * @param results the manager of the results
     * @return one diagonal per entry
     */
    public NDArray[] run(
            NDArray input,
            NDArray target,
            ParameterList entries,
            NDManager work,
            NDManager results) {
        long batch = input.getShape().get(0);
        String key = key(input);
        Long known = remembered(key);
        long knownSlice = known == null ? batch : slice(batch, known, input);
        if (knownSlice < batch) {
            return runSlices(input, target, entries, work, results, knownSlice, key);
        }
        Propagation whole = propagation(work, batch);
        whole.keep(input);
        NDArray predictions = root.forward(whole, input);
        LossCheck.check(curvature, loss, predictions, target);
        long elements = root.columnElements();
        remember(key, elements);
        long perSlice = slice(batch, elements, input);
        if (perSlice >= batch) {
            curvature.evaluate(predictions, target, batch);
            propagate(whole);
            return whole.getAccumulators().results(entries, results);
        }
        return runSlices(input, target, entries, work, results, perSlice, key);
    }

    /** Runs the batch in slices of samples, each forward and propagated on its own. */
    private NDArray[] runSlices(
            NDArray input,
            NDArray target,
            ParameterList entries,
            NDManager work,
            NDManager results,
            long perSlice,
            String key) {
        long batch = input.getShape().get(0);
        List<NDArray[]> parts = new ArrayList<>();
        for (long from = 0; from < batch; from += perSlice) {
            long to = Math.min(batch, from + perSlice);
            try (NDManager scope = work.newSubManager()) {
                scope.tempAttachAll(parameters.toArray(new NDArray[0]));
                scope.tempAttachAll(input, target);
                NDIndex samples = new NDIndex("{}:{}", from, to);
                NDArray sliceInput = input.get(samples);
                Propagation propagation = propagation(scope, to - from);
                propagation.keep(sliceInput);
                NDArray slicePredictions = root.forward(propagation, sliceInput);
                NDArray sliceTarget = target.get(samples);
                if (from == 0) {
                    // the loss rules against DJL's loss, on the first slice's samples; and the
                    // column memory per sample as this forward pass found it, for the next call
                    LossCheck.check(curvature, loss, slicePredictions, sliceTarget);
                    remember(key, root.columnElements());
                }
                curvature.evaluate(slicePredictions, sliceTarget, batch);
                propagate(propagation);
                parts.add(propagation.getAccumulators().results(entries, work));
            }
        }
        return combine(parts, results);
    }

    private long slice(long batch, long columnElements, NDArray input) {
        long bytesPerSample = Math.max(1, columnElements * input.getDataType().getNumOfBytes());
        long limit = Math.min(meter.getBudgetBytes(), Propagation.WORKING_SET_BYTES);
        return Math.max(1, Math.min(batch, limit / bytesPerSample));
    }

    /** What the column memory per sample depends on besides the model. */
    private String key(NDArray input) {
        return input.getShape().slice(1)
                + " "
                + input.getDataType()
                + " "
                + input.getManager().getEngine().getEngineName()
                + (ggn ? " ggn" : " hessian")
                + (training ? " training" : "")
                + (perSample ? " per sample" : "");
    }

    private Long remembered(String key) {
        synchronized (COLUMN_ELEMENTS) {
            Map<String, Long> byKey = COLUMN_ELEMENTS.get(model);
            return byKey == null ? null : byKey.get(key);
        }
    }

    private void remember(String key, long elements) {
        synchronized (COLUMN_ELEMENTS) {
            COLUMN_ELEMENTS.computeIfAbsent(model, m -> new HashMap<>()).put(key, elements);
        }
    }

    private Propagation propagation(NDManager manager, long batch) {
        Propagation propagation =
                new Propagation(
                        manager,
                        engine,
                        meter,
                        perSample,
                        batch,
                        training,
                        parameters.get(0).getDataType());
        for (NDArray array : parameters) {
            propagation.keep(array);
        }
        return propagation;
    }

    private void propagate(Propagation propagation) {
        if (!ggn && root.hasCurvature()) {
            root.backward(propagation.keep(curvature.gradient()), false);
        }
        ColumnSet lossColumns = curvature.factor();
        if (lossColumns != null) {
            propagation.run(() -> lossColumns, new Entry(root));
        }
        if (!ggn) {
            root.spawn(Continuation.NONE);
        }
        propagation.finish();
    }

    private NDArray[] combine(List<NDArray[]> parts, NDManager results) {
        NDArray[] combined = new NDArray[parts.get(0).length];
        for (int i = 0; i < combined.length; i++) {
            NDList pieces = new NDList(parts.size());
            for (NDArray[] part : parts) {
                pieces.add(part[i]);
            }
            NDArray result;
            if (perSample) {
                result = NDArrays.concat(pieces, 0);
            } else {
                result = pieces.get(0);
                for (int k = 1; k < pieces.size(); k++) {
                    result = result.add(pieces.get(k));
                }
            }
            result.attach(results);
            combined[i] = result;
        }
        return combined;
    }

    /** Propagates columns at the model's output through the whole model. */
    private static final class Entry implements Continuation {

        private final Layer root;

        Entry(Layer root) {
            this.root = root;
        }

        /** {@inheritDoc} */
        @Override
        public boolean isNeeded() {
            return true;
        }

        /** {@inheritDoc} */
        @Override
        public void accept(ColumnSet columns) {
            root.propagate(columns, Continuation.NONE);
        }
    }
}
