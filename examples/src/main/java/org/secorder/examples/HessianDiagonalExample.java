package org.secorder.examples;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.ParameterList;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.loss.Loss;
import ai.djl.util.Pair;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianDiagonal.Method;

/**
 * The specification's Hessian diagonal examples, on whichever DJL engine is on the classpath.
 *
 * <p>It prints three tables: the quadratic {@code x^T A x} against {@code 2 A_ii}, a {@link Linear}
 * layer under {@code L2Loss} against the closed form, and a small tanh MLP with a summary per
 * parameter, a check against the other methods and its Optimal Brain Damage saliencies. Each part
 * asks for {@link Method#AUTO}; where that has no exact method (on MXNet, which cannot
 * differentiate twice, for a loss given as a function), the example prints the library's error and
 * switches to {@link Method#FINITE_DIFFERENCE} explicitly.
 */
public final class HessianDiagonalExample {

    private static final int SEED = 42;
    private static final int TOP = 5;
    private static final int WIDTH = 96;

    private HessianDiagonalExample() {}

    /**
     * Runs the example.
     *
     * @param args not used
     */
    public static void main(String[] args) {
        Engine engine = Engine.getInstance();
        engine.setRandomSeed(SEED);
        System.out.printf(
                "Secorder Hessian diagonal example on %s %s%n",
                engine.getEngineName(), engine.getVersion());
        try (NDManager manager = NDManager.newBaseManager()) {
            quadraticExample(manager);
            linearExample(manager);
            mlpExample(manager);
        }
    }

    /**
     * Builds a multilayer perceptron of {@link Linear} layers with tanh between them.
     *
     * @param sizes the input size, the hidden sizes and the output size
     * @return the uninitialized block
     */
    static SequentialBlock mlp(int... sizes) {
        SequentialBlock block = new SequentialBlock();
        for (int i = 1; i < sizes.length; i++) {
            if (i > 1) {
                block.add(Activation.tanhBlock());
            }
            block.add(Linear.builder().setUnits(sizes[i]).build());
        }
        return block;
    }

    /** Part (a): the specification's quadratic against {@code 2 A_ii}. */
    private static void quadraticExample(NDManager manager) {
        System.out.println();
        System.out.println("(a) f(x) = x^T A x, A = [[2, 1], [1, 3]], x = [1, 2]");
        NDArray a = manager.create(new float[] {2, 1, 1, 3}, new Shape(2, 2));
        NDArray x = manager.create(new float[] {1, 2});
        x.setRequiresGradient(true);
        Supplier<NDArray> f = () -> x.matMul(a).matMul(x);
        Computed diagonal = computeWithFallback(h -> h.compute(f, new NDList(x)));
        float[] computed = diagonal.values().head().toFloatArray();
        diagonal.values().close();
        System.out.printf("    %-4s %12s %16s%n", "i", "computed", "expected 2*A_ii");
        float[] aValues = a.toFloatArray();
        for (int i = 0; i < computed.length; i++) {
            System.out.printf("    %-4d %12.6f %16.6f%n", i, computed[i], 2 * aValues[i * 3]);
        }
    }

    /** Part (b): the specification's {@code nn.Linear(10, 1)} against the closed form. */
    private static void linearExample(NDManager manager) {
        int batch = 5;
        int features = 10;
        System.out.println();
        System.out.printf(
                "(b) Linear(%d -> 1), batch %d, L2Loss = 0.5 * mean((pred - label)^2)%n",
                features, batch);
        Block model = Linear.builder().setUnits(1).build();
        Shape inputShape = new Shape(batch, features);
        model.initialize(manager, DataType.FLOAT32, inputShape);
        NDArray x = manager.randomNormal(inputShape);
        NDArray y = manager.randomNormal(new Shape(batch, 1));
        NDList diagonal =
                computeWithFallback(
                                h -> h.compute(model, Loss.l2Loss(), new NDList(x), new NDList(y)))
                        .values();
        System.out.printf(
                "    weight diagonal shape %s, bias diagonal shape %s%n",
                diagonal.get(0).getShape(), diagonal.get(1).getShape());
        float[] weight = diagonal.get(0).toFloatArray();
        float bias = diagonal.get(1).getFloat();
        diagonal.close();
        // H of w_(0,i) is sum_n x_(n,i)^2 / N; of the bias, N / N = 1
        float[] inputs = x.toFloatArray();
        double[] expected = new double[features];
        for (int n = 0; n < batch; n++) {
            for (int i = 0; i < features; i++) {
                double value = inputs[n * features + i];
                expected[i] += value * value / batch;
            }
        }
        System.out.printf(
                "    %-12s %12s %14s %12s%n", "element", "computed", "sum x^2 / N", "|diff|");
        double worst = 0;
        for (int i = 0; i < features; i++) {
            worst = Math.max(worst, row("weight[0," + i + "]", weight[i], expected[i]));
        }
        worst = Math.max(worst, row("bias[0]", bias, 1.0));
        System.out.printf("    max |diff| = %.2e%n", worst);
    }

    private static double row(String element, float computed, double expected) {
        double difference = Math.abs(computed - expected);
        System.out.printf(
                "    %-12s %12.6f %14.6f %12.2e%n", element, computed, expected, difference);
        return difference;
    }

