package org.secorder.examples;

import ai.djl.basicmodelzoo.basic.Mlp;
import ai.djl.basicmodelzoo.cv.classification.AlexNet;
import ai.djl.basicmodelzoo.cv.classification.GoogLeNet;
import ai.djl.basicmodelzoo.cv.classification.LeNet;
import ai.djl.basicmodelzoo.cv.classification.MobileNetV1;
import ai.djl.basicmodelzoo.cv.classification.MobileNetV2;
import ai.djl.basicmodelzoo.cv.classification.NiN;
import ai.djl.basicmodelzoo.cv.classification.ResNetV1;
import ai.djl.basicmodelzoo.cv.classification.SqueezeNet;
import ai.djl.basicmodelzoo.cv.classification.VGG;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Blocks;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.LayerNorm;
import ai.djl.nn.recurrent.LSTM;
import ai.djl.nn.transformer.TransformerEncoderBlock;
import ai.djl.training.loss.Loss;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;
import org.secorder.core.Curvature;
import org.secorder.core.HessianDiagonal;

/**
 * Times the structured Hessian diagonal ({@code STRUCTURED}) and the generalized Gauss-Newton
 * diagonal ({@code GGN}) of networks from DJL's model zoo against one plain gradient of the same
 * network in the same run, and double backward ({@code AUTOGRAD}), extrapolated from one call on a
 * bias.
 *
 * <p>Batch 32, softmax cross-entropy over 10 classes, float32, the zoo's default initialization.
 * The goal for {@code GGN} is 1.2 (C - 1) = 10.8 gradients: the loss factor has C - 1 columns.
 * Arguments select networks by key ({@code all} for every one); without them the default set runs;
 * {@code --resolve-only} prints what {@code AUTO} resolves to for each selected network and times
 * nothing. A network whose {@code AUTO} does not resolve to {@code STRUCTURED} is skipped with a
 * note naming its unsupported blocks. Timing, warm-up and page faults are {@link
 * StructuredBenchmark}'s; slow networks get fewer timed runs, and a call slower than 30 s in the
 * first, untimed round is timed that once, so that the whole run takes minutes.
 */
public final class ZooBenchmark {

    private static final int BATCH = 32;
    private static final int CLASSES = 10;
    private static final double GOAL = 1.2 * (CLASSES - 1);
    private static final Shape VECTORS = new Shape(BATCH, 784);
    private static final Shape MNIST = new Shape(BATCH, 1, 28, 28);
    private static final Shape CIFAR = new Shape(BATCH, 3, 32, 32);
    // the smallest square image that NiN's and AlexNet's strides and poolings leave 1x1
    private static final Shape SMALL_IMAGENET = new Shape(BATCH, 3, 67, 67);
    private static final Shape SEQUENCES = new Shape(BATCH, 8, 16);
    private static final double TIMED_SECONDS = 20;
    private static final int MIN_RUNS = 3;
    private static final int MAX_RUNS = 21;
    private static final int WARMUP = 5;
    private static final long WARMUP_NANOS = 5_000_000_000L;
    private static final double FAST_ROUND_SECONDS = 1;
    private static final double SLOW_TASK_SECONDS = 30;
    private static final String RESOLVE_ONLY = "--resolve-only";

    private ZooBenchmark() {}

