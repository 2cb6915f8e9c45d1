/**
 * Curvature as a linear operator: the one abstraction that estimators, traces and eigenvalue
 * solvers are built on.
 */
package org.secorder.operator;