    /** Part (c): a 4-8-3 tanh MLP under softmax cross-entropy, with OBD saliencies. */
    private static void mlpExample(NDManager manager) {
        int batch = 16;
        int[] sizes = {4, 8, 3};
        SequentialBlock model = mlp(sizes);
        Shape inputShape = new Shape(batch, sizes[0]);
        model.initialize(manager, DataType.FLOAT32, inputShape);
        NDArray x = manager.randomNormal(inputShape);
        NDArray labels = manager.randomInteger(0, sizes[2], new Shape(batch), DataType.INT32);
        ParameterList parameters = model.getParameters();
        long count = 0;
        for (Pair<String, Parameter> parameter : parameters) {
            count += parameter.getValue().getArray().size();
        }
        System.out.println();
        System.out.printf(
                "(c) MLP 4-8-3 (tanh), softmax cross-entropy, batch %d, %d parameters%n",
                batch, count);
        Loss loss = Loss.softmaxCrossEntropyLoss();
        NDList inputs = new NDList(x);
        NDList targets = new NDList(labels);
        Computed computed = computeWithFallback(h -> h.compute(model, loss, inputs, targets));
        NDList diagonal = computed.values();
        System.out.printf(
                "    %-16s %-8s %11s %11s %11s%n", "parameter", "shape", "min", "max", "mean");
        List<Saliency> saliencies = new ArrayList<>();
        for (int i = 0; i < parameters.size(); i++) {
            String name = parameters.get(i).getKey();
            NDArray weights = parameters.get(i).getValue().getArray();
            Shape shape = weights.getShape();
            float[] h = diagonal.get(i).toFloatArray();
            float[] w = weights.toFloatArray();
            double min = Double.POSITIVE_INFINITY;
            double max = Double.NEGATIVE_INFINITY;
            double sum = 0;
            for (int j = 0; j < h.length; j++) {
                min = Math.min(min, h[j]);
                max = Math.max(max, h[j]);
                sum += h[j];
                saliencies.add(new Saliency(name + index(j, shape), h[j] * w[j] * w[j] / 2.0));
            }
            System.out.printf(
                    "    %-16s %-8s %11.3e %11.3e %11.3e%n", name, shape, min, max, sum / h.length);
        }
        crossCheck(computed, h -> h.compute(model, loss, inputs, targets));
        diagonal.close();
        saliencies.sort(Comparator.comparingDouble(Saliency::value).reversed());
        System.out.printf("    OBD saliency H_ii * w_i^2 / 2, top %d of %d:%n", TOP, count);
        for (Saliency saliency : saliencies.subList(0, TOP)) {
            System.out.printf("      %-24s %11.3e%n", saliency.element(), saliency.value());
        }
    }

    /**
     * Computes a diagonal with {@link Method#AUTO}, or with {@link Method#FINITE_DIFFERENCE} where
     * the engine cannot differentiate twice, and says which.
     */
    private static Computed computeWithFallback(Function<HessianDiagonal, NDList> computation) {
        try {
            NDList diagonal = computation.apply(HessianDiagonal.builder().build());
            System.out.println("    method AUTO (exact)");
            return new Computed(diagonal, Method.AUTO);
        } catch (UnsupportedOperationException e) {
            printWrapped("method AUTO is not available: " + firstSentence(e));
            printWrapped(
                    "=> using Method.FINITE_DIFFERENCE explicitly (central differences of"
                            + " gradients, approximate)");
            Method method = Method.FINITE_DIFFERENCE;
            HessianDiagonal fallback = HessianDiagonal.builder().optMethod(method).build();
            return new Computed(computation.apply(fallback), method);
        }
    }

    /** Prints how far the other methods are from a computed diagonal. */
    private static void crossCheck(
            Computed computed, Function<HessianDiagonal, NDList> computation) {
        List<String> checks = new ArrayList<>();
        for (Method other : new Method[] {Method.AUTOGRAD, Method.FINITE_DIFFERENCE}) {
            if (other == computed.method()) {
                continue;
            }
            try {
                NDList diagonal =
                        computation.apply(HessianDiagonal.builder().optMethod(other).build());
                double difference = maxDifference(computed.values(), diagonal);
                diagonal.close();
                checks.add(String.format("vs %s %.2e", other, difference));
            } catch (UnsupportedOperationException e) {
                checks.add("vs " + other + " n/a (no second derivatives)");
            }
        }
        System.out.println("    max |diff| " + String.join(", ", checks));
    }

    private static double maxDifference(NDList first, NDList second) {
        double worst = 0;
        for (int i = 0; i < first.size(); i++) {
            float[] a = first.get(i).toFloatArray();
            float[] b = second.get(i).toFloatArray();
            for (int j = 0; j < a.length; j++) {
                worst = Math.max(worst, Math.abs(a[j] - b[j]));
            }
        }
        return worst;
    }

    private static String index(int flat, Shape shape) {
        if (shape.dimension() == 1) {
            return "[" + flat + "]";
        }
        long columns = shape.get(1);
        return "[" + flat / columns + "," + flat % columns + "]";
    }

    private static void printWrapped(String text) {
        StringBuilder line = new StringBuilder("   ");
        for (String word : text.split(" ")) {
            if (line.length() + word.length() >= WIDTH) {
                System.out.println(line);
                line = new StringBuilder("      ");
            }
            line.append(' ').append(word);
        }
        System.out.println(line);
    }

    private static String firstSentence(RuntimeException e) {
        String message = String.valueOf(e.getMessage());
        int end = message.indexOf(". ");
        return end < 0 ? message : message.substring(0, end + 1);
    }

    /**
     * The Optimal Brain Damage saliency of one parameter element.
     *
     * @param element the parameter name and the element's index
     * @param value the saliency {@code H_ii * w_i^2 / 2}
     */
    private record Saliency(String element, double value) {}

    /**
     * A computed diagonal and the method that was asked for.
     *
     * @param values one diagonal per parameter
     * @param method the method passed to the builder
     */
    private record Computed(NDList values, Method method) {}
}
