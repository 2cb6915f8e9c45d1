/**
 * Runnable examples and benchmarks of Secorder: {@link
 * org.secorder.examples.HessianDiagonalExample} walks through the specification's Hessian diagonal
 * examples, {@link org.secorder.examples.DiagonalBenchmark} times the exact diagonal of small MLPs
 * against plain gradient evaluations, and {@link org.secorder.examples.PruningExample} prunes a
 * classifier by Optimal Brain Damage and by weight magnitude and plots both.
 */
package org.secorder.examples;
