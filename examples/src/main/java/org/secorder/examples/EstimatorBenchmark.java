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
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;
import org.secorder.core.Curvature;
import org.secorder.core.DiagonalEstimate;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianVectorProduct;

/**
 * Error against cost of the stochastic diagonals on a real small network: Hutchinson and XDiag for
 * the Hessian diagonal (Hessian-vector products), the Monte-Carlo GGN diagonal for the GGN diagonal
 * (backward passes), next to the exact diagonals' cost, as a table and a plot.
 *
 * <p>Hutchinson and XDiag also run on the GGN, through {@link HessianVectorProduct}'s GGN operator,
 * whose rank (at most batch times classes minus one) XDiag's sketch captures.
 *
 * <p>Network: a tanh MLP 16-32-32-4 with softmax cross-entropy, batch 64, float64. Error: the
 * relative error {@code ||d - d_exact|| / ||d_exact||}, root mean square over seeds; reported: the
 * same norm of the estimator's own standard error. Times are medians, as ratios to one gradient of
 * the same network in the same run.
 *
 * <pre>
 * mvn -B -q -pl examples -am compile exec:java \
 *     -Dexec.mainClass=org.secorder.examples.EstimatorBenchmark [-Dexec.args=docs/estimators.png]
 * </pre>
 */
public final class EstimatorBenchmark {

    private static final int BATCH = 64;
    private static final int FEATURES = 16;
    private static final int CLASSES = 4;
    private static final int[] PRODUCTS = {8, 16, 32, 64, 128, 256};
    private static final int SEEDS = 2;
    private static final int RUNS = 5;

    private EstimatorBenchmark() {}

