package org.secorder.structured.internal.recurrent;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Activation;

/**
 * The GRU cell of PyTorch and MXNet, gates in the order reset, update, new: {@code r = sigmoid(u_r
 * + v_r)}, {@code z = sigmoid(u_z + v_z)}, {@code n = tanh(u_n + r v_n)}, {@code h = (1 - z) n + z
 * h'}.
 *
 * <p>Local coordinates per unit: {@code a_r = u_r + v_r}, {@code a_z = u_z + v_z}, {@code u_n},
 * {@code v_n} and the previous state {@code h'}.
 */
final class GruCell extends Cell {

    /** {@inheritDoc} */
    @Override
    int gates() {
        return 3;
    }

    /** {@inheritDoc} */
    @Override
    int states() {
        return 1;
    }

    /** {@inheritDoc} */
    @Override
    NDList forward(NDArray u, NDArray v, NDList previous) {
        NDList us = split(u, 3);
        NDList vs = split(v, 3);
        NDArray r = Activation.sigmoid(us.get(0).add(vs.get(0)));
        NDArray z = Activation.sigmoid(us.get(1).add(vs.get(1)));
        NDArray vn = vs.get(2);
        NDArray n = us.get(2).add(r.mul(vn)).tanh();
        NDArray h = n.add(z.mul(previous.get(0).sub(n)));
        return new NDList(h, r, z, n, vn);
    }

    /** {@inheritDoc} */
    @Override
    NDList slopes(NDList cache, NDList previous) {
        NDArray r = cache.get(0);
        NDArray z = cache.get(1);
        NDArray n = cache.get(2);
        NDArray vn = cache.get(3);
        // dp = dh (1 - z) tanh'(p); du = (dp r' vn, dh (h' - n) z', dp); dv likewise with dp r
        NDArray p = z.neg().add(1).mul(tanhSlope(n));
        NDArray reset = p.mul(vn).mul(sigmoidSlope(r));
        NDArray update = previous.get(0).sub(n).mul(sigmoidSlope(z));
        return new NDList(concatLast(reset, update, p), concatLast(reset, update, p.mul(r)), z);
    }

    /** {@inheritDoc} */
    @Override
    NDArray[] backward(NDList slopes, NDList adjoints) {
        NDArray dh = adjoints.get(0);
        NDArray repeated = concatLast(dh, dh, dh);
        return new NDArray[] {
            repeated.mul(slopes.get(0)), repeated.mul(slopes.get(1)), dh.mul(slopes.get(2))
        };
    }

    /** {@inheritDoc} */
    @Override
    boolean hasCurvature() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    int localSize() {
        return 5;
    }

    /** {@inheritDoc} */
    @Override
    NDArray localHessian(NDList cache, NDList previous, NDList adjoints) {
        NDArray r = cache.get(0);
        NDArray z = cache.get(1);
        NDArray n = cache.get(2);
        NDArray vn = cache.get(3);
        NDArray gh = adjoints.get(0);
        NDArray rSlope = sigmoidSlope(r);
        NDArray zSlope = sigmoidSlope(z);
        NDArray nSlope = tanhSlope(n);
        NDArray keep = z.neg().add(1);
        // p = u_n + r v_n, its gradient in local coordinates (a_r, a_z, u_n, v_n, h')
        NDArray[] gradP = {rSlope.mul(vn), null, null, r, null};
        NDArray one = gh.onesLike();
        gradP[2] = one;
        NDArray[][] h = new NDArray[5][5];
        // gh (1 - z) d2n, n = tanh(p): tanh''(p) dp dp^T + tanh'(p) d2p
        NDArray outer = gh.mul(keep).mul(tanhCurve(n));
        for (int p = 0; p < 5; p++) {
            for (int q = p; q < 5; q++) {
                if (gradP[p] != null && gradP[q] != null) {
                    add(h, p, q, outer.mul(gradP[p]).mul(gradP[q]));
                }
            }
        }
        NDArray inner = gh.mul(keep).mul(nSlope);
        add(h, 0, 0, inner.mul(sigmoidCurve(r)).mul(vn));
        add(h, 0, 3, inner.mul(rSlope));
        // -gh z' (e_z dn^T + dn e_z^T), dn = tanh'(p) dp
        NDArray cross = gh.mul(zSlope).mul(nSlope).neg();
        for (int q = 0; q < 5; q++) {
            if (gradP[q] != null) {
                add(h, Math.min(1, q), Math.max(1, q), cross.mul(gradP[q]));
            }
        }
        // gh z'' (h' - n) e_z e_z^T + gh z' (e_z e_h'^T + e_h' e_z^T)
        add(h, 1, 1, gh.mul(sigmoidCurve(z)).mul(previous.get(0).sub(n)));
        add(h, 1, 4, gh.mul(zSlope));
        return assemble(h, gh);
    }

    /** {@inheritDoc} */
    @Override
    int coordinateU(int coordinate) {
        return coordinate < 3 ? coordinate : -1;
    }

    /** {@inheritDoc} */
    @Override
    int coordinateV(int coordinate) {
        return coordinate < 2 ? coordinate : coordinate == 3 ? 2 : -1;
    }

    /** {@inheritDoc} */
    @Override
    int coordinateState(int coordinate) {
        return coordinate == 4 ? 0 : -1;
    }
}
