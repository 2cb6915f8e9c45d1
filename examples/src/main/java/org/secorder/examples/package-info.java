/**
 * Runnable examples and benchmarks of Secorder: {@link
 * org.secorder.examples.HessianDiagonalExample} walks through the specification's Hessian diagonal
 * examples; {@link org.secorder.examples.DiagonalBenchmark} times the exact diagonal of small MLPs
 * against plain gradient evaluations; {@link org.secorder.examples.StructuredBenchmark} the
 * structured methods on MLPs and a small convolutional network; {@link
 * org.secorder.examples.ZooBenchmark} the structured methods on networks of DJL's model zoo; {@link
 * org.secorder.examples.RecurrentBenchmark} on LSTM, GRU and RNN classifiers; {@link
 * org.secorder.examples.ProductBenchmark} Hessian- and GGN-vector products; {@link
 * org.secorder.examples.EstimatorBenchmark} the stochastic estimators' error against their cost;
 * and {@link org.secorder.examples.PruningExample} prunes a classifier by Optimal Brain Damage and
 * by weight magnitude and plots both; {@link org.secorder.examples.CudaCheck} compares the
 * structured and double-backward diagonals on a CUDA device with the CPU's.
 */
package org.secorder.examples;