    /**
     * Runs the benchmark, prints the table and writes the plot.
     *
     * @param args the path of the PNG plot, {@code docs/estimators.png} by default
     * @throws IOException if the plot cannot be written
     */
    public static void main(String[] args) throws IOException {
        Path plot = Paths.get(args.length > 0 ? args[0] : "docs/estimators.png");
        Engine engine = Engine.getInstance();
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model = network(manager);
            NDList inputs = new NDList(normal(manager, new Random(2), new Shape(BATCH, FEATURES)));
            double[] labels = new double[BATCH];
            for (int b = 0; b < BATCH; b++) {
                labels[b] = b % CLASSES;
            }
            NDList targets = new NDList(manager.create(labels));
            Loss loss = Loss.softmaxCrossEntropyLoss();
            long parameters = 0;
            for (var entry : model.getParameters()) {
                parameters += entry.getValue().getArray().size();
            }
            System.out.printf(
                    "Estimator benchmark on %s %s: tanh MLP %d-32-32-%d (%d parameters), softmax"
                            + " cross-entropy, batch %d, float64; error: ||d - exact|| / ||exact||,"
                            + " root mean square over %d seeds%n",
                    engine.getEngineName(),
                    engine.getVersion(),
                    FEATURES,
                    CLASSES,
                    parameters,
                    BATCH,
                    SEEDS);

            double gradient = median(() -> gradient(model, loss, inputs, targets, manager));
            HessianDiagonal exactHessian =
                    HessianDiagonal.builder().optMethod(HessianDiagonal.Method.AUTOGRAD).build();
            HessianDiagonal exactGgn =
                    HessianDiagonal.builder()
                            .optMethod(HessianDiagonal.Method.STRUCTURED)
                            .optCurvature(Curvature.GGN)
                            .build();
            double[] hessian = flat(exactHessian.compute(model, loss, inputs, targets));
            double[] ggn = flat(exactGgn.compute(model, loss, inputs, targets));
            long start = System.nanoTime();
            exactHessian.compute(model, loss, inputs, targets).close();
            double hessianTime = (System.nanoTime() - start) * 1e-9;
            double ggnTime = median(() -> exactGgn.compute(model, loss, inputs, targets).close());
            HessianDiagonal oneHvp =
                    HessianDiagonal.builder()
                            .optMethod(HessianDiagonal.Method.HUTCHINSON)
                            .optProbes(16)
                            .build();
            double hvpTime =
                    median(() -> oneHvp.estimate(model, loss, inputs, targets).close()) / 16;
            System.out.printf(
                    "one gradient %.2f ms; exact Hessian diagonal (AUTOGRAD, %d Hessian-vector"
                            + " products) %.1f ms = %.0f gradients; exact GGN diagonal (GGN) %.2f"
                            + " ms = %.1f gradients; one Hessian-vector product through HUTCHINSON"
                            + " %.2f ms = %.1f gradients%n%n",
                    gradient * 1e3,
                    parameters,
                    hessianTime * 1e3,
                    hessianTime / gradient,
                    ggnTime * 1e3,
                    ggnTime / gradient,
                    hvpTime * 1e3,
                    hvpTime / gradient);

            HessianDiagonal.Method[] methods = {
                HessianDiagonal.Method.HUTCHINSON,
                HessianDiagonal.Method.XDIAG,
                HessianDiagonal.Method.HUTCHINSON,
                HessianDiagonal.Method.XDIAG,
                HessianDiagonal.Method.MONTE_CARLO
            };
            double[][] errors = table(methods, hessian, ggn, model, loss, inputs, targets);
            System.out.printf(
                    "%nexact diagonals for comparison: AUTOGRAD %d products (error 0), GGN %.1f"
                            + " gradients (error 0)%n",
                    parameters, ggnTime / gradient);
            write(plot, methods, errors, parameters);
            System.out.println("plot written to " + plot);
        }
    }

    /** Prints the table of errors against products and returns the errors. */
    private static double[][] table(
            HessianDiagonal.Method[] methods,
            double[] hessian,
            double[] ggn,
            Block model,
            Loss loss,
            NDList inputs,
            NDList targets) {
        double[][] errors = new double[methods.length][PRODUCTS.length];
        double[][] reported = new double[methods.length][PRODUCTS.length];
        System.out.println(
                "| products | Hutchinson, Hessian | XDiag, Hessian | Hutchinson, GGN | XDiag,"
                        + " GGN | Monte-Carlo GGN |");
        System.out.println("|---:|---:|---:|---:|---:|---:|");
        for (int p = 0; p < PRODUCTS.length; p++) {
            StringBuilder row = new StringBuilder("| " + PRODUCTS[p] + " |");
            for (int m = 0; m < methods.length; m++) {
                boolean onGgn = m >= 2;
                double[] exact = onGgn ? ggn : hessian;
                double[] result =
                        error(methods[m], onGgn, PRODUCTS[p], exact, model, loss, inputs, targets);
                errors[m][p] = result[0];
                reported[m][p] = result[1];
                row.append(String.format(" %.3f (%.3f) |", result[0], result[1]));
            }
            System.out.println(row);
        }
        return errors;
    }

    private static double[] error(
            HessianDiagonal.Method method,
            boolean onGgn,
            int products,
            double[] exact,
            Block model,
            Loss loss,
            NDList inputs,
            NDList targets) {
        double squared = 0;
        double reportedSquared = 0;
        double norm = 0;
        for (double e : exact) {
            norm += e * e;
        }
        for (int seed = 0; seed < SEEDS; seed++) {
            HessianDiagonal hessian =
                    HessianDiagonal.builder()
                            .optMethod(method)
                            .optProbes(products)
                            .optSeed(seed)
                            .build();
            try (DiagonalEstimate estimate =
                    onGgn && method != HessianDiagonal.Method.MONTE_CARLO
                            ? hessian.estimate(
                                    HessianVectorProduct.builder()
                                            .optCurvature(Curvature.GGN)
                                            .build()
                                            .operator(model, loss, inputs, targets))
                            : hessian.estimate(model, loss, inputs, targets)) {
                double[] d = flat(estimate.getDiagonal());
                double[] s = flat(estimate.getStandardError());
                double difference = 0;
                double error = 0;
                for (int i = 0; i < d.length; i++) {
                    difference += (d[i] - exact[i]) * (d[i] - exact[i]);
                    error += s[i] * s[i];
                }
                squared += difference / norm;
                reportedSquared += error / norm;
            }
        }
        return new double[] {Math.sqrt(squared / SEEDS), Math.sqrt(reportedSquared / SEEDS)};
    }

    private static void write(
            Path plot, HessianDiagonal.Method[] methods, double[][] errors, long parameters)
            throws IOException {
        XYChart chart =
                new XYChartBuilder()
                        .width(800)
                        .height(500)
                        .title("Stochastic diagonals of a tanh MLP (" + parameters + " parameters)")
                        .xAxisTitle("matrix-vector products (backward passes for Monte-Carlo GGN)")
                        .yAxisTitle("relative error ||d - exact|| / ||exact||")
                        .build();
        chart.getStyler().setXAxisLogarithmic(true);
        chart.getStyler().setYAxisLogarithmic(true);
        String[] names = {
            "Hutchinson, Hessian",
            "XDiag, Hessian",
            "Hutchinson, GGN",
            "XDiag, GGN",
            "Monte-Carlo GGN (backward passes)"
        };
        double[] x = Arrays.stream(PRODUCTS).asDoubleStream().toArray();
        for (int m = 0; m < methods.length; m++) {
            XYSeries series = chart.addSeries(names[m], x, errors[m]);
            series.setMarker(SeriesMarkers.CIRCLE);
        }
        double low = Double.POSITIVE_INFINITY;
        double high = 0;
        for (double[] row : errors) {
            for (double e : row) {
                low = Math.min(low, e);
                high = Math.max(high, e);
            }
        }
        List<Double> exactX = new ArrayList<>(List.of((double) parameters, (double) parameters));
        List<Double> exactY = new ArrayList<>(List.of(low, high));
        XYSeries exact =
                chart.addSeries(
                        "exact Hessian diagonal (AUTOGRAD): " + parameters + " products",
                        exactX,
                        exactY);
        exact.setMarker(SeriesMarkers.NONE);
        Path parent = plot.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        BitmapEncoder.saveBitmap(chart, plot.toString(), BitmapEncoder.BitmapFormat.PNG);
    }

    private static double gradient(
            Block model, Loss loss, NDList inputs, NDList targets, NDManager manager) {
        try (NDManager scope = manager.newSubManager();
                GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            NDList predictions = model.forward(new ParameterStore(scope, false), inputs, false);
            NDArray value = loss.evaluate(targets, predictions);
            collector.backward(value);
            value.close();
            predictions.close();
        }
        return 0;
    }

    private static double median(Runnable call) {
        for (int i = 0; i < 2; i++) {
            call.run();
        }
        double[] times = new double[RUNS];
        for (int i = 0; i < RUNS; i++) {
            long start = System.nanoTime();
            call.run();
            times[i] = (System.nanoTime() - start) * 1e-9;
        }
        Arrays.sort(times);
        return times[RUNS / 2];
    }

    private static Block network(NDManager manager) {
        SequentialBlock block =
                new SequentialBlock()
                        .add(Linear.builder().setUnits(32).build())
                        .add(Activation.tanhBlock())
                        .add(Linear.builder().setUnits(32).build())
                        .add(Activation.tanhBlock())
                        .add(Linear.builder().setUnits(CLASSES).build());
        Random random = new Random(1);
        block.setInitializer(
                (m, shape, type) -> {
                    double scale = 1 / Math.sqrt(shape.get(shape.dimension() - 1));
                    NDArray values = normal(m, random, shape);
                    NDArray scaled = values.mul(scale);
                    values.close();
                    return scaled;
                },
                Parameter.Type.WEIGHT);
        block.setInitializer(
                (m, shape, type) -> m.zeros(shape, DataType.FLOAT64), Parameter.Type.BIAS);
        block.initialize(manager, DataType.FLOAT64, new Shape(BATCH, FEATURES));
        return block;
    }

    private static NDArray normal(NDManager manager, Random random, Shape shape) {
        double[] values = new double[Math.toIntExact(shape.size())];
        for (int i = 0; i < values.length; i++) {
            values[i] = random.nextGaussian();
        }
        return manager.create(values, shape);
    }

    private static double[] flat(NDList list) {
        List<Double> values = new ArrayList<>();
        for (NDArray array : list) {
            for (double v : array.toType(DataType.FLOAT64, false).toDoubleArray()) {
                values.add(v);
            }
        }
        list.close();
        return values.stream().mapToDouble(Double::doubleValue).toArray();
    }
}
