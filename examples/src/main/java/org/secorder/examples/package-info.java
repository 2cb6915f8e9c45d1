/**
 * Runnable examples and benchmarks of Secorder: {@link
 * org.secorder.examples.HessianDiagonalExample} walks through the specification's Hessian diagonal
 * examples; {@link org.secorder.examples.DiagonalBenchmark} times the exact diagonal of small MLPs
 * against plain gradient evaluations; {@link org.secorder.examples.StructuredBenchmark} the
 * structured methods on MLPs and a small convolutional network; and {@link
 * org.secorder.examples.ZooBenchmark} the structured methods on networks of DJL's model zoo.
 */
package org.secorder.examples;
