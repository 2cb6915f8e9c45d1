/**
 * Exact Hessian and generalized Gauss-Newton diagonals of a model's loss by backward propagation of
 * a signed symmetric factorization of the Hessian with respect to each block's output.
 *
 * <p>The entry point is {@link org.secorder.structured.StructuredDiagonal}. Every rule is explicit
 * first-order arithmetic on DJL's public operators, so the same code runs on every engine; only
 * pooling blocks, whose window settings DJL keeps inside a lambda, take their vector-Jacobian
 * products from the engine's first-order autograd.
 */
package org.secorder.structured;
