package org.secorder.examples;

import ai.djl.Device;
import ai.djl.basicmodelzoo.basic.Mlp;
import ai.djl.basicmodelzoo.cv.classification.LeNet;
import ai.djl.basicmodelzoo.cv.classification.ResNetV1;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Blocks;
import ai.djl.nn.Parameter;
import ai.djl.nn.ParameterList;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.core.Linear;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import ai.djl.util.Pair;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.function.Supplier;
import org.secorder.core.Curvature;
import org.secorder.core.HessianDiagonal;

/**
 * Checks the Hessian diagonal on a CUDA device against the same computation on the CPU.
 *
 * <p>For a tanh {@link Mlp}, a small tanh CNN, {@link LeNet} and {@link ResNetV1}-18 (3x32x32,
 * batch 4), all in float64, it builds the model twice from the same seeded parameter values, once
 * on the device and once on the CPU (the copy is checked bit for bit), and computes {@code
 * STRUCTURED}, {@code STRUCTURED} with {@link Curvature#GGN} and, on the two small models, {@code
 * AUTOGRAD} on both. Each line gives the largest difference between the two results relative to the
 * largest value of the CPU's diagonal of the same parameter, the wall time of one call on each
 * (after one untimed call; the time includes copying the result to the host), whether every result
 * lies on the device in float64 and whether the call left the parameters unchanged bit for bit. A
 * case that throws prints its stack trace and counts as failed; the last line is {@code CUDA CHECK:
 * n passed, m failed}, and the exit status is 1 when any failed.
 *
 * <p>Arguments: a device name ({@code gpu}, {@code gpu0}, {@code cpu}; by default the first GPU
 * where the engine sees one, else the CPU, which compares the CPU with itself); {@code --probe} to
 * run only one backward pass on the device and print {@value #ENGINE_OK}; {@code
 * --models=mlp,cnn,lenet,resnet18} to select cases.
 */
public final class CudaCheck {

    /** What {@code --probe} prints once the engine ran a backward pass on the device. */
    public static final String ENGINE_OK = "ENGINE OK";

    private static final double TOLERANCE = 1e-9;
    private static final long SEED = 4242;
    private static final String PROBE = "--probe";
    private static final String MODELS = "--models=";

    private CudaCheck() {}

    /**
     * Runs the check.
     *
     * @param args a device name, {@code --probe}, {@code --models=...} (see the class comment)
     */
    public static void main(String[] args) {
        Engine engine = Engine.getInstance();
        Device device = null;
        boolean probe = false;
        List<String> models = new ArrayList<>();
        for (String arg : args) {
            if (PROBE.equals(arg)) {
                probe = true;
            } else if (arg.startsWith(MODELS)) {
                models.addAll(Arrays.asList(arg.substring(MODELS.length()).split(",")));
            } else {
                device = Device.fromName(arg);
            }
        }
        if (device == null) {
            device = engine.getGpuCount() > 0 ? Device.gpu() : Device.cpu();
        }
        System.out.printf(
                "CudaCheck: %s %s, DJL %s, Java %s; GPUs seen by DJL: %d, default device %s;"
                        + " checking %s against %s%n",
                engine.getEngineName(),
                engine.getVersion(),
                Engine.getDjlVersion(),
                System.getProperty("java.version"),
                engine.getGpuCount(),
                engine.defaultDevice(),
                device,
                Device.cpu());
        if (probe) {
            probe(device);
            return;
        }
        int[] tally = new int[2];
        for (Case check : cases()) {
            if (models.isEmpty() || models.contains(check.name())) {
                run(check, device, tally);
            }
        }
        System.out.printf("CUDA CHECK: %d passed, %d failed%n", tally[0], tally[1]);
        if (tally[1] > 0) {
            System.exit(1);
        }
    }

    /**
     * One model.
     *
     * @param name its key for {@code --models}
     * @param block builds a new, uninitialized instance
     * @param input the input shape, batch first
     * @param classes the number of classes of the softmax cross-entropy loss
     * @param autograd whether {@code AUTOGRAD} (one Hessian-vector product per parameter) runs too
     */
    record Case(String name, Supplier<Block> block, Shape input, int classes, boolean autograd) {}

    /**
     * One side of the comparison.
     *
     * @param model the initialized model
     * @param inputs its inputs
     * @param labels its labels
     * @param device the device of all of them
     */
    record Side(Block model, NDList inputs, NDList labels, Device device) {}