    /**
     * Runs the benchmark and prints the table.
     *
     * @param args keys of the networks to run ({@code all} for every one; none for the default
     *     set), and {@code --resolve-only} to print only what {@code AUTO} resolves to
     */
    public static void main(String[] args) {
        Map<String, Network> networks = networks();
        List<Network> selected = new ArrayList<>();
        boolean resolveOnly = false;
        for (String arg : args) {
            String key = arg.toLowerCase(Locale.ROOT);
            if (RESOLVE_ONLY.equals(key)) {
                resolveOnly = true;
            } else if ("all".equals(key)) {
                selected.addAll(networks.values());
            } else if (networks.containsKey(key)) {
                selected.add(networks.get(key));
            } else {
                throw new IllegalArgumentException(
                        "unknown argument "
                                + arg
                                + ": expected "
                                + RESOLVE_ONLY
                                + ", all or one of "
                                + networks.keySet());
            }
        }
        if (selected.isEmpty()) {
            for (Network network : networks.values()) {
                if (network.byDefault) {
                    selected.add(network);
                }
            }
        }
        Engine engine = Engine.getInstance();
        engine.setRandomSeed(1234);
        if (resolveOnly) {
            for (Network network : selected) {
                resolve(network);
            }
            return;
        }
        System.out.printf(
                "DJL model zoo benchmark on %s %s, %d CPU cores; batch %d, softmax cross-entropy"
                        + " over %d classes, float32; load average at start: %s%n",
                engine.getEngineName(),
                engine.getVersion(),
                Runtime.getRuntime().availableProcessors(),
                BATCH,
                CLASSES,
                StructuredBenchmark.loadAverage());
        System.out.printf(
                "times: median of the timed runs after warm-up (the first, untimed round, then at"
                        + " least %d runs and %d s where that round took under %.0f s), gradient,"
                        + " STRUCTURED and GGN taking turns; ratio: to one gradient (forward +"
                        + " backward in a GradientCollector) of the same network in the same run;"
                        + " goal: GGN within 1.2 (C - 1) = %.1f gradients%n",
                WARMUP, WARMUP_NANOS / 1_000_000_000L, FAST_ROUND_SECONDS, GOAL);
        System.out.printf(
                "%-24s %10s %10s %12s %7s %10s %7s %5s %12s %12s %10s  %s%n",
                "network",
                "params",
                "gradient s",
                "STRUCTURED s",
                "ratio",
                "GGN s",
                "ratio",
                "goal",
                "AUTOGRAD s*",
                "AUTOGRAD/STR",
                "runs g/S/G",
                "faults");
        for (Network network : selected) {
            measure(network);
        }
        System.out.printf(
                "* AUTOGRAD extrapolated: one timed call (after one untimed where the gradient"
                    + " takes under 0.1 s) of Method.AUTOGRAD on the first bias, every element a"
                    + " full double backward, seconds per element times the number of parameters;"
                    + " n/a without double backward. Runs 1 and faults -1: a call slower than %.0f"
                    + " s in the first round, timed once%n",
                SLOW_TASK_SECONDS);
    }

    private static void resolve(Network network) {
        try (NDManager manager = NDManager.newBaseManager()) {
            StructuredBenchmark.Setup setup =
                    new StructuredBenchmark.Setup(manager, network.model.get(), network.shape);
            HessianDiagonal auto = HessianDiagonal.builder().build();
            System.out.printf(
                    "%-24s %10d parameters; AUTO resolves to %s; unsupported: %s%n",
                    network.name,
                    setup.parameterCount(),
                    auto.resolve(setup.model(), setup.loss()),
                    auto.unsupportedBlocks(setup.model(), setup.loss()));
        } catch (RuntimeException e) {
            System.out.printf("%-24s failed: %s%n", network.name, e);
        }
    }

