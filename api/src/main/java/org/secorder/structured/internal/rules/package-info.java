/**
 * Block rules: one class per kind of block, knowing only its derivatives: its forward pass, its
 * transposed Jacobian with respect to its input, the squared products with its parameter Jacobians,
 * and the curvature of its own nonlinearity. Not API.
 */
package org.secorder.structured.internal.rules;
