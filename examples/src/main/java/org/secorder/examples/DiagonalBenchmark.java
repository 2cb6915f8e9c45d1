package org.secorder.examples;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import ai.djl.util.Pair;
import java.util.Arrays;
import java.util.function.Supplier;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianDiagonal.Method;

/**
 * Times the exact Hessian diagonal by double backward ({@link HessianDiagonal.Method#AUTOGRAD}) of
 * tanh MLPs under softmax cross-entropy, batch 64, float32, against one plain gradient evaluation
 * of the same loss, and shows what the default {@link HessianDiagonal.Method#AUTO} costs on the
 * same networks.
 *
 * <p>Each diagonal is timed once to warm up and then three times, reporting the median; the
 * gradient (forward and backward in a DJL {@link GradientCollector}) is the median of many runs.
 * {@code examples/python/torch_reference.py} prints the same first columns for PyTorch's own loop.
 */
public final class DiagonalBenchmark {

    private static final int SEED = 1234;
    private static final int BATCH = 64;
    private static final int[][] SIZES = {{20, 32, 3}, {64, 64, 10}, {100, 64, 64, 10}};
    private static final int DIAGONAL_RUNS = 3;
    private static final int GRADIENT_WARMUP = 20;
    private static final int GRADIENT_RUNS = 200;

    private DiagonalBenchmark() {}

    /**
     * Runs the benchmark.
     *
     * @param args not used
     */
    public static void main(String[] args) {
        Engine engine = Engine.getInstance();
        engine.setRandomSeed(SEED);
        System.out.printf(
                "Hessian diagonal benchmark on %s %s, intra-op threads %s%n",
                engine.getEngineName(), engine.getVersion(), intraOpThreads(engine));
        System.out.printf(
                "tanh MLPs, softmax cross-entropy, batch %d, float32; AUTOGRAD = double backward,"
                        + " AUTO = default%n",
                BATCH);
        System.out.printf(
                "diagonals: median of %d after a warm-up; gradient (forward + backward in a"
                        + " GradientCollector): median of %d%n",
                DIAGONAL_RUNS, GRADIENT_RUNS);
        System.out.printf(
                "%-14s %10s %12s %10s %12s %10s %10s%n",
                "network", "parameters", "AUTOGRAD s", "us/param", "gradient s", "ratio", "AUTO s");
        for (int[] sizes : SIZES) {
            try {
                measure(sizes);
            } catch (UnsupportedOperationException e) {
                System.out.println("The exact diagonal is not available: " + e.getMessage());
                return;
            }
        }
    }

    private static void measure(int[] sizes) {
        try (NDManager manager = NDManager.newBaseManager()) {
            SequentialBlock model = HessianDiagonalExample.mlp(sizes);
            Shape inputShape = new Shape(BATCH, sizes[0]);
            model.initialize(manager, DataType.FLOAT32, inputShape);
            NDList inputs = new NDList(manager.randomNormal(inputShape));
            int classes = sizes[sizes.length - 1];
            NDList labels =
                    new NDList(manager.randomInteger(0, classes, new Shape(BATCH), DataType.INT32));
            Loss loss = Loss.softmaxCrossEntropyLoss();
            long parameters = 0;
            for (Pair<String, Parameter> parameter : model.getParameters()) {
                parameters += parameter.getValue().getArray().size();
            }
            HessianDiagonal autograd = HessianDiagonal.builder().optMethod(Method.AUTOGRAD).build();
            double autogradSeconds =
                    diagonalSeconds(() -> autograd.compute(model, loss, inputs, labels));
            double gradientSeconds = gradientSeconds(model, loss, inputs, labels, manager);
            double autoSeconds =
                    diagonalSeconds(
                            () ->
                                    HessianDiagonal.modelHessianDiagonal(
                                            model, loss, inputs, labels));
            System.out.printf(
                    "%-14s %10d %12.4f %10.1f %12.6f %10.0f %10.4f%n",
                    name(sizes),
                    parameters,
                    autogradSeconds,
                    autogradSeconds * 1e6 / parameters,
                    gradientSeconds,
                    autogradSeconds / gradientSeconds,
                    autoSeconds);
        }
    }

    /** The median time of a diagonal computation, after one warm-up run. */
    private static double diagonalSeconds(Supplier<NDList> computation) {
        double[] seconds = new double[DIAGONAL_RUNS];
        for (int i = -1; i < DIAGONAL_RUNS; i++) {
            long start = System.nanoTime();
            NDList diagonal = computation.get();
            long end = System.nanoTime();
            diagonal.close();
            if (i >= 0) {
                seconds[i] = (end - start) / 1e9;
            }
        }
        return median(seconds);
    }

    /** The median time of one forward and backward pass, with DJL's own gradient collector. */
    private static double gradientSeconds(
            SequentialBlock model, Loss loss, NDList inputs, NDList labels, NDManager manager) {
        double[] seconds = new double[GRADIENT_RUNS];
        for (int i = -GRADIENT_WARMUP; i < GRADIENT_RUNS; i++) {
            long start = System.nanoTime();
            try (NDManager scope = manager.newSubManager()) {
                // every intermediate array derives from the inputs and lands in the scope
                scope.tempAttachAll(inputs, labels);
                ParameterStore store = new ParameterStore(scope, false);
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    NDList predictions = model.forward(store, inputs, true);
                    collector.backward(loss.evaluate(labels, predictions));
                }
            }
            if (i >= 0) {
                seconds[i] = (System.nanoTime() - start) / 1e9;
            }
        }
        return median(seconds);
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int middle = sorted.length / 2;
        return sorted.length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    private static String name(int[] sizes) {
        StringBuilder name = new StringBuilder();
        for (int size : sizes) {
            if (name.length() > 0) {
                name.append('-');
            }
            name.append(size);
        }
        return name.toString();
    }

    /**
     * Returns libtorch's intra-op thread count; read reflectively so that this module also compiles
     * against the MXNet engine alone.
     */
    private static String intraOpThreads(Engine engine) {
        if (!"PyTorch".equals(engine.getEngineName())) {
            return "n/a";
        }
        try {
            Object threads =
                    Class.forName("ai.djl.pytorch.jni.JniUtils")
                            .getMethod("getNumThreads")
                            .invoke(null);
            return String.valueOf(threads);
        } catch (ReflectiveOperationException e) {
            return "unknown (" + e + ")";
        }
    }
}
