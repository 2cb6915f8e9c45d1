package org.secorder.structured.internal.propagation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.ParameterStore;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.secorder.engine.SecondOrderEngine;
import org.secorder.structured.MemoryMeter;
import org.secorder.structured.internal.columns.ColumnSet;
import org.secorder.structured.internal.columns.DenseColumns;

/**
 * The state of one structured computation: where arrays live, the options, the running diagonals,
 * and the chunking of column sets under the memory budget.
 *
 * <p>Columns are split into chunks where a rule would otherwise hold more than the budget: every
 * column's contribution to the diagonals below is a sum of squares of its own, so chunks are
 * propagated to the bottom one after another.
 *
 * <p>Arrays that outlive one column chunk (forward activations, derivatives, parameters) are
 * registered with {@link #keep(NDArray)}; each chunk temporarily attaches them to its own scope, so
 * that every array derived from them during the chunk is freed when the chunk ends.
 */
public final class Propagation {

    /**
     * The most bytes of columns a chunk holds at once, for speed, whatever the budget: {@value
     * #SMALL_WORKING_SET} bytes, or {@value #LARGE_WORKING_SET} where glibc's allocator is told to
     * serve blocks up to four times that from its heap ({@code MALLOC_MMAP_THRESHOLD_} or {@code
     * glibc.malloc.mmap_threshold} in {@code GLIBC_TUNABLES}); see {@link #workingSetBytes}.
     */
    public static final long WORKING_SET_BYTES =
            workingSetBytes(
                    System.getenv("MALLOC_MMAP_THRESHOLD_"), System.getenv("GLIBC_TUNABLES"));

    private static final long SMALL_WORKING_SET = 16L << 20;
    private static final long LARGE_WORKING_SET = 32L << 20;

    private final NDManager manager;
    private final SecondOrderEngine engine;
    private final MemoryMeter meter;
    private final Accumulators accumulators;
    private final boolean training;
    private final ParameterStore parameterStore;
    private final List<NDArray> kept = new ArrayList<>();
    private final Set<NDArray> keptSet = Collections.newSetFromMap(new IdentityHashMap<>());
    private final long bytesPerElement;
    private final List<Runnable> endings = new ArrayList<>();
    private boolean splitting = true;

    /**
     * Creates the state of one computation.
     *
     * @param manager the manager of the computation's arrays, closed by the caller
     * @param engine the engine adapter, for the first-order products of pooling blocks
     * @param meter the memory budget and peak
     * @param perSample whether each sample keeps its own diagonal
     * @param batchSize the number of samples
     * @param training whether blocks run in training mode
     * @param dataType the data type of the columns
     */
    public Propagation(
            NDManager manager,
            SecondOrderEngine engine,
            MemoryMeter meter,
            boolean perSample,
            long batchSize,
            boolean training,
            DataType dataType) {
        this.manager = manager;
        this.engine = engine;
        this.meter = meter;
        this.training = training;
        this.bytesPerElement = dataType.getNumOfBytes();
        this.accumulators = new Accumulators(manager, perSample, batchSize);
        this.parameterStore = new ParameterStore(manager, false);
    }

    /**
     * Returns the engine adapter, for rules that take first-order products from autograd.
     *
     * @return the engine
     */
    public SecondOrderEngine getEngine() {
        return engine;
    }

    /**
     * Returns the running diagonals.
     *
     * @return the accumulators
     */
    public Accumulators getAccumulators() {
        return accumulators;
    }

    /**
     * Returns whether blocks run in training mode.
     *
     * @return the mode
     */
    public boolean isTraining() {
        return training;
    }

    /**
     * Returns the parameter store blocks run with.
     *
     * @return the store
     */
    public ParameterStore getParameterStore() {
        return parameterStore;
    }

    /**
     * Registers an array that column chunks compute from.
     *
     * @param array the array
     * @return the array
     */
    public NDArray keep(NDArray array) {
        if (keptSet.add(array)) {
            kept.add(array);
        }
        return array;
    }

    /**
     * Returns whether a layer may split the columns it gets into chunks: not inside the branches of
     * a sum, whose columns must stay whole until the branches are added.
     *
     * @return whether splitting is allowed
     */
    public boolean canSplit() {
        return splitting;
    }

    /**
     * Allows or forbids splitting.
     *
     * @param allowed whether layers may split columns into chunks
     * @return the previous setting
     */
    public boolean setSplitting(boolean allowed) {
        boolean previous = splitting;
        splitting = allowed;
        return previous;
    }

    /**
     * Returns how many columns fit a chunk when the chunk needs {@code fixed + k * perColumn}
     * elements at once for {@code k} columns.
     *
     * <p>A chunk stays within the memory budget, and also within {@link #WORKING_SET_BYTES} bytes:
     * larger chunks are not faster, since the C allocator maps every very large temporary afresh
     * from the system (measured here: an elementwise product of 64 MB took hundreds of times longer
     * than one of 16 MB), while smaller ones are reused. Where the fixed part alone fills the
     * working set, half of the working set is still left for columns, within the budget.
     *
     * @param fixed the elements needed whatever the number of columns
     * @param perColumn the elements each column adds
     * @return the number of columns per chunk, at least 1
     */
    public long columnsWithinLimit(long fixed, long perColumn) {
        long working = WORKING_SET_BYTES / bytesPerElement;
        // the working set is for speed, the budget is a bound: where the fixed part alone fills
        // the working set (a factor map of a large batch), half of it is still left for columns,
        // rather than one column per chunk repeating the fixed work
        long soft = Math.max(working, fixed + working / 2);
        long limit = Math.min(meter.getBudgetBytes() / bytesPerElement, soft);
        long available = limit - fixed;
        return Math.max(1, available / Math.max(1, perColumn));
    }

