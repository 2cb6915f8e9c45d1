package org.secorder.engine;

import ai.djl.ndarray.NDArray;

/**
 * The differentiation primitives that DJL's public API does not offer, one implementation per
 * engine.
 *
 * <p>This is the only engine-specific seam of Secorder: everything else speaks DJL's API. No method
 * may touch the gradient buffers, names or flags of the arrays it is given.
 */
public interface SecondOrderEngine {

    /**
     * Returns the name of the DJL engine this adapter serves, as {@code Engine.getEngineName()}
     * spells it.
     *
     * @return the engine name
     */
    String getEngineName();

    /**
     * Returns whether the engine differentiates its operators twice in general, so that a block
     * without a structured rule can have its own curvature taken by double backward: true for
     * PyTorch, whose autograd differentiates every operator twice; false for MXNet, where only some
     * operators have second derivatives (there the structured Hessian keeps refusing such a block,
     * and the methods that need double backward fail with a message naming the operator).
     *
     * @return whether double backward works through the engine's operators in general
     */
    boolean differentiatesTwice();

    /**
     * Switches gradient recording of the calling thread on or off.
     *
     * <p>While recording is on, nothing the engine records may refer to memory that the JVM can
     * free: an adapter whose engine makes arrays from Java memory gives them memory of the engine's
     * own while the scope is open.
     *
     * @param enabled whether operations should be recorded for differentiation
     * @return a scope that restores the previous recording state when closed
     */
    RecordingScope recording(boolean enabled);

    /**
     * Switches the calling thread's training mode, where the engine keeps one, to that of a model's
     * forward pass: MXNet's BatchNorm, Dropout and recurrent operators refuse a pass whose {@code
     * training} argument differs from the engine's mode.
     *
     * @param training whether the forward pass runs in training mode
     * @return a scope that restores the previous mode when closed
     */
    RecordingScope trainingMode(boolean training);

    /**
     * Computes the first derivatives of a scalar loss without writing to any gradient buffer. The
     * recorded graph is kept, so that arrays it computed can be differentiated again.
     *
     * @param loss a scalar computed while recording was on
     * @param variables arrays that require gradients
     * @param createGraph whether the returned gradients must themselves be differentiable
     * @return one gradient per variable, attached to the loss's manager, or {@code null} for a
     *     variable the loss does not depend on
     */
    NDArray[] gradient(NDArray loss, NDArray[] variables, boolean createGraph);

    /**
     * Computes, by double backward, the exact diagonal of each variable's own block of the Hessian
     * of a scalar loss, without writing to any gradient buffer.
     *
     * @param loss a scalar computed while recording was on
     * @param variables arrays that require gradients
     * @param createGraph whether the returned diagonals must themselves be differentiable
     * @return one diagonal per variable, shaped like it and attached to the loss's manager, or
     *     {@code null} for a variable the loss does not depend on
     * @throws UnsupportedOperationException if the engine cannot differentiate the loss twice; the
     *     message names the operator that failed
     */
    NDArray[] hessianDiagonal(NDArray loss, NDArray[] variables, boolean createGraph);

    /**
     * Computes exact Hessian-vector products of a scalar loss by double backward, without writing
     * to any gradient buffer. The Hessian is that of the loss with respect to the variables
     * together; each product is computed from one recorded gradient.
     *
     * @param loss a scalar computed while recording was on
     * @param variables arrays that require gradients
     * @param vectors one group per product, each with one array per variable, shaped like it
     * @param createGraph whether the returned products must themselves be differentiable
     * @return one group of products per group of vectors, one array per variable, shaped like it
     *     and attached to the loss's manager, or {@code null} for a variable the loss does not
     *     depend on
     * @throws UnsupportedOperationException if the engine cannot differentiate the loss twice; the
     *     message names the operator that failed
     */
    NDArray[][] hessianVectorProducts(
            NDArray loss, NDArray[] variables, NDArray[][] vectors, boolean createGraph);

    /**
     * Computes exact products of the generalized Gauss-Newton matrix {@code J^T H_loss J} with
     * vectors, {@code J} the Jacobian of a model's output with respect to the variables and {@code
     * H_loss} the Hessian of the loss with respect to that output, without writing to any gradient
     * buffer.
     *
     * @param loss a scalar computed from {@code output} while recording was on
     * @param output the model's output, recorded
     * @param variables arrays that require gradients
     * @param vectors one group per product, each with one array per variable, shaped like it
     * @param createGraph whether the returned products must themselves be differentiable
     * @return one group of products per group of vectors, laid out as by {@link
     *     #hessianVectorProducts}, {@code null} for a variable the output does not depend on
     * @throws UnsupportedOperationException if the engine has no route by its own autograd; the
     *     message names what is missing
     */
    NDArray[][] gaussNewtonVectorProducts(
            NDArray loss,
            NDArray output,
            NDArray[] variables,
            NDArray[][] vectors,
            boolean createGraph);
}
