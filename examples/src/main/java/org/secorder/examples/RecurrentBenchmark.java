package org.secorder.examples;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.nn.Blocks;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.nn.recurrent.GRU;
import ai.djl.nn.recurrent.LSTM;
import ai.djl.nn.recurrent.RNN;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.secorder.core.Curvature;
import org.secorder.core.HessianDiagonal;

/**
 * Times the structured Hessian diagonal and the generalized Gauss-Newton diagonal of recurrent
 * classifiers (DJL's {@code LSTM}, {@code GRU} and {@code RNN}, 8 steps of 8 features, state 32,
 * {@code Linear(10)}) against one plain gradient of the same network in the same run.
 *
 * <p>Batch 32, softmax cross-entropy over 10 classes, float32. With the argument {@code generic},
 * the LSTM classifier also runs with its LSTM inside a block of this benchmark's own, which has no
 * rule, so that the generic rule (first-order autograd per sample) computes its GGN: the cost that
 * the explicit rule replaces. Timing is {@link StructuredBenchmark}'s.
 */
public final class RecurrentBenchmark {

    private static final int BATCH = 32;
    private static final int CLASSES = 10;
    private static final int STATE = 32;
    private static final Shape SEQUENCES = new Shape(BATCH, 8, 8);
    private static final int WARMUP = 2;
    private static final long WARMUP_NANOS = 2_000_000_000L;
    private static final int RUNS = 7;

    private RecurrentBenchmark() {}

    /**
     * Runs the benchmark and prints the table.
     *
     * @param args {@code generic} to time the generic rule's GGN of the LSTM classifier as well
     */
    public static void main(String[] args) {
        boolean generic = args.length > 0 && "generic".equals(args[0]);
        Engine engine = Engine.getInstance();
        engine.setRandomSeed(1234);
        System.out.printf(
                "Recurrent benchmark on %s %s, %d CPU cores; batch %d, 8 steps of 8 features, state"
                        + " %d, softmax cross-entropy over %d classes, float32; load average at"
                        + " start: %s%n",
                engine.getEngineName(),
                engine.getVersion(),
                Runtime.getRuntime().availableProcessors(),
                BATCH,
                STATE,
                CLASSES,
                StructuredBenchmark.loadAverage());
        System.out.printf(
                "times: median of %d runs after warm-up, tasks taking turns; ratio: to one gradient"
                        + " (forward + backward in a GradientCollector) of the same network in the"
                        + " same run%n",
                RUNS);
        System.out.printf(
                "%-34s %8s %10s %11s %8s %10s %8s%n",
                "network", "params", "gradient s", "HESSIAN s", "ratio", "GGN s", "ratio");
        measure("LSTM, last step", () -> lastStep(lstm()));
        measure("LSTM, all steps", () -> allSteps(lstm()));
        measure(
                "GRU, all steps",
                () -> allSteps(GRU.builder().setStateSize(STATE).setNumLayers(1).build()));
        measure(
                "RNN tanh, all steps",
                () ->
                        allSteps(
                                RNN.builder()
                                        .setStateSize(STATE)
                                        .setNumLayers(1)
                                        .setActivation(RNN.Activation.TANH)
                                        .build()));
        if (generic) {
            measure("LSTM, last step, generic rule", () -> lastStep(new Opaque(lstm())));
        }
    }

    private static void measure(String name, Supplier<Block> model) {
        try (NDManager manager = NDManager.newBaseManager()) {
            StructuredBenchmark.Setup setup =
                    new StructuredBenchmark.Setup(manager, model.get(), SEQUENCES);
            HessianDiagonal hessian =
                    HessianDiagonal.builder().optMethod(HessianDiagonal.Method.STRUCTURED).build();
            HessianDiagonal ggn =
                    HessianDiagonal.builder()
                            .optMethod(HessianDiagonal.Method.STRUCTURED)
                            .optCurvature(Curvature.GGN)
                            .build();
            List<String> unsupported = hessian.unsupportedBlocks(setup.model(), setup.loss());
            boolean withHessian = unsupported.isEmpty();
            if (withHessian) {
                try {
                    setup.compute(hessian);
                } catch (UnsupportedOperationException e) {
                    withHessian = false;
                    unsupported = List.of(e.getMessage());
                }
            }
            List<Runnable> tasks = new ArrayList<>();
            tasks.add(setup::gradient);
            tasks.add(() -> setup.compute(ggn));
            if (withHessian) {
                tasks.add(() -> setup.compute(hessian));
            }
            StructuredBenchmark.Timing timing =
                    StructuredBenchmark.time(
                            WARMUP, WARMUP_NANOS, RUNS, tasks.toArray(new Runnable[0]));
            double gradient = timing.seconds[0];
            String hessianSeconds = "n/a";
            String hessianRatio = "n/a";
            if (withHessian) {
                hessianSeconds = String.format("%.4f", timing.seconds[2]);
                hessianRatio = String.format("%.1f", timing.seconds[2] / gradient);
            }
            System.out.printf(
                    "%-34s %8d %10.5f %11s %8s %10.4f %8.1f%n",
                    name,
                    setup.parameterCount(),
                    gradient,
                    hessianSeconds,
                    hessianRatio,
                    timing.seconds[1],
                    timing.seconds[1] / gradient);
            if (!withHessian) {
                String reason = unsupported.get(0);
                System.out.printf(
                        "    (Hessian n/a: %s)%n",
                        reason.substring(0, Math.min(200, reason.length())));
            }
        }
    }

    private static Block lstm() {
        return LSTM.builder().setStateSize(STATE).setNumLayers(1).build();
    }

    private static Block lastStep(Block recurrent) {
        return new SequentialBlock()
                .add(recurrent)
                .add(new LambdaBlock(list -> new NDList(list.head().get(":, -1, :"))))
                .add(Linear.builder().setUnits(CLASSES).build());
    }

    private static Block allSteps(Block recurrent) {
        return new SequentialBlock()
                .add(recurrent)
                .add(Blocks.batchFlattenBlock())
                .add(Linear.builder().setUnits(CLASSES).build());
    }

    /** A block of this benchmark's own around another, without a rule of its own. */
    private static final class Opaque extends AbstractBlock {

        private final Block inner;

        Opaque(Block inner) {
            this.inner = addChildBlock("inner", inner);
        }

        /** {@inheritDoc} */
        @Override
        protected NDList forwardInternal(
                ParameterStore parameterStore,
                NDList inputs,
                boolean training,
                PairList<String, Object> params) {
            return inner.forward(parameterStore, inputs, training);
        }

        /** {@inheritDoc} */
        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return inner.getOutputShapes(inputShapes);
        }

        /** {@inheritDoc} */
        @Override
        protected void initializeChildBlocks(
                NDManager manager, DataType dataType, Shape... inputShapes) {
            inner.initialize(manager, dataType, inputShapes);
        }
    }
}