    /**
     * Returns how many array elements a piece of a rule's work may hold where the rule splits its
     * work itself, whatever the chunk: half the budget, and at most twice the working set.
     *
     * @return the element count
     */
    public long pieceElements() {
        long budget = meter.getBudgetBytes() / bytesPerElement;
        return Math.max(1, Math.min(budget / 2, 2 * WORKING_SET_BYTES / bytesPerElement));
    }

    /**
     * Records the column memory that one rule holds at once.
     *
     * @param elements the array elements of the columns held
     */
    public void observe(long elements) {
        meter.observe(elements * bytesPerElement);
    }

    /**
     * Calls an action on chunks of at most a number of columns, each in a scope of its own that
     * frees every array the action makes.
     *
     * @param columns the columns
     * @param perChunk the most columns per chunk
     * @param action what to do with each chunk
     */
    public void forEachChunk(ColumnSet columns, long perChunk, Consumer<ColumnSet> action) {
        long count = columns.getColumnCount();
        for (long from = 0; from < count; from += perChunk) {
            long to = Math.min(count, from + perChunk);
            try (NDManager scope = openScope(List.of())) {
                action.accept(columns.chunk(from, to, scope));
            }
        }
    }

    /**
     * Builds a column set and propagates it, in a scope that frees every array made on the way.
     *
     * @param source builds the set
     * @param next what to do with the set
     */
    public void run(Supplier<ColumnSet> source, Continuation next) {
        NDManager scope = openScope(List.of());
        try {
            ColumnSet columns = source.get();
            if (columns != null) {
                next.accept(columns);
            }
        } finally {
            scope.close();
        }
    }

    /**
     * Opens a scope that frees every array made in it, with the kept arrays and some others
     * temporarily attached to it.
     *
     * @param others arrays that the scope's work computes from, besides the kept ones
     * @return the scope, to be closed by the caller
     */
    public NDManager openScope(List<NDArray> others) {
        NDManager scope = manager.newSubManager();
        scope.tempAttachAll(kept.toArray(new NDArray[0]));
        scope.tempAttachAll(others.toArray(new NDArray[0]));
        return scope;
    }

    /**
     * Copies a column set into arrays of the computation, which outlive the scope it was made in.
     *
     * @param columns the columns
     * @return the copy, freed with the computation unless closed before
     */
    public DenseColumns retain(DenseColumns columns) {
        NDArray values = columns.getValues().duplicate();
        values.attach(manager);
        NDArray signs = columns.getSigns();
        if (signs != null) {
            signs = signs.duplicate();
            signs.attach(manager);
        }
        return new DenseColumns(values, signs, columns.getFeatureShape());
    }

    /**
     * Registers an action to run once every column set has been propagated, in the order
     * registered.
     *
     * @param action the action
     */
    public void atEnd(Runnable action) {
        endings.add(action);
    }

    /** Runs the actions registered with {@link #atEnd(Runnable)}. */
    public void finish() {
        for (Runnable action : endings) {
            action.run();
        }
        endings.clear();
    }

    /**
     * Returns the working set for glibc's mmap threshold as given by its two settings.
     *
     * <p>By default glibc maps every block above its threshold (at most 32 MiB) afresh from the
     * system and gives it back when freed, so a chunk's largest temporaries, a few times its
     * columns, must stay below that: with larger chunks an elementwise product of 64 MB took
     * hundreds of times longer than one of 16 MB, all of it in page faults. Where the threshold is
     * set to four times the large working set or more, those temporaries come from the heap and are
     * reused, and larger chunks are faster (measured: the GGN of DJL's NiN from about 11.5 to 9.4
     * gradients, of ResNetV1-18 from about 10 to 7.9); without that setting they are slower.
     *
     * @param threshold the value of {@code MALLOC_MMAP_THRESHOLD_}, or {@code null}
     * @param tunables the value of {@code GLIBC_TUNABLES}, or {@code null}
     * @return the working set in bytes
     */
    public static long workingSetBytes(String threshold, String tunables) {
        long bytes = parseBytes(threshold);
        if (tunables != null) {
            for (String tunable : tunables.split(":")) {
                String[] pair = tunable.split("=", 2);
                if (pair.length == 2 && "glibc.malloc.mmap_threshold".equals(pair[0].trim())) {
                    bytes = Math.max(bytes, parseBytes(pair[1]));
                }
            }
        }
        return bytes >= 4 * LARGE_WORKING_SET ? LARGE_WORKING_SET : SMALL_WORKING_SET;
    }

    private static long parseBytes(String value) {
        if (value == null) {
            return 0;
        }
        try {
            return Long.decode(value.trim());
        } catch (NumberFormatException e) {
            return 0;
        }
    }
}
