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
import org.secorder.evaluation.CallerArrays;
import org.secorder.structured.internal.losses.LossCurvatures;
import org.secorder.structured.internal.propagation.Computation;
import org.secorder.structured.internal.propagation.Layer;
import org.secorder.structured.internal.recognition.Recognition;

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
 * <p>Every rule is explicit arithmetic on DJL's operators, the same on every engine, with no
 * autograd at all except for DJL's pooling blocks: they keep their window settings inside a lambda,
 * so their vector-Jacobian products come from the engine's first-order autograd. Smooth activations
 * add one signed column set each (not a positive and a negative copy); such diagonal sets stay
 * factored, {@code scale[n, c] * mixing[c, i] * factor[n, i]} with the mixing matrix shared by all
 * samples, until a per-sample factor meets a block that mixes features; columns are processed in
 * chunks, and a wide network in slices of samples, so that the columns held at once fit a memory
 * budget.
 *
 * <p>Supported blocks: those of the rule table, {@link BlockRules#supportedBlocks()}, to which
 * users add rules of their own with {@link BlockRules#register}. Supported losses: {@code L2Loss},
 * {@code L1Loss}, {@code SoftmaxCrossEntropyLoss} and {@code SigmoidBinaryCrossEntropyLoss} on
 * logits, each with DJL's mean reduction. Anything else is refused with an {@link
 * UnsupportedOperationException} that names it and lists what is supported.
 */
public final class StructuredDiagonal {

    private StructuredDiagonal() {}

    /**
     * Returns whether every block of a model and the loss are supported, in inference mode.
     *
     * <p>What depends on the data is only checked by {@code compute}: the rank of a {@code Linear}
     * block's input, the shape of a cross-entropy's predictions.
     *
     * @param model the model
     * @param loss the loss
     * @return whether {@link #compute} can handle them
     */
    public static boolean supports(Block model, Loss loss) {
        return supports(model, loss, false);
    }

    /**
     * Returns whether every block of a model and the loss are supported in a mode: in training
     * mode, {@code BatchNorm} and {@code Dropout} are not.
     *
     * <p>What depends on the data is only checked by {@code compute}: the rank of a {@code Linear}
     * block's input, the shape of a cross-entropy's predictions.
     *
     * @param model the model
     * @param loss the loss
     * @param training whether the model runs in training mode
     * @return whether {@link #compute} can handle them
     */
    public static boolean supports(Block model, Loss loss, boolean training) {
        try (NDManager manager = NDManager.newBaseManager()) {
            LossCurvatures.of(loss);
            Recognition.build(model, manager, training);
            return true;
        } catch (UnsupportedOperationException e) {
            return false;
        }
    }

    /**
     * Returns every block of a model without a structured rule, and the loss if it is not
     * supported, each with the reason; empty if the structured methods support the model.
     *
     * <p>The children of an unsupported block are not looked at. What depends on the data is only
     * checked by {@code compute}: the rank of a {@code Linear} block's input, the shape of a
     * cross-entropy's predictions.
     *
     * @param model the model
     * @param loss the loss
     * @param training whether the model runs in training mode
     * @return one message per unsupported block or loss, in the order of the model, the loss last
     */
    public static List<String> unsupportedBlocks(Block model, Loss loss, boolean training) {
        return unsupportedBlocks(model, loss, training, false);
    }

    /**
     * Returns every block of a model, and the loss, that the structured methods do not support for
     * a curvature, each with the reason; empty if they support the model. For the generalized
     * Gauss-Newton curvature ({@code ggn}) a block without a rule of its own is covered by the
     * generic rule (its products from first-order autograd, at a cost logged when it runs) and is
     * not listed; for the Hessian it is.
     *
     * @param model the model
     * @param loss the loss
     * @param training whether the model runs in training mode
     * @param ggn whether the curvature is the generalized Gauss-Newton matrix
     * @return one message per unsupported block or loss, in the order of the model, the loss last
     */
    public static List<String> unsupportedBlocks(
            Block model, Loss loss, boolean training, boolean ggn) {
        List<String> unsupported;
        try (NDManager manager = NDManager.newBaseManager()) {
            unsupported = new ArrayList<>(Recognition.unsupported(model, manager, training, ggn));
        }
        try {
            LossCurvatures.of(loss);
        } catch (UnsupportedOperationException e) {
            unsupported.add(e.getMessage());
        }
        return unsupported;
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
            work.tempAttachAll(CallerArrays.distinct(callerArrays));
            RecordingScope recording = engine.recording(false);
            RecordingScope mode = engine.trainingMode(training);
            try {
                Layer root = Recognition.build(model, work, training, ggn);
                List<NDArray> parameters = callerArrays.subList(0, entries.size());
                Computation computation =
                        new Computation(
                                model,
                                root,
                                loss,
                                engine,
                                meter,
                                ggn,
                                perSample,
                                training,
                                parameters);
                return computation.run(input, target, entries, work, results);
            } finally {
                try {
                    mode.close();
                } finally {
                    recording.close();
                }
            }
        }
    }

    private static NDArray single(NDList list, String name) {
        if (list == null || list.isEmpty()) {
            throw new IllegalArgumentException(name + " must hold an array");
        }
        if (list.size() != 1) {
            throw new UnsupportedOperationException(
                    "The structured Hessian diagonal supports models of one input and one label"
                            + " array, but "
                            + name
                            + " holds "
                            + list.size());
        }
        NDArray array = list.head();
        if (array.getShape().dimension() == 0) {
            throw new IllegalArgumentException(name + " must have a batch axis");
        }
        return array;
    }
}