    private static void measure(Network network) {
        try (NDManager manager = NDManager.newBaseManager()) {
            StructuredBenchmark.Setup setup =
                    new StructuredBenchmark.Setup(manager, network.model.get(), network.shape);
            Block model = setup.model();
            Loss loss = setup.loss();
            HessianDiagonal auto = HessianDiagonal.builder().build();
            if (auto.resolve(model, loss) != HessianDiagonal.Method.STRUCTURED) {
                System.out.printf(
                        "%-24s skipped: AUTO resolves to %s; unsupported: %s%n",
                        network.name,
                        auto.resolve(model, loss),
                        auto.unsupportedBlocks(model, loss));
                return;
            }
            HessianDiagonal structured =
                    HessianDiagonal.builder().optMethod(HessianDiagonal.Method.STRUCTURED).build();
            HessianDiagonal ggn =
                    HessianDiagonal.builder()
                            .optMethod(HessianDiagonal.Method.STRUCTURED)
                            .optCurvature(Curvature.GGN)
                            .build();
            Runnable[] tasks = {
                setup::gradient, () -> setup.compute(structured), () -> setup.compute(ggn)
            };
            Measured measured = time(tasks);
            double[] seconds = measured.seconds;
            long[] faults = measured.faults;
            String[] runCounts = measured.runs;
            double gradient = seconds[0];
            String autogradText = "n/a";
            String speedUp = "n/a";
            if (setup.hasDoubleBackward()) {
                // slow networks: one call, a double backward per element, without the warm-up
                double extrapolated =
                        setup.autogradPerElement(gradient < FAST_ROUND_SECONDS / 10)
                                * setup.parameterCount();
                autogradText = String.format("%.0f", extrapolated);
                speedUp = String.format("%.0f", extrapolated / seconds[1]);
            }
            System.out.printf(
                    "%-24s %10d %10.4f %12.4f %7.2f %10.4f %7.2f %5s %12s %12s %10s  %d/%d/%d%n",
                    network.name,
                    setup.parameterCount(),
                    gradient,
                    seconds[1],
                    seconds[1] / gradient,
                    seconds[2],
                    seconds[2] / gradient,
                    seconds[2] / gradient <= GOAL ? "yes" : "NO",
                    autogradText,
                    speedUp,
                    String.join("/", runCounts),
                    faults[0],
                    faults[1],
                    faults[2]);
        } catch (RuntimeException e) {
            System.out.printf("%-24s failed: %s%n", network.name, e);
        }
    }

    /**
     * Times the tasks in turn with {@link StructuredBenchmark#time(int, long, int, Runnable...)}
     * after a first round that warms up and sizes the timed runs; a call slower than {@code
     * SLOW_TASK_SECONDS} in that round (but the first task's) keeps that one time.
     */
    private static Measured time(Runnable... tasks) {
        double[] first = new double[tasks.length];
        boolean[] repeated = new boolean[tasks.length];
        List<Runnable> timedTasks = new ArrayList<>();
        double round = 0;
        for (int t = 0; t < tasks.length; t++) {
            long start = System.nanoTime();
            tasks[t].run();
            first[t] = (System.nanoTime() - start) / 1e9;
            repeated[t] = t == 0 || first[t] <= SLOW_TASK_SECONDS;
            if (repeated[t]) {
                timedTasks.add(tasks[t]);
                round += first[t];
            }
        }
        boolean fast = round < FAST_ROUND_SECONDS;
        int runs = (int) Math.max(MIN_RUNS, Math.min(MAX_RUNS, Math.round(TIMED_SECONDS / round)));
        StructuredBenchmark.Timing timing =
                StructuredBenchmark.time(
                        fast ? WARMUP : 0,
                        fast ? WARMUP_NANOS : 0,
                        runs,
                        timedTasks.toArray(new Runnable[0]));
        Measured measured = new Measured(tasks.length);
        int next = 0;
        for (int t = 0; t < tasks.length; t++) {
            if (repeated[t]) {
                measured.seconds[t] = timing.seconds[next];
                measured.faults[t] = timing.faults[next];
                measured.runs[t] = String.valueOf(runs);
                next++;
            } else {
                measured.seconds[t] = first[t];
                measured.faults[t] = -1;
                measured.runs[t] = "1";
            }
        }
        return measured;
    }

