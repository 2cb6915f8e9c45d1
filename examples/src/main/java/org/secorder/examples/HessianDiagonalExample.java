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
import java.util.function.Supplier;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianDiagonal.Method;

/**
 * The specification's Hessian diagonal examples, on whichever DJL engine is on the classpath.
 *
 * <p>It prints three tables: the quadratic {@code x^T A x} against {@code 2 A_ii}, a {@link Linear}
 * layer under {@code L2Loss} against the closed form, and a small tanh MLP with a summary per
 * parameter and its Optimal Brain Damage saliencies. Where the engine has no second derivatives
 * (MXNet), {@link Method#AUTO} fails with a clear error and the example says so and switches to
 * {@link Method#FINITE_DIFFERENCE}.
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
            Method method = quadraticExample(manager);
            linearExample(manager, method);
            mlpExample(manager, method);
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

    /** Part (a); also finds out which method the engine supports and returns it. */
    private static Method quadraticExample(NDManager manager) {
        System.out.println();
        System.out.println("(a) f(x) = x^T A x, A = [[2, 1], [1, 3]], x = [1, 2]");
        NDArray a = manager.create(new float[] {2, 1, 1, 3}, new Shape(2, 2));
        NDArray x = manager.create(new float[] {1, 2});
        x.setRequiresGradient(true);
        Supplier<NDArray> f = () -> x.matMul(a).matMul(x);
        Method method = Method.AUTO;
        NDList diagonal;
        try {
            diagonal = HessianDiagonal.hessianDiagonal(f, new NDList(x));
            System.out.println("    method AUTO: exact double backward");
        } catch (UnsupportedOperationException e) {
            method = Method.FINITE_DIFFERENCE;
            printWrapped("method AUTO is not available: " + firstSentence(e));
            printWrapped(
                    "=> using Method.FINITE_DIFFERENCE explicitly (central differences of"
                            + " gradients, approximate) in (a), (b) and (c)");
            diagonal =
                    HessianDiagonal.builder().optMethod(method).build().compute(f, new NDList(x));
        }
        float[] computed = diagonal.head().toFloatArray();
        diagonal.close();
        System.out.printf("    %-4s %12s %16s%n", "i", "computed", "expected 2*A_ii");
        float[] aValues = a.toFloatArray();
        for (int i = 0; i < computed.length; i++) {
            System.out.printf("    %-4d %12.6f %16.6f%n", i, computed[i], 2 * aValues[i * 3]);
        }
        return method;
    }

    /** Part (b): the specification's {@code nn.Linear(10, 1)} against the closed form. */
    private static void linearExample(NDManager manager, Method method) {
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
                HessianDiagonal.builder()
                        .optMethod(method)
                        .build()
                        .compute(model, Loss.l2Loss(), new NDList(x), new NDList(y));
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
    private static void mlpExample(NDManager manager, Method method) {
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
        NDList diagonal =
                HessianDiagonal.builder()
                        .optMethod(method)
                        .build()
                        .compute(
                                model,
                                Loss.softmaxCrossEntropyLoss(),
                                new NDList(x),
                                new NDList(labels));
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
        if (method != Method.FINITE_DIFFERENCE) {
            crossCheck(model, x, labels, diagonal);
        }
        diagonal.close();
        saliencies.sort(Comparator.comparingDouble(Saliency::value).reversed());
        System.out.printf("    OBD saliency H_ii * w_i^2 / 2, top %d of %d:%n", TOP, count);
        for (Saliency saliency : saliencies.subList(0, TOP)) {
            System.out.printf("      %-24s %11.3e%n", saliency.element(), saliency.value());
        }
    }

    /** Compares an exact diagonal with the finite-difference one of the same model. */
    private static void crossCheck(Block model, NDArray x, NDArray labels, NDList exact) {
        NDList approximate =
                HessianDiagonal.builder()
                        .optMethod(Method.FINITE_DIFFERENCE)
                        .build()
                        .compute(
                                model,
                                Loss.softmaxCrossEntropyLoss(),
                                new NDList(x),
                                new NDList(labels));
        double worst = 0;
        for (int i = 0; i < exact.size(); i++) {
            float[] a = exact.get(i).toFloatArray();
            float[] b = approximate.get(i).toFloatArray();
            for (int j = 0; j < a.length; j++) {
                worst = Math.max(worst, Math.abs(a[j] - b[j]));
            }
        }
        approximate.close();
        System.out.printf("    exact vs FINITE_DIFFERENCE: max |diff| = %.2e%n", worst);
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
}
