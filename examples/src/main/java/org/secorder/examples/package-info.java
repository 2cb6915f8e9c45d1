/**
 * Runnable examples and benchmarks of Secorder: {@link
 * org.secorder.examples.HessianDiagonalExample} walks through the specification's Hessian diagonal
 * examples, and {@link org.secorder.examples.DiagonalBenchmark} times the exact diagonal of small
 * MLPs against plain gradient evaluations.
 */
package org.secorder.examples;