    private static Map<String, Network> networks() {
        Map<String, Network> networks = new LinkedHashMap<>();
        add(networks, "mlp-relu", "Mlp 784-128-64-10 ReLU", true, VECTORS, () -> mlp(false));
        add(networks, "mlp-tanh", "Mlp 784-128-64-10 tanh", true, VECTORS, () -> mlp(true));
        add(
                networks,
                "layernorm",
                "LayerNorm MLP 784-128-10",
                true,
                VECTORS,
                ZooBenchmark::layerNorm);
        add(
                networks,
                "lenet",
                "LeNet 1x28x28",
                true,
                MNIST,
                () -> LeNet.builder().setOutSize(CLASSES).build());
        add(networks, "resnet18", "ResNetV1-18 3x32x32", true, CIFAR, () -> resNet(18));
        add(networks, "resnet50", "ResNetV1-50 3x32x32", false, CIFAR, () -> resNet(50));
        add(
                networks,
                "mobilenetv1",
                "MobileNetV1 3x32x32",
                true,
                CIFAR,
                () -> MobileNetV1.builder().setOutSize(CLASSES).build());
        add(
                networks,
                "mobilenetv2",
                "MobileNetV2 3x32x32",
                true,
                CIFAR,
                () -> MobileNetV2.builder().setOutSize(CLASSES).build());
        add(
                networks,
                "squeezenet",
                "SqueezeNet 3x32x32",
                true,
                CIFAR,
                () -> SqueezeNet.squeezenet(CLASSES));
        add(
                networks,
                "googlenet",
                "GoogLeNet 3x32x32",
                true,
                CIFAR,
                () -> GoogLeNet.builder().setOutSize(CLASSES).build());
        add(networks, "nin", "NiN 3x67x67", true, SMALL_IMAGENET, () -> NiN.builder().build());
        add(
                networks,
                "vgg11",
                "VGG-11 3x32x32",
                false,
                CIFAR,
                () -> VGG.builder().setOutSize(CLASSES).build());
        add(
                networks,
                "alexnet",
                "AlexNet 3x67x67",
                false,
                SMALL_IMAGENET,
                () -> AlexNet.builder().setOutSize(CLASSES).build());
        add(
                networks,
                "lstm",
                "LSTM 8x16, state 32",
                false,
                SEQUENCES,
                ZooBenchmark::lstmClassifier);
        add(
                networks,
                "transformer",
                "Transformer 8x16, 4 heads",
                false,
                SEQUENCES,
                ZooBenchmark::transformerClassifier);
        return networks;
    }

    /** An LSTM over 8 steps of 16 features, state 32, its last step, {@code Linear(10)}. */
    private static Block lstmClassifier() {
        return new SequentialBlock()
                .add(LSTM.builder().setStateSize(32).setNumLayers(1).optBatchFirst(true).build())
                .add(new LambdaBlock(list -> new NDList(list.head().get(":, -1, :")), "last"))
                .add(Linear.builder().setUnits(CLASSES).build());
    }

    /**
     * DJL's {@code TransformerEncoderBlock} (embedding 16, 4 heads, feed-forward 32, GELU) over 8
     * steps, flattened, {@code Linear(10)}.
     */
    private static Block transformerClassifier() {
        return new SequentialBlock()
                .add(new TransformerEncoderBlock(16, 4, 32, 0f, Activation::gelu))
                .add(Blocks.batchFlattenBlock())
                .add(Linear.builder().setUnits(CLASSES).build());
    }

    private static void add(
            Map<String, Network> networks,
            String key,
            String name,
            boolean byDefault,
            Shape shape,
            Supplier<Block> model) {
        networks.put(key, new Network(name, byDefault, shape, model));
    }

    private static Block mlp(boolean tanh) {
        int[] hidden = {128, 64};
        return tanh
                ? new Mlp(784, CLASSES, hidden, Activation::tanh)
                : new Mlp(784, CLASSES, hidden);
    }

    /** {@code Linear(128) - LayerNorm - tanh - Linear(10)}: the LayerNorm network. */
    private static Block layerNorm() {
        return new SequentialBlock()
                .add(Linear.builder().setUnits(128).build())
                .add(LayerNorm.builder().build())
                .add(Activation.tanhBlock())
                .add(Linear.builder().setUnits(CLASSES).build());
    }

    private static Block resNet(int layers) {
        return ResNetV1.builder()
                .setNumLayers(layers)
                .setImageShape(new Shape(3, 32, 32))
                .setOutSize(CLASSES)
                .build();
    }

    /** The seconds, page faults and number of timed runs of each task. */
    private static final class Measured {

        private final double[] seconds;
        private final long[] faults;
        private final String[] runs;

        Measured(int tasks) {
            seconds = new double[tasks];
            faults = new long[tasks];
            runs = new String[tasks];
        }
    }

    /** A network of the benchmark: its name, whether it runs by default, input shape and model. */
    private static final class Network {

        private final String name;
        private final boolean byDefault;
        private final Shape shape;
        private final Supplier<Block> model;

        Network(String name, boolean byDefault, Shape shape, Supplier<Block> model) {
            this.name = name;
            this.byDefault = byDefault;
            this.shape = shape;
            this.model = model;
        }
    }
}
