package org.secorder.training;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;
import ai.djl.training.dataset.Batch;
import ai.djl.training.loss.Loss;
import ai.djl.training.util.ProgressBar;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import org.secorder.core.HessianDiagonal;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Hessian diagonal of a model's loss averaged over a whole dataset: the diagonal of {@code (1 /
 * N) sum_n loss_n} over all {@code N} examples, computed batch by batch.
 *
 * <p>DJL's losses are means over the examples of a batch, so the diagonal of batch {@code b} of
 * {@code n_b} examples is weighted by {@code n_b / N}; a smaller last batch counts for what it
 * holds. Memory is that of one batch's diagonal plus one running sum per parameter.
 *
 * <pre>{@code
 * NDList diagonal =
 *         DatasetCurvature.hessianDiagonal(model, loss, dataset.getData(manager));
 * DatasetCurvature.save(diagonal, Paths.get("curvature.ndlist"));
 * }</pre>
 *
 * <p>Batches are closed once used, as {@link ai.djl.training.EasyTrain} closes the batches of
 * {@link ai.djl.training.Trainer#iterateDataset}; {@link Builder#optCloseBatches(boolean)} keeps
 * them open.
 */
public final class DatasetCurvature {

    private static final Logger LOGGER = LoggerFactory.getLogger(DatasetCurvature.class);

    private final HessianDiagonal diagonal;
    private final boolean progressBar;
    private final boolean closeBatches;

    DatasetCurvature(Builder builder) {
        diagonal =
                builder.diagonal != null
                        ? builder.diagonal
                        : HessianDiagonal.builder().optMethod(builder.method).build();
        progressBar = builder.progressBar;
        closeBatches = builder.closeBatches;
    }

    /**
     * Computes the exact Hessian diagonal of a model's loss averaged over all the batches, with the
     * default configuration.
     *
     * @param model an initialized block
     * @param loss a loss that is a mean over the examples of a batch, as DJL's losses are
     * @param batches the dataset, for example {@code dataset.getData(manager)}; each batch is
     *     closed once used
     * @return one diagonal per entry of {@code model.getParameters()}, in that order, named by it
     */
    public static NDList hessianDiagonal(Block model, Loss loss, Iterable<Batch> batches) {
        return builder().build().compute(model, loss, batches);
    }

    /**
     * Creates a builder to configure a {@code DatasetCurvature}.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Computes the Hessian diagonal of a model's loss averaged over all the batches.
     *
     * @param model an initialized block
     * @param loss a loss that is a mean over the examples of a batch, as DJL's losses are
     * @param batches the dataset, for example {@code dataset.getData(manager)}
     * @return one diagonal per entry of {@code model.getParameters()}, in that order, each named by
     *     its parameter's name and attached to the parameter's manager
     * @throws IllegalArgumentException if an argument is null, there are no batches or a batch is
     *     empty
     */
    public NDList compute(Block model, Loss loss, Iterable<Batch> batches) {
        validate(model, loss, batches);
        long start = System.nanoTime();
        String[] names = ModelArrays.names(model);
        NDArray first = ModelArrays.firstParameter(model);
        ProgressBar bar = null;
        if (progressBar) {
            bar = new ProgressBar();
            if (batches instanceof Collection) {
                bar.reset("Curvature", ((Collection<?>) batches).size());
            }
        }
        long examples = 0;
        long count = 0;
        try (NDManager work = first.getManager().newSubManager()) {
            NDArray[] sums = new NDArray[names.length];
            for (Batch batch : batches) {
                try {
                    int size = batch.getSize();
                    if (size <= 0) {
                        throw new IllegalArgumentException(
                                "batches: batch "
                                        + count
                                        + " holds no examples (size "
                                        + size
                                        + ")");
                    }
                    accumulate(model, loss, batch, size, sums, work);
                    examples += size;
                    count++;
                    if (bar != null) {
                        progress(bar, batches, batch, count);
                    }
                } finally {
                    if (closeBatches) {
                        batch.close();
                    }
                }
            }
            if (bar != null) {
                bar.end();
            }
            if (count == 0) {
                throw new IllegalArgumentException(
                        "batches must hold at least one batch, got none");
            }
            NDList result = new NDList(names.length);
            for (int i = 0; i < names.length; i++) {
                NDArray mean = sums[i].div(examples);
                mean.setName(names[i]);
                result.add(mean);
            }
            for (NDArray mean : result) {
                mean.attach(first.getManager());
            }
            if (LOGGER.isDebugEnabled()) {
                LOGGER.debug(
                        "Hessian diagonal of {} examples in {} batches in {} ms",
                        examples,
                        count,
                        (System.nanoTime() - start) / 1_000_000);
            }
            return result;
        }
    }

    /** Moves the bar on by one batch: batches of a collection, else DJL's batch progress. */
    private static void progress(
            ProgressBar bar, Iterable<Batch> batches, Batch batch, long count) {
        if (batches instanceof Collection) {
            bar.update(count - 1);
            return;
        }
        if (count == 1) {
            bar.reset("Curvature", batch.getProgressTotal());
        }
        bar.update(batch.getProgress());
    }

    private static void validate(Block model, Loss loss, Iterable<Batch> batches) {
        if (model == null) {
            throw new IllegalArgumentException("model must not be null");
        }
        if (loss == null) {
            throw new IllegalArgumentException("loss must not be null");
        }
        if (batches == null) {
            throw new IllegalArgumentException("batches must not be null");
        }
        if (!model.isInitialized()) {
            throw new IllegalStateException(
                    "model must be initialized before its Hessian diagonal is computed");
        }
    }

    /** Adds {@code size} times one batch's diagonal to the running sums. */
    private void accumulate(
            Block model, Loss loss, Batch batch, int size, NDArray[] sums, NDManager work) {
        NDArray first = ModelArrays.firstParameter(model);
        try (NDManager scope = work.newSubManager()) {
            NDList inputs = ModelArrays.onDevice(batch.getData(), first.getDevice(), scope);
            NDList labels = ModelArrays.onDevice(batch.getLabels(), first.getDevice(), scope);
            NDList diagonals = diagonal.compute(model, loss, inputs, labels);
            diagonals.attach(scope);
            for (int i = 0; i < sums.length; i++) {
                NDArray weighted = diagonals.get(i).mul(size);
                if (sums[i] == null) {
                    sums[i] = weighted;
                    sums[i].attach(work);
                } else {
                    sums[i].addi(weighted);
                }
            }
        }
    }

    /**
     * Writes diagonals with their names in DJL's own encoding ({@link
     * NDList#encode(OutputStream)}).
     *
     * @param diagonals named diagonals, as {@link #compute} returns them
     * @param file the file to write
     * @throws IOException if the file cannot be written
     * @throws IllegalArgumentException if an array has no name
     */
    public static void save(NDList diagonals, Path file) throws IOException {
        if (file == null) {
            throw new IllegalArgumentException("file must not be null");
        }
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(file))) {
            save(diagonals, out);
        }
    }

    /**
     * Writes diagonals with their names in DJL's own encoding ({@link
     * NDList#encode(OutputStream)}).
     *
     * @param diagonals named diagonals, as {@link #compute} returns them
     * @param out the stream to write to; left open
     * @throws IOException if the stream cannot be written
     * @throws IllegalArgumentException if an array has no name
     */
    public static void save(NDList diagonals, OutputStream out) throws IOException {
        if (diagonals == null || diagonals.isEmpty()) {
            throw new IllegalArgumentException("diagonals must hold at least one array");
        }
        if (out == null) {
            throw new IllegalArgumentException("out must not be null");
        }
        for (int i = 0; i < diagonals.size(); i++) {
            String name = diagonals.get(i).getName();
            if (name == null || name.isEmpty()) {
                throw new IllegalArgumentException(
                        "diagonals: entry "
                                + i
                                + " has no name; name each array by its parameter's name");
            }
        }
        diagonals.encode(out);
    }

    /**
     * Reads diagonals that {@link #save} wrote, with their names.
     *
     * @param manager the manager of the arrays read
     * @param file the file to read
     * @return the diagonals, in the order they were saved; {@link NDList#get(String)} finds one by
     *     its parameter's name
     * @throws IOException if the file cannot be read
     */
    public static NDList load(NDManager manager, Path file) throws IOException {
        if (manager == null) {
            throw new IllegalArgumentException("manager must not be null");
        }
        if (file == null) {
            throw new IllegalArgumentException("file must not be null");
        }
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file))) {
            return NDList.decode(manager, in);
        }
    }

    /** Configures a {@link DatasetCurvature}; every setting is optional. */
    public static final class Builder {

        HessianDiagonal.Method method = HessianDiagonal.Method.AUTO;
        boolean methodSet;
        HessianDiagonal diagonal;
        boolean progressBar = true;
        boolean closeBatches = true;

        Builder() {}

        /**
         * Sets the method of each batch's diagonal; {@link HessianDiagonal.Method#AUTO} by default.
         *
         * @param method the method
         * @return this builder
         */
        public Builder optMethod(HessianDiagonal.Method method) {
            this.method = method;
            this.methodSet = true;
            return this;
        }

        /**
         * Sets the whole configuration of each batch's diagonal, instead of {@link #optMethod}.
         *
         * @param diagonal a configured {@link HessianDiagonal}
         * @return this builder
         */
        public Builder optHessianDiagonal(HessianDiagonal diagonal) {
            this.diagonal = diagonal;
            return this;
        }

        /**
         * Sets whether DJL's {@link ProgressBar} shows the progress through the batches; {@code
         * true} by default (it shows only where the number of batches is known, and DJL's {@code
         * DJL_DISABLE_PROGRESS_BAR} turns it off everywhere).
         *
         * @param progressBar whether to show a progress bar
         * @return this builder
         */
        public Builder optProgressBar(boolean progressBar) {
            this.progressBar = progressBar;
            return this;
        }

        /**
         * Sets whether each batch is closed once used; {@code true} by default, as {@link
         * ai.djl.training.EasyTrain} does.
         *
         * @param closeBatches whether to close the batches
         * @return this builder
         */
        public Builder optCloseBatches(boolean closeBatches) {
            this.closeBatches = closeBatches;
            return this;
        }

        /**
         * Builds the configured {@code DatasetCurvature}.
         *
         * @return the {@code DatasetCurvature}
         * @throws IllegalArgumentException if the settings contradict each other
         */
        public DatasetCurvature build() {
            if (method == null) {
                throw new IllegalArgumentException("method must not be null");
            }
            if (methodSet && diagonal != null) {
                throw new IllegalArgumentException(
                        "method: set either optMethod or optHessianDiagonal, not both");
            }
            return new DatasetCurvature(this);
        }
    }
}
