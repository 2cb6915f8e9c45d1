package org.secorder.examples;

import ai.djl.Model;
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
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.EasyTrain;
import ai.djl.training.ParameterStore;
import ai.djl.training.Trainer;
import ai.djl.training.dataset.ArrayDataset;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import ai.djl.translate.TranslateException;
import ai.djl.util.Pair;
import java.io.IOException;
import java.nio.FloatBuffer;
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
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.XYStyler;
import org.knowm.xchart.style.markers.SeriesMarkers;
import org.secorder.training.DatasetCurvature;

/**
 * Prunes a small classifier by Optimal Brain Damage and by weight magnitude and plots its test
 * accuracy against the fraction of weights removed.
 *
 * <p>A 2-64-64-3 ReLU network learns three interleaved spirals generated in code, with enough noise
 * that the arms overlap (about 92% test accuracy), so the training loss does not vanish. Its
 * weights are then removed, smallest first, by two rankings over all layers at once: the Optimal
 * Brain Damage saliency {@code H_ii * w_i^2 / 2}, with {@code H_ii} the exact Hessian diagonal of
 * the training loss over the whole training set ({@link DatasetCurvature}), and the magnitude
 * {@code |w_i|}; no retraining after pruning. The figure goes to {@code docs/pruning.png}, or to
 * the path given as the first argument.
 */
public final class PruningExample {

    private static final int SEED = 7;
    private static final int CLASSES = 3;
    private static final int TRAIN = 3000;
    private static final int TEST = 3000;
    private static final int EPOCHS = 40;

    /** The standard deviation of the angle, in radians: enough for the arms to overlap. */
    private static final double NOISE = 0.6;

    private static final int BATCH = 100;
    private static final double[] FRACTIONS = fractions();

    private PruningExample() {}

    /**
     * Runs the example.
     *
     * @param args the path of the figure, {@code docs/pruning.png} if none is given
     * @throws IOException if the figure cannot be written
     * @throws TranslateException if the data cannot be batched
     */
    public static void main(String[] args) throws IOException, TranslateException {
        System.setProperty("java.awt.headless", "true");
        Path figure = Paths.get(args.length > 0 ? args[0] : "docs/pruning.png");
        Engine engine = Engine.getInstance();
        engine.setRandomSeed(SEED);
        System.out.printf(
                "Pruning example on %s %s%n", engine.getEngineName(), engine.getVersion());
        try (NDManager manager = NDManager.newBaseManager();
                Model model = Model.newInstance("pruning")) {
            ArrayDataset train = spirals(manager, TRAIN, 1, true);
            ArrayDataset test = spirals(manager, TEST, 2, false);
            model.setBlock(
                    new SequentialBlock()
                            .add(Linear.builder().setUnits(64).build())
                            .add(Activation.reluBlock())
                            .add(Linear.builder().setUnits(64).build())
                            .add(Activation.reluBlock())
                            .add(Linear.builder().setUnits(CLASSES).build()));
            Loss loss = Loss.softmaxCrossEntropyLoss();
            DefaultTrainingConfig config =
                    new DefaultTrainingConfig(loss)
                            .optOptimizer(
                                    Optimizer.adam()
                                            .optLearningRateTracker(Tracker.fixed(0.005f))
                                            .build());
            try (Trainer trainer = model.newTrainer(config)) {
                trainer.initialize(new Shape(1, 2));
                EasyTrain.fit(trainer, EPOCHS, train, null);
            }
            Block block = model.getBlock();
            System.out.printf(
                    "trained %d epochs: train accuracy %.1f%%, test accuracy %.1f%%%n",
                    EPOCHS,
                    100 * accuracy(block, train, manager),
                    100 * accuracy(block, test, manager));

            // the exact Hessian diagonal of the mean training loss, batch by batch
            NDList diagonal = DatasetCurvature.hessianDiagonal(block, loss, train.getData(manager));

            Pruning pruning = new Pruning(block, diagonal);
            double[] obd = pruning.sweep(true, block, test, manager);
            double[] magnitude = pruning.sweep(false, block, test, manager);
            print(obd, magnitude);
            plot(obd, magnitude, figure);
            System.out.println("figure written to " + figure.toAbsolutePath());
        }
    }

