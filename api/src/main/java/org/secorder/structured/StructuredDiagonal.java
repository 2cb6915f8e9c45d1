package org.secorder.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;
import ai.djl.nn.ParameterList;
import ai.djl.training.loss.Loss;
import java.util.ArrayList;
import java.util.List;
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngine;
import org.secorder.engine.SecondOrderEngines;

/**
 * The exact Hessian diagonal, or the exact generalized Gauss-Newton diagonal, of a model's loss by
 * structured backward propagation.
 *
 * <p>For each sample the Hessian of the loss with respect to a block's output is kept as a signed
 * sum of outer products of factor columns, {@code H_z = sum_c sign_c s_c s_c^T}. It starts at the
 * loss as a square root of the loss Hessian (with DJL's mean reduction) and moves from each block's
 * output to its input by the transposed Jacobian; an activation {@code y = phi(x)} with output
 * gradient {@code g} adds the signed diagonal {@code diag(g * phi''(x))} as one column set of its
 * own. A parameter of a block that is linear in it gets {@code sum_n sum_c sign_c (J^T s_c)^2}. The
 * generalized Gauss-Newton diagonal is the same propagation without the activation columns.
 *
 * <p>Every rule is explicit arithmetic on DJL's first-order operators, the same on every engine;
 * columns are processed in chunks so that they fit a memory budget.
 */
public final class StructuredDiagonal {

    private StructuredDiagonal() {}

    /**
     * Returns whether every block of a model and the loss are supported, in inference mode.
     *
     * @param model the model
     * @param loss the loss
     * @return whether {@link #compute} can handle them
     */
    public static boolean supports(Block model, Loss loss) {
        try (NDManager manager = NDManager.newBaseManager()) {
            LossCurvatures.of(loss);
            LayerFactory.build(model, manager, false);
            return true;
        } catch (UnsupportedOperationException e) {
            return false;
        }
    }

    /**
     * Computes the exact Hessian diagonal ({@code ggn=false}) or the exact generalized Gauss-Newton
     * diagonal ({@code ggn=true}) of a model's loss with respect to all its parameters.
     *
     * @param model an initialized model
     * @param loss the loss, evaluated as {@code loss.evaluate(targets, predictions)}
     * @param inputs the model's input, one array
     * @param targets the labels, one array
     * @param ggn whether to leave out the curvature of the activations
     * @param perSample whether to return one diagonal per sample, along a leading batch axis; they
     *     sum to the diagonal of the batch's loss
     * @param training whether the model runs in training mode
     * @param memoryBudgetBytes the most bytes of factor columns to hold at once
     * @param results the manager to attach the results to
     * @return one array per entry of {@code model.getParameters()}, in order; zeros for running
     *     statistics
     * @throws UnsupportedOperationException naming the unsupported block or loss, with the list of
     *     supported ones
     */
    public static NDArray[] compute(
            Block model,
            Loss loss,
            NDList inputs,
            NDList targets,
            boolean ggn,
            boolean perSample,
            boolean training,
            long memoryBudgetBytes,
            NDManager results) {
        return compute(
                model,
                loss,
                inputs,
                targets,
                ggn,
                perSample,
                training,
                new MemoryMeter(memoryBudgetBytes),
                results);
    }

    /**
     * Computes the exact Hessian or generalized Gauss-Newton diagonal as {@link #compute(Block,
     * Loss, NDList, NDList, boolean, boolean, boolean, long, NDManager)} does, recording the peak
     * column memory in a meter.
     *
     * @param model an initialized model
     * @param loss the loss, evaluated as {@code loss.evaluate(targets, predictions)}
     * @param inputs the model's input, one array
     * @param targets the labels, one array
     * @param ggn whether to leave out the curvature of the activations
     * @param perSample whether to return one diagonal per sample, along a leading batch axis
     * @param training whether the model runs in training mode
     * @param meter the memory budget, which also receives the peak
     * @param results the manager to attach the results to
     * @return one array per entry of {@code model.getParameters()}, in order
     */
    public static NDArray[] compute(
            Block model,
            Loss loss,
            NDList inputs,
            NDList targets,
            boolean ggn,
            boolean perSample,
            boolean training,
            MemoryMeter meter,
            NDManager results) {
        ParameterList entries = model.getParameters();
        if (entries.isEmpty()) {
            throw new IllegalArgumentException("model has no parameters");
        }
        NDArray input = single(inputs, "inputs");
        NDArray target = single(targets, "targets");
        SecondOrderEngine engine = SecondOrderEngines.of(input);
        List<NDArray> callerArrays = new ArrayList<>();
        for (int i = 0; i < entries.size(); i++) {
            callerArrays.add(entries.valueAt(i).getArray());
        }
        callerArrays.add(input);
        callerArrays.add(target);
        try (NDManager work = results.newSubManager()) {
            work.tempAttachAll(distinct(callerArrays));
            RecordingScope recording = engine.recording(false);
            RecordingScope mode = engine.trainingMode(training);
            try {
                LossCurvature curvature = LossCurvatures.of(loss);
                Layer root = LayerFactory.build(model, work, training);
                long batch = input.getShape().get(0);
                Propagation propagation =
                        new Propagation(
                                work,
                                engine,
                                meter,
                                perSample,
                                batch,
                                training,
                                input.getDataType());
                for (NDArray array : callerArrays) {
                    propagation.keep(array);
                }
                NDArray predictions = root.forward(propagation, input);
                LossCheck.evaluate(curvature, loss, predictions, target);
                run(root, curvature, propagation, ggn);
                return propagation.getAccumulators().results(entries, results);
            } finally {
                try {
                    mode.close();
                } finally {
                    recording.close();
                }
            }
        }
    }

    private static void run(
            Layer root, LossCurvature curvature, Propagation propagation, boolean ggn) {
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
    }

    private static NDArray single(NDList list, String name) {
        if (list == null || list.size() != 1) {
            throw new IllegalArgumentException(
                    name + " must hold exactly one array for the structured method");
        }
        NDArray array = list.head();
        if (array.getShape().dimension() == 0) {
            throw new IllegalArgumentException(name + " must have a batch axis");
        }
        return array;
    }

    private static NDArray[] distinct(List<NDArray> arrays) {
        List<NDArray> unique = new ArrayList<>();
        for (NDArray array : arrays) {
            boolean found = false;
            for (NDArray other : unique) {
                found |= other == array;
            }
            if (!found) {
                unique.add(array);
            }
        }
        return unique.toArray(new NDArray[0]);
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
