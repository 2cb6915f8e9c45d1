/**
 * Curvature inside DJL training loops: a {@link org.secorder.training.CurvatureListener} that
 * tracks the Hessian diagonal while a model trains, the diagonal of a whole dataset ({@link
 * org.secorder.training.DatasetCurvature}), and the {@link org.secorder.training.AdaHessian}
 * optimizer.
 */
package org.secorder.training;