    /** Fractions of weights removed: 0 to 0.98 in steps of 0.02. */
    private static double[] fractions() {
        double[] fractions = new double[50];
        for (int i = 0; i < fractions.length; i++) {
            fractions[i] = i * 0.02;
        }
        return fractions;
    }

    /**
     * Three interleaved spiral arms in the plane, one per class, with noise on the angle; Java's
     * generator with a fixed seed makes them.
     */
    private static ArrayDataset spirals(NDManager manager, int samples, long seed, boolean train) {
        Random random = new Random(seed);
        float[] points = new float[samples * 2];
        float[] labels = new float[samples];
        for (int n = 0; n < samples; n++) {
            int label = n % CLASSES;
            double radius = 0.1 + 0.9 * random.nextDouble();
            double angle =
                    2 * Math.PI * label / CLASSES + 4.0 * radius + NOISE * random.nextGaussian();
            points[2 * n] = (float) (radius * Math.cos(angle));
            points[2 * n + 1] = (float) (radius * Math.sin(angle));
            labels[n] = label;
        }
        return new ArrayDataset.Builder()
                .setData(manager.create(points, new Shape(samples, 2)))
                .optLabels(manager.create(labels))
                .setSampling(BATCH, train)
                .build();
    }

    /** The fraction of a dataset's examples whose largest output is their label. */
    static double accuracy(Block block, ArrayDataset dataset, NDManager manager) {
        try (NDManager scope = manager.newSubManager()) {
            long correct = 0;
            long total = 0;
            for (var batch : dataset.getData(scope)) {
                NDArray predictions =
                        block.forward(new ParameterStore(scope, false), batch.getData(), false)
                                .singletonOrThrow();
                float[] predicted =
                        predictions.argMax(1).toType(DataType.FLOAT32, false).toFloatArray();
                float[] labels = batch.getLabels().singletonOrThrow().toFloatArray();
                for (int i = 0; i < labels.length; i++) {
                    correct += predicted[i] == labels[i] ? 1 : 0;
                }
                total += labels.length;
                batch.close();
            }
            return (double) correct / total;
        } catch (IOException | TranslateException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void print(double[] obd, double[] magnitude) {
        System.out.println();
        System.out.println("removed | test accuracy, OBD | test accuracy, magnitude");
        for (int i = 0; i < FRACTIONS.length; i += 5) {
            System.out.printf(
                    "%6.0f%% | %17.1f%% | %23.1f%%%n",
                    100 * FRACTIONS[i], 100 * obd[i], 100 * magnitude[i]);
        }
        for (int i = FRACTIONS.length - 4; i < FRACTIONS.length; i++) {
            System.out.printf(
                    "%6.0f%% | %17.1f%% | %23.1f%%%n",
                    100 * FRACTIONS[i], 100 * obd[i], 100 * magnitude[i]);
        }
        System.out.printf(
                "most removed within 1 point of the unpruned accuracy: OBD %.0f%%, magnitude"
                        + " %.0f%%%n",
                100 * lastWithin(obd, 0.01), 100 * lastWithin(magnitude, 0.01));
    }

    /** The largest fraction up to which the accuracy stays within {@code drop} of the first. */
    private static double lastWithin(double[] accuracy, double drop) {
        int last = 0;
        while (last + 1 < accuracy.length && accuracy[last + 1] >= accuracy[0] - drop) {
            last++;
        }
        return FRACTIONS[last];
    }

    private static void plot(double[] obd, double[] magnitude, Path figure) throws IOException {
        double[] percent = new double[FRACTIONS.length];
        for (int i = 0; i < percent.length; i++) {
            percent[i] = 100 * FRACTIONS[i];
        }
        XYChart chart =
                new XYChartBuilder()
                        .width(900)
                        .height(560)
                        .title(
                                "One-shot pruning of a 2-64-64-3 ReLU classifier of three"
                                        + " overlapping spirals")
                        .xAxisTitle("weights removed (%)")
                        .yAxisTitle("test accuracy (%)")
                        .build();
        XYStyler styler = chart.getStyler();
        styler.setLegendPosition(Styler.LegendPosition.InsideSW);
        styler.setYAxisMin(0.0);
        styler.setYAxisMax(100.0);
        styler.setXAxisMin(0.0);
        styler.setXAxisMax(100.0);
        styler.setChartBackgroundColor(java.awt.Color.WHITE);
        styler.setPlotGridLinesVisible(true);
        XYSeries obdSeries =
                chart.addSeries(
                        "Optimal Brain Damage: H_ii w_i^2 / 2, exact dataset diagonal",
                        percent,
                        scaled(obd));
        obdSeries.setMarker(SeriesMarkers.CIRCLE);
        XYSeries magnitudeSeries =
                chart.addSeries("weight magnitude: |w_i|", percent, scaled(magnitude));
        magnitudeSeries.setMarker(SeriesMarkers.DIAMOND);
        double[] chance = new double[percent.length];
        Arrays.fill(chance, 100.0 / CLASSES);
        XYSeries chanceSeries = chart.addSeries("chance", percent, chance);
        chanceSeries.setMarker(SeriesMarkers.NONE);
        chanceSeries.setLineStyle(new java.awt.BasicStroke(1f));
        chanceSeries.setLineColor(java.awt.Color.GRAY);
        Path parent = figure.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        BitmapEncoder.saveBitmapWithDPI(
                chart, figure.toString(), BitmapEncoder.BitmapFormat.PNG, 110);
    }

    private static double[] scaled(double[] fractions) {
        double[] percent = new double[fractions.length];
        for (int i = 0; i < percent.length; i++) {
            percent[i] = 100 * fractions[i];
        }
        return percent;
    }

    /** The weights of a model, their saliencies and their removal. */
    private static final class Pruning {

        private final List<Parameter> weights = new ArrayList<>();
        private final List<float[]> original = new ArrayList<>();
        private final List<float[]> curvature = new ArrayList<>();

        Pruning(Block block, NDList diagonal) {
            int i = 0;
            for (Pair<String, Parameter> entry : block.getParameters()) {
                if (entry.getValue().getType() == Parameter.Type.WEIGHT) {
                    weights.add(entry.getValue());
                    original.add(entry.getValue().getArray().toFloatArray());
                    curvature.add(diagonal.get(i).toFloatArray());
                }
                i++;
            }
        }

        /** Accuracy on {@code test} at every fraction, ranking by OBD saliency or magnitude. */
        double[] sweep(boolean obd, Block block, ArrayDataset test, NDManager manager) {
            int total = 0;
            for (float[] values : original) {
                total += values.length;
            }
            double[] scores = new double[total];
            int[] owner = new int[total];
            int[] index = new int[total];
            int k = 0;
            for (int p = 0; p < original.size(); p++) {
                float[] w = original.get(p);
                float[] h = curvature.get(p);
                for (int i = 0; i < w.length; i++) {
                    scores[k] = obd ? 0.5 * h[i] * w[i] * w[i] : Math.abs(w[i]);
                    owner[k] = p;
                    index[k] = i;
                    k++;
                }
            }
            Integer[] order = new Integer[total];
            for (int i = 0; i < total; i++) {
                order[i] = i;
            }
            Arrays.sort(order, (a, b) -> Double.compare(scores[a], scores[b]));
            double[] accuracy = new double[FRACTIONS.length];
            for (int f = 0; f < FRACTIONS.length; f++) {
                List<float[]> pruned = new ArrayList<>();
                for (float[] values : original) {
                    pruned.add(values.clone());
                }
                int removed = (int) Math.round(FRACTIONS[f] * total);
                for (int r = 0; r < removed; r++) {
                    pruned.get(owner[order[r]])[index[order[r]]] = 0;
                }
                write(pruned);
                accuracy[f] = accuracy(block, test, manager);
            }
            write(original);
            return accuracy;
        }

        private void write(List<float[]> values) {
            for (int p = 0; p < weights.size(); p++) {
                weights.get(p).getArray().set(FloatBuffer.wrap(values.get(p)));
            }
        }
    }
}
