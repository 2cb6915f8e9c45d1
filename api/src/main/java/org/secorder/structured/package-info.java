/**
 * Exact Hessian and generalized Gauss-Newton diagonals of a model's loss by backward propagation of
 * a signed symmetric factorization of the Hessian with respect to each block's output.
 *
 * <p>The entry point is {@link org.secorder.structured.StructuredDiagonal}. Each block is handled
 * by a rule of a table, {@link org.secorder.structured.BlockRules}, found by the block's class (or
 * a superclass), to which users add rules for their own block classes through {@link
 * org.secorder.structured.BlockRule} and {@link org.secorder.structured.BlockDerivatives}. Every
 * built-in rule is explicit first-order arithmetic on DJL's public operators, so the same code runs
 * on every engine; only pooling blocks, whose window settings DJL keeps inside a lambda, take their
 * vector-Jacobian products from the engine's first-order autograd. What is not API lives in the
 * {@code internal} sub-packages: {@code columns} (column algebra), {@code propagation} (the
 * quantity and the structural layers), {@code rules} (one class per kind of block), {@code
 * recurrent} (DJL's LSTM, GRU and RNN: their cell equations unrolled over time), {@code losses} and
 * {@code recognition} (the rule table and the probes).
 */
package org.secorder.structured;