    /**
     * One timed call's result on one side.
     *
     * @param values the diagonal, one array per parameter
     * @param seconds the wall time of the call, copying the result to the host included
     * @param onDevice whether every result array lies on the side's device in float64
     * @param unchanged whether the parameters are bit for bit what they were before both calls
     */
    record Timed(double[][] values, double seconds, boolean onDevice, boolean unchanged) {}

    static List<Case> cases() {
        List<Case> cases = new ArrayList<>();
        cases.add(
                new Case(
                        "mlp",
                        () -> new Mlp(16, 4, new int[] {12}, Activation::tanh),
                        new Shape(4, 16),
                        4,
                        true));
        cases.add(new Case("cnn", CudaCheck::cnn, new Shape(4, 1, 8, 8), 3, true));
        cases.add(
                new Case(
                        "lenet",
                        () -> LeNet.builder().setOutSize(10).build(),
                        new Shape(4, 1, 28, 28),
                        10,
                        false));
        cases.add(
                new Case(
                        "resnet18",
                        () ->
                                ResNetV1.builder()
                                        .setNumLayers(18)
                                        .setImageShape(new Shape(3, 32, 32))
                                        .setOutSize(10)
                                        .build(),
                        new Shape(4, 3, 32, 32),
                        10,
                        false));
        return cases;
    }

    /** Conv2d(4, 3x3) - tanh - 2x2 max pooling - flatten - Linear(3). */
    static Block cnn() {
        return new SequentialBlock()
                .add(Conv2d.builder().setKernelShape(new Shape(3, 3)).setFilters(4).build())
                .add(Activation.tanhBlock())
                .add(Pool.maxPool2dBlock(new Shape(2, 2)))
                .add(Blocks.batchFlattenBlock())
                .add(Linear.builder().setUnits(3).build());
    }

