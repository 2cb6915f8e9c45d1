package org.secorder.examples;

import ai.djl.basicmodelzoo.cv.classification.LeNet;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Blocks;
import ai.djl.nn.ParallelBlock;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.core.Linear;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import ai.djl.util.Pair;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;
import org.secorder.core.HessianDiagonal;
import org.secorder.structured.MemoryMeter;
import org.secorder.structured.StructuredDiagonal;

/**
 * Times the structured Hessian diagonal ({@code STRUCTURED}) and the generalized Gauss-Newton
 * diagonal ({@code GGN}) against one plain gradient of the same network in the same run, and
 * against double backward ({@code AUTOGRAD}), extrapolated from a timed sample of elements.
 *
 * <p>Networks: the 784-512-512-10 MLP with ReLU and with tanh, a small convolutional network and a
 * residual MLP, batch 128, softmax cross-entropy, float32. Each time is the median of several runs
 * after seconds of warm-up runs, printed with the process's minor page faults per call. The tanh
 * MLP is also run under small memory budgets, with the peak of the factor columns held at once.
 * Last, smooth convolutional networks: the CNN with tanh and with GELU at batch 128 and DJL's
 * {@code LeNet} (sigmoid) at batch 32, timed with fewer runs.
 */
public final class StructuredBenchmark {

    static final int BATCH = 128;
    private static final int CLASSES = 10;
    private static final long DEFAULT_BUDGET = 256L << 20;
    private static final int WARMUP = 5;
    private static final long WARMUP_NANOS = 5_000_000_000L;
    private static final int RUNS = 21;
    private static final int SMOOTH_RUNS = 7;
    private static final int SMOOTH_WARMUP = 2;

    private StructuredBenchmark() {}

    /**
     * Runs the benchmark and prints the tables.
     *
     * @param args {@code smooth} for the smooth convolutional networks only
     */
    public static void main(String[] args) {
        Engine engine = Engine.getInstance();
        engine.setRandomSeed(1234);
        if (args.length > 0 && "smooth".equals(args[0])) {
            smooth();
            return;
        }
        System.out.printf(
                "Structured Hessian diagonal benchmark on %s %s, %d CPU cores; batch %d, softmax"
                        + " cross-entropy, float32%n",
                engine.getEngineName(),
                engine.getVersion(),
                Runtime.getRuntime().availableProcessors(),
                BATCH);
        System.out.printf(
                "times: median of %d runs after at least %d warm-up runs and %d s of them (so that"
                        + " the JIT has compiled both sides, as in a training loop), gradient,"
                        + " STRUCTURED and GGN taking turns; ratio: to one gradient (forward +"
                        + " backward in a GradientCollector) of the same network in the same run;"
                        + " load average at start: %s%n",
                RUNS, WARMUP, WARMUP_NANOS / 1_000_000_000L, loadAverage());
        System.out.printf(
                "allocator: MALLOC_ARENA_MAX=%s MALLOC_MMAP_THRESHOLD_=%s"
                    + " MALLOC_TRIM_THRESHOLD_=%s; faults: minor page faults of the process per"
                    + " call (gradient/STRUCTURED/GGN), high where glibc hands freed memory back to"
                    + " the system between calls%n",
                environment("MALLOC_ARENA_MAX"),
                environment("MALLOC_MMAP_THRESHOLD_"),
                environment("MALLOC_TRIM_THRESHOLD_"));
        System.out.printf(
                "%-22s %9s %10s %12s %8s %12s %8s %14s %12s  %s%n",
                "network",
                "params",
                "gradient s",
                "STRUCTURED s",
                "ratio",
                "GGN s",
                "ratio",
                "AUTOGRAD s*",
                "AUTOGRAD/STR",
                "faults");
        Shape vectors = new Shape(BATCH, 784);
        measure("MLP 784-512-512-10 ReLU", mlp(Activation::reluBlock, 2), vectors);
        measure("MLP 784-512-512-10 tanh", mlp(Activation::tanhBlock, 2), vectors);
        measure("CNN 1x28x28 16c-32c", cnn(), new Shape(BATCH, 1, 28, 28));
        measure("residual MLP 784-256x2", residual(), vectors);
        System.out.println(
                "* AUTOGRAD extrapolated: one timed call (after one untimed) of Method.AUTOGRAD"
                        + " on the first layer's bias, every element a full double backward,"
                        + " seconds per element times the number of parameters; n/a without"
                        + " double backward");
        memory();
        smooth();
    }

