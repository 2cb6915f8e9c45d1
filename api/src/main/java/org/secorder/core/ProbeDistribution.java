package org.secorder.core;

/**
 * The distribution of the entries of the random probe vectors of stochastic estimators. Both have
 * independent entries of mean zero and variance one, so both give unbiased estimates; Rademacher
 * probes give the smaller variance for Hutchinson's estimators (they leave out the {@code 2 A_ii^2}
 * that Gaussian probes add to each diagonal element's variance).
 */
public enum ProbeDistribution {
    /** Entries {@code +1} or {@code -1} with equal probability. */
    RADEMACHER,
    /** Standard Gaussian entries. */
    GAUSSIAN
}
