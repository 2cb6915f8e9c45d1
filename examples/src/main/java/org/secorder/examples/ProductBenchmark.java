package org.secorder.examples;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.util.Pair;
import java.util.Arrays;
import org.secorder.core.Curvature;
import org.secorder.core.HessianEigenvalues;
import org.secorder.core.HessianVectorProduct;
import org.secorder.operator.Eigenpairs;

/**
 * Times one Hessian-vector product and one GGN-vector product as ratios to one gradient of the same
 * network in the same run, on the networks of {@link StructuredBenchmark}: the 784-512-512-10 MLP
 * with ReLU and with tanh and the small CNN, batch 128, softmax cross-entropy, float32.
 *
 * <p>On PyTorch both products run by double backward ({@code Method.AUTOGRAD}), timed as the median
 * of several runs after seconds of warm-up, taking turns with the gradient. Without double backward
 * (MXNet) the Hessian product is not available, and the GGN product ({@code Method.FACTORED}, one
 * vector-Jacobian product per sample and loss-factor column) is timed once.
 */
public final class ProductBenchmark {

    private ProductBenchmark() {}

    /**
     * Runs the benchmark and prints the table.
     *
     * @param args {@code eigenvalues} to run only the eigenvalue timing
     */
    public static void main(String[] args) {
        Engine engine = Engine.getInstance();
        engine.setRandomSeed(1234);
        if (args.length > 0 && "eigenvalues".equals(args[0])) {
            eigenvalues();
            return;
        }
        System.out.printf(
                "Curvature-vector product benchmark on %s %s, %d CPU cores; batch %d, softmax"
                        + " cross-entropy, float32; load average at start: %s%n",
                engine.getEngineName(),
                engine.getVersion(),
                Runtime.getRuntime().availableProcessors(),
                StructuredBenchmark.BATCH,
                StructuredBenchmark.loadAverage());
        System.out.printf(
                "%-24s %9s %10s %10s %7s %10s %7s%n",
                "network", "params", "gradient s", "H v s", "ratio", "G v s", "ratio");
        Shape vectors = new Shape(StructuredBenchmark.BATCH, 784);
        measure(
                "MLP 784-512-512-10 ReLU",
                StructuredBenchmark.mlp(Activation::reluBlock, 2),
                vectors);
        measure(
                "MLP 784-512-512-10 tanh",
                StructuredBenchmark.mlp(Activation::tanhBlock, 2),
                vectors);
        measure(
                "CNN 1x28x28 16c-32c",
                StructuredBenchmark.cnn(),
                new Shape(StructuredBenchmark.BATCH, 1, 28, 28));
        System.out.println(
                "times: median of the runs of StructuredBenchmark after its warm-up, the gradient"
                        + " (forward + backward in a GradientCollector) and the products taking"
                        + " turns; '(1 run)': a single call, no warm-up");
    }

    /** Times the 3 Hessian (PyTorch) or GGN eigenvalues of largest magnitude of the tanh MLP. */
    private static void eigenvalues() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block block = StructuredBenchmark.mlp(Activation::tanhBlock, 2);
            StructuredBenchmark.Setup setup =
                    new StructuredBenchmark.Setup(
                            manager, block, new Shape(StructuredBenchmark.BATCH, 784));
            boolean pytorch = "PyTorch".equals(manager.getEngine().getEngineName());
            Curvature curvature = pytorch ? Curvature.HESSIAN : Curvature.GGN;
            long start = System.nanoTime();
            try (Eigenpairs top =
                    HessianEigenvalues.builder()
                            .optCount(3)
                            .optCurvature(curvature)
                            .build()
                            .compute(
                                    setup.model,
                                    setup.loss,
                                    new NDList(setup.input),
                                    new NDList(setup.labels))) {
                double seconds = (System.nanoTime() - start) / 1e9;
                System.out.printf(
                        "MLP 784-512-512-10 tanh, %s, 3 largest eigenvalues %s, residual norms %s,"
                                + " converged %s, %d products, %.1f s%n",
                        curvature,
                        Arrays.toString(top.getEigenvalues()),
                        Arrays.toString(top.getResidualNorms()),
                        top.isConverged(),
                        top.getProducts(),
                        seconds);
            }
        }
    }

    private static void measure(String name, Block block, Shape shape) {
        try (NDManager manager = NDManager.newBaseManager()) {
            StructuredBenchmark.Setup setup = new StructuredBenchmark.Setup(manager, block, shape);
            NDList v = new NDList();
            long parameters = 0;
            for (Pair<String, Parameter> entry : block.getParameters()) {
                NDArray array = entry.getValue().getArray();
                v.add(manager.randomNormal(array.getShape()));
                parameters += array.size();
            }
            HessianVectorProduct hessian = HessianVectorProduct.builder().build();
            HessianVectorProduct ggn =
                    HessianVectorProduct.builder().optCurvature(Curvature.GGN).build();
            Runnable hessianProduct = () -> product(setup, hessian, v);
            Runnable ggnProduct = () -> product(setup, ggn, v);
            if ("PyTorch".equals(manager.getEngine().getEngineName())) {
                StructuredBenchmark.Timing timing =
                        StructuredBenchmark.time(setup::gradient, hessianProduct, ggnProduct);
                double gradient = timing.seconds[0];
                System.out.printf(
                        "%-24s %9d %10.4f %10.4f %7.2f %10.4f %7.2f%n",
                        name,
                        parameters,
                        gradient,
                        timing.seconds[1],
                        timing.seconds[1] / gradient,
                        timing.seconds[2],
                        timing.seconds[2] / gradient);
            } else {
                StructuredBenchmark.Timing timing = StructuredBenchmark.time(setup::gradient);
                double gradient = timing.seconds[0];
                long start = System.nanoTime();
                ggnProduct.run();
                double seconds = (System.nanoTime() - start) / 1e9;
                System.out.printf(
                        "%-24s %9d %10.4f %10s %7s %10.4f %7.0f (1 run)%n",
                        name, parameters, gradient, "n/a", "n/a", seconds, seconds / gradient);
            }
        }
    }

    private static void product(
            StructuredBenchmark.Setup setup, HessianVectorProduct products, NDList v) {
        products.compute(
                        setup.model,
                        setup.loss,
                        new NDList(setup.input),
                        new NDList(setup.labels),
                        v)
                .close();
    }
}