    private static void smooth() {
        System.out.println();
        System.out.printf(
                "Smooth convolutional networks, STRUCTURED (curvature columns local to their"
                    + " receptive fields): median of %d runs after %d warm-up runs, ratio to one"
                    + " gradient in the same run; peak: factor columns held at once (MemoryMeter)"
                    + " under the default budget of %d bytes%n",
                SMOOTH_RUNS, SMOOTH_WARMUP, DEFAULT_BUDGET);
        System.out.printf(
                "%-28s %6s %9s %10s %12s %8s %10s %8s %12s %7s%n",
                "network",
                "batch",
                "params",
                "gradient s",
                "STRUCTURED s",
                "ratio",
                "GGN s",
                "ratio",
                "peak bytes",
                "within");
        Shape images = new Shape(BATCH, 1, 28, 28);
        smooth("CNN 1x28x28 16c-32c tanh", cnn(Activation::tanhBlock), images);
        smooth("LeNet (DJL model zoo)", LeNet.builder().build(), new Shape(32, 1, 28, 28));
        smooth("CNN 1x28x28 16c-32c GELU", cnn(Activation::geluBlock), images);
    }

    private static void smooth(String name, Block block, Shape shape) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Setup setup = new Setup(manager, block, shape);
            Timing timing =
                    time(
                            SMOOTH_WARMUP,
                            0,
                            SMOOTH_RUNS,
                            setup::gradient,
                            () -> setup.structured(false, DEFAULT_BUDGET),
                            () -> setup.structured(true, DEFAULT_BUDGET));
            MemoryMeter meter = new MemoryMeter(DEFAULT_BUDGET);
            setup.structured(false, meter);
            System.out.printf(
                    "%-28s %6d %9d %10.4f %12.4f %8.2f %10.4f %8.2f %12d %7s%n",
                    name,
                    shape.get(0),
                    setup.parameterCount(),
                    timing.seconds[0],
                    timing.seconds[1],
                    timing.seconds[1] / timing.seconds[0],
                    timing.seconds[2],
                    timing.seconds[2] / timing.seconds[0],
                    meter.getPeakBytes(),
                    meter.getPeakBytes() <= DEFAULT_BUDGET ? "yes" : "NO");
        }
    }

    private static void measure(String name, Block block, Shape shape) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Setup setup = new Setup(manager, block, shape);
            Timing timing =
                    time(
                            setup::gradient,
                            () -> setup.structured(false, DEFAULT_BUDGET),
                            () -> setup.structured(true, DEFAULT_BUDGET));
            double gradient = timing.seconds[0];
            double structured = timing.seconds[1];
            double ggn = timing.seconds[2];
            String autogradText = "n/a";
            String speedUp = "n/a";
            if (setup.hasDoubleBackward()) {
                double extrapolated = setup.autogradPerElement() * setup.parameterCount();
                autogradText = String.format("%.0f", extrapolated);
                speedUp = String.format("%.0f", extrapolated / structured);
            }
            System.out.printf(
                    "%-22s %9d %10.4f %12.4f %8.2f %12.4f %8.2f %14s %12s  %d/%d/%d%n",
                    name,
                    setup.parameterCount(),
                    gradient,
                    structured,
                    structured / gradient,
                    ggn,
                    ggn / gradient,
                    autogradText,
                    speedUp,
                    timing.faults[0],
                    timing.faults[1],
                    timing.faults[2]);
        }
    }

    private static void memory() {
        System.out.println();
        System.out.println(
                "Peak memory of the factor columns held at once (MemoryMeter) under the budget,"
                        + " STRUCTURED, tanh MLPs:");
        System.out.printf(
                "%-26s %14s %14s %10s %12s%n",
                "network", "budget bytes", "peak bytes", "within", "seconds");
        long[] budgets = {DEFAULT_BUDGET, 16L << 20, 4L << 20};
        Shape vectors = new Shape(BATCH, 784);
        memory("MLP 784-512-512-10 tanh", mlp(Activation::tanhBlock, 2), vectors, budgets);
        memory("MLP 784-512x3-10 tanh", mlp(Activation::tanhBlock, 3), vectors, budgets);
    }

    private static void memory(String name, Block model, Shape shape, long[] budgets) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Setup setup = new Setup(manager, model, shape);
            for (long budget : budgets) {
                MemoryMeter meter = new MemoryMeter(budget);
                double seconds = time(() -> setup.structured(false, meter)).seconds[0];
                System.out.printf(
                        "%-26s %14d %14d %10s %12.4f%n",
                        name,
                        budget,
                        meter.getPeakBytes(),
                        meter.getPeakBytes() <= budget ? "yes" : "NO",
                        seconds);
            }
        }
    }

    static String loadAverage() {
        try {
            String line = Files.readString(Paths.get("/proc/loadavg")).trim();
            return line.substring(0, line.indexOf(' '));
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
    }

    static String environment(String name) {
        String value = System.getenv(name);
        return value == null ? "unset" : value;
    }

    /**
     * Times tasks in turn, so that a slow phase of the machine falls on all of them alike.
     *
     * @param tasks the tasks
     * @return the median seconds and the mean page faults of each task
     */
    static Timing time(Runnable... tasks) {
        return time(WARMUP, WARMUP_NANOS, RUNS, tasks);
    }

    /**
     * Times tasks in turn after warm-up runs, so that a slow phase of the machine falls on all of
     * them alike.
     *
     * @param warmUp the least number of warm-up runs of every task
     * @param warmUpNanos the least time of the warm-up runs
     * @param runs the number of timed runs of every task
     * @param tasks the tasks
     * @return the median seconds and the mean page faults of each task
     */
    static Timing time(int warmUp, long warmUpNanos, int runs, Runnable... tasks) {
        long warmUpStart = System.nanoTime();
        for (int i = 0; i < warmUp || System.nanoTime() - warmUpStart < warmUpNanos; i++) {
            for (Runnable task : tasks) {
                task.run();
            }
        }
        double[][] seconds = new double[tasks.length][runs];
        long[] faults = new long[tasks.length];
        for (int i = 0; i < runs; i++) {
            for (int t = 0; t < tasks.length; t++) {
                long faultsBefore = pageFaults();
                long start = System.nanoTime();
                tasks[t].run();
                seconds[t][i] = (System.nanoTime() - start) / 1e9;
                faults[t] += pageFaults() - faultsBefore;
            }
        }
        Timing timing = new Timing(tasks.length);
        for (int t = 0; t < tasks.length; t++) {
            Arrays.sort(seconds[t]);
            timing.seconds[t] = seconds[t][runs / 2];
            timing.faults[t] = faults[t] / runs;
        }
        return timing;
    }

    /**
     * Returns the minor page faults of this process so far, or 0 where {@code /proc} has none.
     *
     * @return the count
     */
    static long pageFaults() {
        try {
            String stat = Files.readString(Paths.get("/proc/self/stat"));
            // the fields after the command name, which is in parentheses and may hold spaces
            String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return Long.parseLong(fields[7]);
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }

    static Block mlp(Supplier<Block> activation, int hidden) {
        SequentialBlock model = new SequentialBlock();
        for (int i = 0; i < hidden; i++) {
            model.add(Linear.builder().setUnits(512).build()).add(activation.get());
        }
        return model.add(Linear.builder().setUnits(CLASSES).build());
    }

    static Block cnn() {
        return cnn(Activation::reluBlock);
    }

    static Block cnn(Supplier<Block> activation) {
        return new SequentialBlock()
                .add(conv(16))
                .add(activation.get())
                .add(Pool.maxPool2dBlock(new Shape(2, 2)))
                .add(conv(32))
                .add(activation.get())
                .add(Pool.maxPool2dBlock(new Shape(2, 2)))
                .add(Blocks.batchFlattenBlock())
                .add(Linear.builder().setUnits(CLASSES).build());
    }

    private static Block conv(int filters) {
        return Conv2d.builder()
                .setKernelShape(new Shape(3, 3))
                .setFilters(filters)
                .optPadding(new Shape(1, 1))
                .build();
    }

    private static Block residual() {
        SequentialBlock model = new SequentialBlock().add(Linear.builder().setUnits(256).build());
        for (int i = 0; i < 2; i++) {
            Block branch =
                    new SequentialBlock()
                            .add(Activation.reluBlock())
                            .add(Linear.builder().setUnits(256).build())
                            .add(Activation.reluBlock())
                            .add(Linear.builder().setUnits(256).build());
            model.add(
                    new ParallelBlock(
                            list ->
                                    new NDList(
                                            list.get(0)
                                                    .singletonOrThrow()
                                                    .add(list.get(1).singletonOrThrow())),
                            List.of(branch, Blocks.identityBlock())));
        }
        return model.add(Activation.reluBlock()).add(Linear.builder().setUnits(CLASSES).build());
    }

    /** The median seconds and the mean minor page faults of timed tasks. */
    static final class Timing {

        final double[] seconds;
        final long[] faults;

        Timing(int tasks) {
            seconds = new double[tasks];
            faults = new long[tasks];
        }
    }

    /** A model, its data (the batch is the shape's first axis) and the measured operations. */
    static final class Setup {

        final NDManager manager;
        final Block model;
        final NDArray input;
        final NDArray labels;
        final Loss loss = Loss.softmaxCrossEntropyLoss();

        Setup(NDManager manager, Block model, Shape shape) {
            this.manager = manager;
            this.model = model;
            model.initialize(manager, DataType.FLOAT32, shape);
            input = manager.randomNormal(shape);
            labels = manager.randomInteger(0, CLASSES, new Shape(shape.get(0)), DataType.INT32);
        }

        Block model() {
            return model;
        }

        Loss loss() {
            return loss;
        }

        long parameterCount() {
            long count = 0;
            for (Pair<String, Parameter> entry : model.getParameters()) {
                count += entry.getValue().getArray().size();
            }
            return count;
        }

        boolean hasDoubleBackward() {
            return "PyTorch".equals(manager.getEngine().getEngineName());
        }

        void gradient() {
            try (NDManager scope = manager.newSubManager()) {
                scope.tempAttachAll(input, labels);
                try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                    collector.backward(lossValue(scope, true));
                }
            }
        }

        void structured(boolean ggn, long budget) {
            structured(ggn, new MemoryMeter(budget));
        }

        void structured(boolean ggn, MemoryMeter meter) {
            try (NDManager results = manager.newSubManager()) {
                StructuredDiagonal.compute(
                        model,
                        loss,
                        new NDList(input),
                        new NDList(labels),
                        ggn,
                        false,
                        false,
                        meter,
                        results);
            }
        }

        /**
         * Computes the diagonal through the public API with a given configuration, and closes it.
         *
         * @param diagonal the configuration
         */
        void compute(HessianDiagonal diagonal) {
            diagonal.compute(model, loss, new NDList(input), new NDList(labels)).close();
        }

        /**
         * Times one call (after one untimed) of {@code AUTOGRAD} on the first parameter whose name
         * ends in {@code bias} (the first parameter if none does).
         *
         * @return seconds per element
         */
        double autogradPerElement() {
            return autogradPerElement(true);
        }

        /**
         * Times one call of {@code AUTOGRAD} on the first parameter whose name ends in {@code bias}
         * (the first parameter if none does).
         *
         * @param warmUp whether an untimed call comes first
         * @return seconds per element
         */
        double autogradPerElement(boolean warmUp) {
            NDArray bias = model.getParameters().valueAt(0).getArray();
            for (Pair<String, Parameter> entry : model.getParameters()) {
                if (entry.getKey().endsWith("bias")) {
                    bias = entry.getValue().getArray();
                    break;
                }
            }
            Supplier<NDArray> function = () -> lossValue(input.getManager(), false);
            HessianDiagonal autograd =
                    HessianDiagonal.builder().optMethod(HessianDiagonal.Method.AUTOGRAD).build();
            if (warmUp) {
                autograd.compute(function, new NDList(bias)).close();
            }
            long start = System.nanoTime();
            autograd.compute(function, new NDList(bias)).close();
            return (System.nanoTime() - start) / 1e9 / bias.size();
        }

        private NDArray lossValue(NDManager scope, boolean training) {
            NDList predictions =
                    model.forward(new ParameterStore(scope, false), new NDList(input), training);
            return loss.evaluate(new NDList(labels), predictions);
        }
    }
}
