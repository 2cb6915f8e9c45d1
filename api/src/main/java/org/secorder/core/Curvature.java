package org.secorder.core;

/**
 * Which curvature matrix of a loss a computation works with.
 *
 * <p>This is a different matrix, not a different way of computing the same one: the generalized
 * Gauss-Newton matrix leaves out the curvature of the model's own nonlinearities and is never
 * indefinite where the loss is convex in the model's output.
 */
public enum Curvature {
    /** The Hessian: all second derivatives of the loss with respect to the parameters. */
    HESSIAN,
    /**
     * The generalized Gauss-Newton matrix {@code J^T H_loss J}: {@code J} the Jacobian of the
     * model's output with respect to the parameters, {@code H_loss} the Hessian of the loss with
     * respect to the model's output.
     */
    GGN
}
