package org.secorder.structured.internal.recurrent;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;

/**
 * The equations of one recurrent cell, one time step, for a batch, with its derivatives.
 *
 * <p>A step maps the two affine images {@code u = W_ih x_t + b_ih} and {@code v = W_hh h_{t-1} +
 * b_hh}, each {@code (N, G H)} with the {@code G} gates in the engines' order, and the previous
 * states (the hidden state {@code h} first) to the new states. Its own curvature lives in {@link
 * #localSize()} local coordinates per hidden unit (the gate pre-activations of that unit and its
 * previous states): {@link #localHessian} is the Hessian of the step's outputs weighted by their
 * adjoints in those coordinates, and {@link #coordinateU}, {@link #coordinateV}, {@link
 * #coordinateState} say where each coordinate sits.
 */
abstract class Cell {

    /**
     * Returns the number of gates {@code G}.
     *
     * @return the gates
     */
    abstract int gates();

    /**
     * Returns the number of states (1, or 2 for the hidden state and the cell of an LSTM).
     *
     * @return the states
     */
    abstract int states();

    /**
     * Runs one step.
     *
     * @param u {@code W_ih x_t + b_ih}, {@code (N, G H)}
     * @param v {@code W_hh h_{t-1} + b_hh}, {@code (N, G H)}
     * @param previous the previous states, {@code (N, H)} each
     * @return the new states, {@code (N, H)} each, then what {@link #backward} and {@link
     *     #localHessian} need, {@code (N, H)} each
     */
    abstract NDList forward(NDArray u, NDArray v, NDList previous);

    /**
     * Returns what {@link #backward} multiplies rows with, computed once per step.
     *
     * @param cache what {@link #forward} kept (after the new states), {@code (N, H)} each
     * @param previous the previous states, {@code (N, H)} each
     * @return the step's slopes
     */
    abstract NDList slopes(NDList cache, NDList previous);

    /**
     * Applies the step's transposed Jacobian to rows.
     *
     * @param slopes what {@link #slopes} returned, each with a row axis of size 1 after the batch
     * @param adjoints the rows on the new states, {@code (N, K, H)} each
     * @return the rows on {@code u} and on {@code v}, {@code (N, K, G H)} each (the same array
     *     where they are equal), then on the previous states through the step's direct paths,
     *     {@code (N, K, H)} each, {@code null} where there is none
     */
    abstract NDArray[] backward(NDList slopes, NDList adjoints);

    /**
     * Returns whether the step has curvature of its own.
     *
     * @return whether {@link #localHessian} is not zero
     */
    abstract boolean hasCurvature();

    /**
     * Returns the number {@code L} of local coordinates per hidden unit.
     *
     * @return the local coordinates
     */
    abstract int localSize();

    /**
     * Returns the Hessian of {@code sum adjoint . new states} with respect to each unit's local
     * coordinates.
     *
     * @param cache what {@link #forward} kept (after the new states), {@code (N, H)} each
     * @param previous the previous states, {@code (N, H)} each
     * @param adjoints the adjoints of the new states, {@code (N, H)} each
     * @return {@code (N, H, L, L)}
     */
    abstract NDArray localHessian(NDList cache, NDList previous, NDList adjoints);

    /**
     * Returns the gate of {@code u} that a local coordinate moves, or -1.
     *
     * @param coordinate the local coordinate
     * @return the gate
     */
    abstract int coordinateU(int coordinate);

    /**
     * Returns the gate of {@code v} that a local coordinate moves, or -1.
     *
     * @param coordinate the local coordinate
     * @return the gate
     */
    abstract int coordinateV(int coordinate);

    /**
     * Returns the previous state that a local coordinate is, or -1.
     *
     * @param coordinate the local coordinate
     * @return the state
     */
    abstract int coordinateState(int coordinate);

    /**
     * Returns the derivative of the logistic sigmoid from its value.
     *
     * @param s {@code sigmoid(a)}
     * @return {@code s (1 - s)}
     */
    static NDArray sigmoidSlope(NDArray s) {
        return s.mul(s.neg().add(1));
    }

    /**
     * Returns the second derivative of the logistic sigmoid from its value.
     *
     * @param s {@code sigmoid(a)}
     * @return {@code s (1 - s) (1 - 2 s)}
     */
    static NDArray sigmoidCurve(NDArray s) {
        return sigmoidSlope(s).mul(s.mul(-2).add(1));
    }

    /**
     * Returns the derivative of tanh from its value.
     *
     * @param t {@code tanh(a)}
     * @return {@code 1 - t^2}
     */
    static NDArray tanhSlope(NDArray t) {
        return t.square().neg().add(1);
    }

    /**
     * Returns the second derivative of tanh from its value.
     *
     * @param t {@code tanh(a)}
     * @return {@code -2 t (1 - t^2)}
     */
    static NDArray tanhCurve(NDArray t) {
        return tanhSlope(t).mul(t).mul(-2);
    }

    /**
     * Splits an {@code (..., G H)} array into its gates.
     *
     * @param array the array
     * @param gates the number of gates
     * @return the gates, {@code (..., H)} each
     */
    static NDList split(NDArray array, int gates) {
        return array.split(gates, array.getShape().dimension() - 1);
    }

    /**
     * Concatenates arrays along their last axis.
     *
     * @param parts the arrays
     * @return the concatenation
     */
    static NDArray concatLast(NDArray... parts) {
        return NDArrays.concat(new NDList(parts), parts[0].getShape().dimension() - 1);
    }

    /**
     * Adds a term to an entry of the upper triangle of a local Hessian.
     *
     * @param hessian the entries, {@code null} where zero
     * @param p the row, at most {@code q}
     * @param q the column
     * @param value the term
     */
    static void add(NDArray[][] hessian, int p, int q, NDArray value) {
        hessian[p][q] = hessian[p][q] == null ? value : hessian[p][q].add(value);
    }

    /**
     * Stacks the upper triangle of a local Hessian into the symmetric matrix.
     *
     * @param hessian the entries, {@code (N, H)} each, {@code null} where zero
     * @param like an {@code (N, H)} array for the zeros
     * @return {@code (N, H, L, L)}
     */
    static NDArray assemble(NDArray[][] hessian, NDArray like) {
        int size = hessian.length;
        NDArray zero = like.zerosLike();
        NDList rows = new NDList();
        for (int p = 0; p < size; p++) {
            NDList row = new NDList();
            for (int q = 0; q < size; q++) {
                NDArray entry = p <= q ? hessian[p][q] : hessian[q][p];
                row.add(entry == null ? zero : entry);
            }
            rows.add(NDArrays.stack(row, 2));
        }
        return NDArrays.stack(rows, 2);
    }
}
