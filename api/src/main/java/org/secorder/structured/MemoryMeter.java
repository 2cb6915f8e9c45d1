package org.secorder.structured;

/**
 * The memory budget of one structured computation and the peak the computation reached.
 *
 * <p>The budget bounds the factor columns that are alive at once: the columns entering a block, the
 * columns leaving it and the per-column products of its parameter rules. Columns are processed in
 * chunks so that this stays within the budget wherever a single column fits. Forward activations,
 * gradients and results are not counted; they are needed by any method, a plain gradient included.
 */
public final class MemoryMeter {

    private final long budgetBytes;
    private long peakBytes;
    private long observations;

    /**
     * Creates a meter with a budget.
     *
     * @param budgetBytes the most bytes of factor columns to hold at once, positive
     * @throws IllegalArgumentException if the budget is not positive
     */
    public MemoryMeter(long budgetBytes) {
        if (budgetBytes <= 0) {
            throw new IllegalArgumentException(
                    "memoryBudgetBytes must be positive, got " + budgetBytes);
        }
        this.budgetBytes = budgetBytes;
    }

    /**
     * Returns the budget.
     *
     * @return the budget in bytes
     */
    public long getBudgetBytes() {
        return budgetBytes;
    }

    /**
     * Returns the largest number of bytes of factor columns held at once so far.
     *
     * @return the peak in bytes
     */
    public long getPeakBytes() {
        return peakBytes;
    }

    /**
     * Records that a number of bytes of factor columns are held at once; called by the computation
     * while it runs.
     *
     * @param bytes the bytes held
     */
    public void observe(long bytes) {
        peakBytes = Math.max(peakBytes, bytes);
        observations++;
    }

    /**
     * Returns how many times a rule recorded the columns it held: once per block and chunk of
     * columns that passes through it, a measure of the work done that does not depend on timing.
     *
     * @return the number of observations so far
     */
    public long getObservationCount() {
        return observations;
    }
}
