package org.secorder.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/** One way to compute the diagonals of a call's parameters. */
interface DiagonalSource {

    /**
     * Computes diagonals.
     *
     * @param active the indices of the parameters that require gradients, ascending
     * @param work the manager to attach the diagonals to
     * @return one diagonal per parameter, or {@code null} where none was computed or the loss does
     *     not depend on the parameter
     */
    NDArray[] compute(int[] active, NDManager work);
}