    /** Runs one backward pass on the device and prints {@link #ENGINE_OK}. */
    static void probe(Device device) {
        try (NDManager manager = NDManager.newBaseManager(device)) {
            NDArray x = manager.create(new double[] {1, 2, 3});
            x.setRequiresGradient(true);
            try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                collector.backward(x.mul(x).sum());
            }
            NDArray gradient = x.getGradient();
            System.out.printf(
                    "%s: gradient %s on %s%n",
                    ENGINE_OK, Arrays.toString(gradient.toDoubleArray()), gradient.getDevice());
        }
    }

    static void run(Case check, Device device, int[] tally) {
        System.out.printf("%n== %s, input %s, float64 ==%n", check.name(), check.input());
        try (NDManager cpu = NDManager.newBaseManager(Device.cpu());
                NDManager onDevice = NDManager.newBaseManager(device)) {
            Block reference = initialize(check.block().get(), cpu, check.input());
            long count = randomize(reference, cpu);
            Block model = initialize(check.block().get(), onDevice, check.input());
            copyParameters(reference, model, onDevice);
            Side expected = side(reference, cpu, check, Device.cpu());
            Side actual = side(model, onDevice, check, device);
            Loss loss = Loss.softmaxCrossEntropyLoss();
            double expectedLoss = lossValue(expected, loss);
            double actualLoss = lossValue(actual, loss);
            double lossDifference =
                    Math.abs(actualLoss - expectedLoss) / Math.max(Math.abs(expectedLoss), 1e-300);
            boolean lossOk = lossDifference <= TOLERANCE;
            System.out.printf(
                    "%d parameters (copied bit for bit); loss CPU %.17g, %s %.17g, relative"
                            + " difference %.2e: %s%n",
                    count,
                    expectedLoss,
                    device,
                    actualLoss,
                    lossDifference,
                    lossOk ? "PASS" : "FAIL");
            tally[lossOk ? 0 : 1]++;
            runMethods(check, loss, actual, expected, tally);
        } catch (RuntimeException | Error e) {
            System.out.printf("%s: setup FAILED%n", check.name());
            e.printStackTrace(System.out);
            tally[1]++;
        }
    }

    static void runMethods(Case check, Loss loss, Side actual, Side expected, int[] tally) {
        List<Pair<String, HessianDiagonal>> methods = new ArrayList<>();
        methods.add(
                new Pair<>(
                        "STRUCTURED",
                        HessianDiagonal.builder()
                                .optMethod(HessianDiagonal.Method.STRUCTURED)
                                .build()));
        methods.add(
                new Pair<>(
                        "STRUCTURED+GGN",
                        HessianDiagonal.builder()
                                .optMethod(HessianDiagonal.Method.STRUCTURED)
                                .optCurvature(Curvature.GGN)
                                .build()));
        if (check.autograd()) {
            methods.add(
                    new Pair<>(
                            "AUTOGRAD",
                            HessianDiagonal.builder()
                                    .optMethod(HessianDiagonal.Method.AUTOGRAD)
                                    .build()));
        }
        for (Pair<String, HessianDiagonal> method : methods) {
            try {
                boolean passed =
                        compare(method.getKey(), method.getValue(), loss, actual, expected);
                tally[passed ? 0 : 1]++;
            } catch (RuntimeException | Error e) {
                System.out.printf(
                        "%s %s FAILED with an exception%n", check.name(), method.getKey());
                e.printStackTrace(System.out);
                tally[1]++;
            }
        }
    }

    static boolean compare(
            String name, HessianDiagonal method, Loss loss, Side actual, Side expected) {
        Timed device = timed(method, loss, actual);
        Timed cpu = timed(method, loss, expected);
        double difference = relativeDifference(device.values(), cpu.values());
        double largest = 0;
        for (double[] values : cpu.values()) {
            for (double value : values) {
                largest = Math.max(largest, Math.abs(value));
            }
        }
        boolean passed =
                difference <= TOLERANCE
                        && device.onDevice()
                        && cpu.onDevice()
                        && device.unchanged()
                        && cpu.unchanged();
        System.out.printf(
                Locale.ROOT,
                "  %-15s relative difference %.2e (largest |H_ii| %.3e); %s %.4f s, CPU %.4f s"
                        + " per call; results on %s in float64: %s; parameters unchanged: %s;"
                        + " %s%n",
                name,
                difference,
                largest,
                actual.device(),
                device.seconds(),
                cpu.seconds(),
                actual.device(),
                device.onDevice(),
                device.unchanged() && cpu.unchanged(),
                passed ? "PASS" : "FAIL");
        return passed;
    }

    /** One untimed call, then one timed call that includes copying the result to the host. */
    static Timed timed(HessianDiagonal method, Loss loss, Side side) {
        double[][] before = parameterValues(side.model());
        method.compute(side.model(), loss, side.inputs(), side.labels()).close();
        long start = System.nanoTime();
        NDList result = method.compute(side.model(), loss, side.inputs(), side.labels());
        double[][] values = new double[result.size()][];
        for (int i = 0; i < values.length; i++) {
            values[i] = result.get(i).toType(DataType.FLOAT64, false).toDoubleArray();
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        boolean onDevice = result.size() == before.length;
        for (NDArray array : result) {
            onDevice &=
                    side.device().equals(array.getDevice())
                            && array.getDataType() == DataType.FLOAT64;
        }
        result.close();
        return new Timed(
                values, seconds, onDevice, bitwiseEqual(before, parameterValues(side.model())));
    }

    /**
     * The largest absolute difference per parameter relative to the largest absolute value of the
     * expected diagonal of that parameter (at least 1e-12 of the largest of all), over all
     * parameters; infinite when the shapes differ, NaN where a value is.
     */
    static double relativeDifference(double[][] actual, double[][] expected) {
        if (actual.length != expected.length) {
            return Double.POSITIVE_INFINITY;
        }
        double overall = Double.MIN_NORMAL;
        for (double[] values : expected) {
            for (double value : values) {
                overall = Math.max(overall, Math.abs(value));
            }
        }
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            if (actual[i].length != expected[i].length) {
                return Double.POSITIVE_INFINITY;
            }
            double scale = 1e-12 * overall;
            double difference = 0;
            for (int j = 0; j < expected[i].length; j++) {
                scale = Math.max(scale, Math.abs(expected[i][j]));
                double d = Math.abs(actual[i][j] - expected[i][j]);
                if (Double.isNaN(d)) {
                    return Double.NaN;
                }
                difference = Math.max(difference, d);
            }
            worst = Math.max(worst, difference / scale);
        }
        return worst;
    }

    static Block initialize(Block block, NDManager manager, Shape input) {
        block.initialize(manager, DataType.FLOAT64, input);
        // DJL 0.36.0 initializes some parameters in float32 whatever the type asked for
        for (Pair<String, Parameter> entry : block.getParameters()) {
            Parameter parameter = entry.getValue();
            NDArray array = parameter.getArray();
            if (array.getDataType() != DataType.FLOAT64) {
                NDArray copy = array.toType(DataType.FLOAT64, true);
                copy.attach(array.getManager());
                parameter.close();
                parameter.setShape(null);
                parameter.setArray(copy);
                copy.setRequiresGradient(parameter.requiresGradient());
            }
        }
        return block;
    }

    /**
     * Gives every parameter seeded normal values of scale 1 / sqrt(fan-in) (running variances:
     * uniform in [0.5, 1.5)), so that deep models do not saturate the softmax.
     */
    static long randomize(Block model, NDManager manager) {
        Random random = new Random(SEED);
        long count = 0;
        for (Pair<String, Parameter> entry : model.getParameters()) {
            NDArray array = entry.getValue().getArray();
            Shape shape = array.getShape();
            boolean variance = entry.getKey().endsWith("runningVar");
            double scale =
                    shape.dimension() > 1 ? Math.sqrt(shape.get(0) / (double) shape.size()) : 0.5;
            double[] values = new double[Math.toIntExact(shape.size())];
            for (int i = 0; i < values.length; i++) {
                values[i] = variance ? 0.5 + random.nextDouble() : scale * random.nextGaussian();
            }
            manager.create(values, shape).copyTo(array);
            count += values.length;
        }
        return count;
    }

    /** Copies every parameter's values and checks the copy bit for bit. */
    static void copyParameters(Block from, Block to, NDManager manager) {
        ParameterList source = from.getParameters();
        ParameterList target = to.getParameters();
        if (source.size() != target.size()) {
            throw new IllegalStateException(
                    source.size() + " parameters on the CPU, " + target.size() + " on the device");
        }
        for (int i = 0; i < source.size(); i++) {
            NDArray array = source.get(i).getValue().getArray();
            NDArray copy = target.get(i).getValue().getArray();
            if (!source.get(i).getKey().equals(target.get(i).getKey())
                    || !array.getShape().equals(copy.getShape())) {
                throw new IllegalStateException(
                        "parameter "
                                + source.get(i).getKey()
                                + " differs from "
                                + target.get(i).getKey());
            }
            manager.create(array.toDoubleArray(), array.getShape()).copyTo(copy);
        }
        if (!bitwiseEqual(parameterValues(from), parameterValues(to))) {
            throw new IllegalStateException("the copied parameters differ from the CPU's");
        }
    }

    static Side side(Block model, NDManager manager, Case check, Device device) {
        Random random = new Random(SEED + 1);
        double[] input = new double[Math.toIntExact(check.input().size())];
        for (int i = 0; i < input.length; i++) {
            input[i] = random.nextGaussian();
        }
        int batch = Math.toIntExact(check.input().get(0));
        float[] labels = new float[batch];
        for (int i = 0; i < batch; i++) {
            labels[i] = (i * 7 + 1) % check.classes();
        }
        return new Side(
                model,
                new NDList(manager.create(input, check.input())),
                new NDList(manager.create(labels)),
                device);
    }

    static double lossValue(Side side, Loss loss) {
        NDManager manager = side.inputs().head().getManager();
        try (NDManager scope = manager.newSubManager()) {
            NDList predictions =
                    side.model().forward(new ParameterStore(scope, false), side.inputs(), false);
            NDArray value = loss.evaluate(side.labels(), predictions);
            double result = value.toType(DataType.FLOAT64, false).getDouble();
            predictions.attach(scope);
            value.attach(scope);
            return result;
        }
    }

    static double[][] parameterValues(Block model) {
        ParameterList parameters = model.getParameters();
        double[][] values = new double[parameters.size()][];
        for (int i = 0; i < values.length; i++) {
            values[i] =
                    parameters
                            .get(i)
                            .getValue()
                            .getArray()
                            .toType(DataType.FLOAT64, false)
                            .toDoubleArray();
        }
        return values;
    }

    static boolean bitwiseEqual(double[][] a, double[][] b) {
        if (a.length != b.length) {
            return false;
        }
        for (int i = 0; i < a.length; i++) {
            if (a[i].length != b[i].length) {
                return false;
            }
            for (int j = 0; j < a[i].length; j++) {
                if (Double.doubleToRawLongBits(a[i][j]) != Double.doubleToRawLongBits(b[i][j])) {
                    return false;
                }
            }
        }
        return true;
    }
}
