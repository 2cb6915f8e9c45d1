/**
 * Stochastic estimators of the diagonal and the trace of a curvature operator: probe generation,
 * Hutchinson's estimators, XDiag and Hutch++, and the Monte-Carlo generalized Gauss-Newton
 * diagonal. Not public API: use {@link org.secorder.core.HessianDiagonal} and {@link
 * org.secorder.core.HessianTrace}.
 *
 * <p>The estimators see the operator only through products with vectors. Probes are drawn on the
 * host from {@link java.util.SplittableRandom} (same seed, same probes on every engine and device),
 * copied to each parameter's device and data type in batches, and the statistics are accumulated on
 * the host in float64.
 */
package org.secorder.estimation.internal;
