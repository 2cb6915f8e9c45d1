package org.secorder.structured.internal.recurrent;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Activation;

/**
 * The LSTM cell of PyTorch and MXNet, gates in the order input, forget, cell, output: {@code a = u
 * + v}, {@code i, f, o = sigmoid(a_i, a_f, a_o)}, {@code g = tanh(a_g)}, {@code c = f c' + i g},
 * {@code h = o tanh(c)}.
 *
 * <p>Local coordinates per unit: {@code a_i, a_f, a_g, a_o} and the previous cell {@code c'}.
 */
final class LstmCell extends Cell {

    /** {@inheritDoc} */
    @Override
    int gates() {
        return 4;
    }

    /** {@inheritDoc} */
    @Override
    int states() {
        return 2;
    }

    /** {@inheritDoc} */
    @Override
    NDList forward(NDArray u, NDArray v, NDList previous) {
        NDList a = split(u.add(v), 4);
        NDArray i = Activation.sigmoid(a.get(0));
        NDArray f = Activation.sigmoid(a.get(1));
        NDArray g = a.get(2).tanh();
        NDArray o = Activation.sigmoid(a.get(3));
        NDArray c = f.mul(previous.get(1)).add(i.mul(g));
        NDArray m = c.tanh();
        return new NDList(o.mul(m), c, i, f, g, o, m);
    }

    /** {@inheritDoc} */
    @Override
    NDList slopes(NDList cache, NDList previous) {
        NDArray i = cache.get(0);
        NDArray f = cache.get(1);
        NDArray g = cache.get(2);
        NDArray o = cache.get(3);
        NDArray m = cache.get(4);
        // dc = dc' + dh o tanh'(c); da = (dc, dc, dc, dh) * gates; dc_prev = dc f
        NDArray gates =
                concatLast(
                        g.mul(sigmoidSlope(i)),
                        previous.get(1).mul(sigmoidSlope(f)),
                        i.mul(tanhSlope(g)),
                        m.mul(sigmoidSlope(o)));
        return new NDList(o.mul(tanhSlope(m)), gates, f);
    }

    /** {@inheritDoc} */
    @Override
    NDArray[] backward(NDList slopes, NDList adjoints) {
        NDArray dh = adjoints.get(0);
        NDArray dc = adjoints.get(1).add(dh.mul(slopes.get(0)));
        NDArray da = concatLast(dc, dc, dc, dh).mul(slopes.get(1));
        return new NDArray[] {da, da, null, dc.mul(slopes.get(2))};
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
        NDArray i = cache.get(0);
        NDArray f = cache.get(1);
        NDArray g = cache.get(2);
        NDArray o = cache.get(3);
        NDArray m = cache.get(4);
        NDArray cp = previous.get(1);
        NDArray gh = adjoints.get(0);
        NDArray mSlope = tanhSlope(m);
        // the adjoint of c through both paths, and the gradient of c in local coordinates
        NDArray gc = adjoints.get(1).add(gh.mul(o).mul(mSlope));
        NDArray[] gradC = {
            sigmoidSlope(i).mul(g), sigmoidSlope(f).mul(cp), i.mul(tanhSlope(g)), null, f
        };
        NDArray[][] h = new NDArray[5][5];
        // gc d2c: i g and f c'
        add(h, 0, 0, gc.mul(sigmoidCurve(i)).mul(g));
        add(h, 0, 2, gc.mul(sigmoidSlope(i)).mul(tanhSlope(g)));
        add(h, 2, 2, gc.mul(i).mul(tanhCurve(g)));
        add(h, 1, 1, gc.mul(sigmoidCurve(f)).mul(cp));
        add(h, 1, 4, gc.mul(sigmoidSlope(f)));
        // gh d2h, h = o tanh(c): o tanh''(c) dc dc^T + o' tanh'(c) (e_o dc^T + dc e_o^T) + ...
        NDArray outer = gh.mul(o).mul(tanhCurve(m));
        NDArray cross = gh.mul(sigmoidSlope(o)).mul(mSlope);
        for (int p = 0; p < 5; p++) {
            if (gradC[p] == null) {
                continue;
            }
            for (int q = p; q < 5; q++) {
                if (gradC[q] != null) {
                    add(h, p, q, outer.mul(gradC[p]).mul(gradC[q]));
                }
            }
            add(h, Math.min(p, 3), Math.max(p, 3), cross.mul(gradC[p]));
        }
        add(h, 3, 3, gh.mul(sigmoidCurve(o)).mul(m));
        return assemble(h, gh);
    }

    /** {@inheritDoc} */
    @Override
    int coordinateU(int coordinate) {
        return coordinate < 4 ? coordinate : -1;
    }

    /** {@inheritDoc} */
    @Override
    int coordinateV(int coordinate) {
        return coordinateU(coordinate);
    }

    /** {@inheritDoc} */
    @Override
    int coordinateState(int coordinate) {
        return coordinate == 4 ? 1 : -1;
    }
}
