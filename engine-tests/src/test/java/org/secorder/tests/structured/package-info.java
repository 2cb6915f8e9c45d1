/**
 * Tests of the structured Hessian and generalized Gauss-Newton diagonals against independent ground
 * truth: double backward on PyTorch, float64 finite differences on MXNet, hand derivations.
 */
package org.secorder.tests.structured;
