package org.secorder.structured.internal.recurrent;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;

/**
 * The plain recurrent cell: {@code h = tanh(u + v)} or {@code h = relu(u + v)}.
 *
 * <p>One local coordinate per unit: the pre-activation {@code a = u + v}.
 */
final class RnnCell extends Cell {

    private final boolean relu;

    /**
     * Creates the cell.
     *
     * @param relu whether the activation is ReLU (else tanh)
     */
    RnnCell(boolean relu) {
        this.relu = relu;
    }

    /** {@inheritDoc} */
    @Override
    int gates() {
        return 1;
    }

    /** {@inheritDoc} */
    @Override
    int states() {
        return 1;
    }

    /** {@inheritDoc} */
    @Override
    NDList forward(NDArray u, NDArray v, NDList previous) {
        NDArray a = u.add(v);
        NDArray h = relu ? a.getNDArrayInternal().relu() : a.tanh();
        return new NDList(h, h);
    }

    /** {@inheritDoc} */
    @Override
    NDList slopes(NDList cache, NDList previous) {
        NDArray h = cache.get(0);
        return new NDList(relu ? h.gt(0).toType(h.getDataType(), false) : tanhSlope(h));
    }

    /** {@inheritDoc} */
    @Override
    NDArray[] backward(NDList slopes, NDList adjoints) {
        NDArray da = adjoints.get(0).mul(slopes.get(0));
        return new NDArray[] {da, da, null};
    }

    /** {@inheritDoc} */
    @Override
    boolean hasCurvature() {
        return !relu;
    }

    /** {@inheritDoc} */
    @Override
    int localSize() {
        return 1;
    }

    /** {@inheritDoc} */
    @Override
    NDArray localHessian(NDList cache, NDList previous, NDList adjoints) {
        NDArray[][] h = {{adjoints.get(0).mul(tanhCurve(cache.get(0)))}};
        return assemble(h, adjoints.get(0));
    }

    /** {@inheritDoc} */
    @Override
    int coordinateU(int coordinate) {
        return 0;
    }

    /** {@inheritDoc} */
    @Override
    int coordinateV(int coordinate) {
        return 0;
    }

    /** {@inheritDoc} */
    @Override
    int coordinateState(int coordinate) {
        return -1;
    }
}
