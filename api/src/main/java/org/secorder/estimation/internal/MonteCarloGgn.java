package org.secorder.estimation.internal;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Supplier;
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngine;
import org.secorder.evaluation.CallerArrays;
import org.secorder.evaluation.Evaluation;
import org.secorder.evaluation.LossFunction;

/**
 * The Monte-Carlo generalized Gauss-Newton diagonal (BackPACK's {@code DiagGGNMC}, Sophia's
 * Gauss-Newton-Bartlett estimator) from first-order gradients only: for each sample, labels drawn
 * from the model's predictive distribution (see {@link LabelSampler}), the gradient {@code g} of
 * the batch loss at those labels, and the term {@code g * g / c}, unbiased for the GGN diagonal.
 * The estimate is the mean of the terms, its standard error their sample standard deviation over
 * the square root of their number. One forward pass for the predictions, then one forward and one
 * backward pass per sample.
 */
public final class MonteCarloGgn {

    private MonteCarloGgn() {}

    /**
     * Estimates the GGN diagonal of a model's loss.
     *
     * @param engine the engine adapter
     * @param model the model
     * @param loss the loss
     * @param inputs the model's inputs
     * @param targets the labels: their shape and data type are those of the sampled labels
     * @param parameters all parameters of the model
     * @param active which of them require gradients; the others get zeros
     * @param training whether the forward passes run in training mode
     * @param samples how many label samples (backward passes)
     * @param seed the seed of the labels
     * @return the estimate, over all parameters
     */
    public static FlatEstimate estimate(
            SecondOrderEngine engine,
            Block model,
            Loss loss,
            NDList inputs,
            NDList targets,
            NDArray[] parameters,
            boolean[] active,
            boolean training,
            int samples,
            long seed) {
        ParameterSpace space = new ParameterSpace(parameters);
        List<NDArray> callerArrays = new ArrayList<>(List.of(parameters));
        callerArrays.addAll(inputs);
        callerArrays.addAll(targets);
        List<NDArray> variables = new ArrayList<>();
        for (int i = 0; i < parameters.length; i++) {
            if (active[i]) {
                variables.add(parameters[i]);
            }
        }
        NDArray[] activeParameters = variables.toArray(new NDArray[0]);
        SplittableRandom random = new SplittableRandom(seed);
        RunningMoments moments = new RunningMoments(space.dimension());
        try (NDManager scope = inputs.head().getManager().newSubManager()) {
            LabelSampler sampler = sampler(engine, model, loss, inputs, targets, training, scope);
            double scale = sampler.scale();
            for (int k = 0; k < samples; k++) {
                try (NDManager sampleScope = scope.newSubManager()) {
                    NDArray labels = sampler.sample(random, sampleScope);
                    NDList sampled = new NDList(labels);
                    Supplier<NDArray> func =
                            () -> {
                                NDManager manager = inputs.head().getManager();
                                RecordingScope mode = engine.trainingMode(training);
                                try {
                                    NDList predictions =
                                            model.forward(
                                                    new ParameterStore(manager, false),
                                                    inputs,
                                                    training);
                                    return loss.evaluate(sampled, predictions);
                                } finally {
                                    mode.close();
                                }
                            };
                    List<NDArray> arrays = new ArrayList<>(callerArrays);
                    arrays.add(labels);
                    LossFunction function =
                            new LossFunction(
                                    engine,
                                    func,
                                    "loss.evaluate(sampled labels, predictions)",
                                    arrays);
                    moments.add(
                            squaredOverScale(
                                    function, engine, activeParameters, active, space, scale));
                }
            }
        }
        return moments.estimate(samples);
    }

    private static double[] squaredOverScale(
            LossFunction function,
            SecondOrderEngine engine,
            NDArray[] activeParameters,
            boolean[] active,
            ParameterSpace space,
            double scale) {
        try (Evaluation evaluation = function.evaluate()) {
            NDArray[] gradients = engine.gradient(evaluation.getLoss(), activeParameters, false);
            NDArray[] all = new NDArray[active.length];
            for (int i = 0, k = 0; i < active.length; i++) {
                if (active[i]) {
                    all[i] = gradients[k++];
                }
            }
            double[] term = space.toHost(all);
            for (int i = 0; i < term.length; i++) {
                term[i] = term[i] * term[i] / scale;
            }
            return term;
        }
    }

    /** One forward pass without recording, for the predictive distribution. */
    private static LabelSampler sampler(
            SecondOrderEngine engine,
            Block model,
            Loss loss,
            NDList inputs,
            NDList targets,
            boolean training,
            NDManager scope) {
        List<NDArray> callerArrays = new ArrayList<>();
        for (var entry : model.getParameters()) {
            callerArrays.add(entry.getValue().getArray());
        }
        callerArrays.addAll(inputs);
        callerArrays.addAll(targets);
        try (NDManager forward = scope.newSubManager()) {
            forward.tempAttachAll(CallerArrays.distinct(callerArrays));
            RecordingScope recording = engine.recording(false);
            RecordingScope mode = engine.trainingMode(training);
            try {
                NDList predictions =
                        model.forward(new ParameterStore(forward, false), inputs, training);
                return LabelSampler.of(
                        loss, predictions.singletonOrThrow(), targets.singletonOrThrow(), forward);
            } finally {
                mode.close();
                recording.close();
            }
        }
    }
}
