package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.loss.Loss;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianDiagonal.Method;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * Two threads computing diagonals of separate problems at the same time both get their own,
 * correct, results (PyTorch: AUTOGRAD; MXNet, which cannot differentiate twice: FINITE_DIFFERENCE).
 */
public class ConcurrencyTest {

    private static final int ROUNDS = 40;
    private static final int SAMPLES = 4;
    private static final int FEATURES = 3;
    private static final float[] INPUTS = {
        0.5f, -1.2f, 0.8f, 1.5f, 0.3f, -0.4f, -0.9f, 2.2f, 0.1f, 1.1f, -0.6f, 0.7f
    };

    /**
     * Both threads get the closed-form diagonals of their own function and model, round after
     * round, and leave their parameters bit for bit as they were.
     *
     * @throws Exception if a thread fails or hangs
     */
    @Test
    public void twoThreadsComputeDiagonalsOfSeparateModelsCorrectly() throws Exception {
        Method method =
                EngineSupport.hasSecondDerivatives() ? Method.AUTOGRAD : Method.FINITE_DIFFERENCE;
        HessianDiagonal hessian = HessianDiagonal.builder().optMethod(method).build();
        double tolerance = FixtureSupport.tolerance(method);
        try (NDManager manager = NDManager.newBaseManager()) {
            CyclicBarrier start = new CyclicBarrier(2);
            ExecutorService pool = Executors.newFixedThreadPool(2);
            try {
                List<Future<Integer>> workers = new ArrayList<>();
                for (int k = 0; k < 2; k++) {
                    Worker worker = new Worker(manager, k, hessian, tolerance, start);
                    workers.add(pool.submit(worker::run));
                }
                for (Future<Integer> worker : workers) {
                    Assert.assertEquals(worker.get(2, TimeUnit.MINUTES).intValue(), ROUNDS);
                }
            } catch (ExecutionException e) {
                if (e.getCause() instanceof AssertionError) {
                    throw (AssertionError) e.getCause();
                }
                throw e;
            } finally {
                pool.shutdownNow();
            }
        }
    }

    /** One thread's problems: a function and a model, each with values of its own. */
    private static final class Worker {

        private final NDManager parent;
        private final int id;
        private final HessianDiagonal hessian;
        private final double tolerance;
        private final CyclicBarrier start;

        Worker(
                NDManager parent,
                int id,
                HessianDiagonal hessian,
                double tolerance,
                CyclicBarrier start) {
            this.parent = parent;
            this.id = id;
            this.hessian = hessian;
            this.tolerance = tolerance;
            this.start = start;
        }

        int run() throws Exception {
            try (NDManager manager = parent.newSubManager()) {
                // f = sum(exp(a x)): d2f/dx_i2 = a^2 exp(a x_i), with a of this thread
                float a = id == 0 ? 0.5f : -1.5f;
                float[] values = {0.25f * (id + 1), -0.5f, 1.0f, 0.1f * id};
                NDArray x = manager.create(values);
                x.setRequiresGradient(true);
                double[] functionDiagonal = new double[values.length];
                for (int i = 0; i < values.length; i++) {
                    functionDiagonal[i] = (double) a * a * Math.exp((double) a * values[i]);
                }
                // a linear model on inputs scaled by (id + 1): the diagonal scales by (id + 1)^2
                float scale = id + 1;
                float[] inputs = INPUTS.clone();
                for (int i = 0; i < inputs.length; i++) {
                    inputs[i] *= scale;
                }
                Block model = Linear.builder().setUnits(1).build();
                model.setInitializer(
                        (m, shape, type) -> m.randomNormal(shape), Parameter.Type.WEIGHT);
                model.initialize(manager, DataType.FLOAT32, new Shape(SAMPLES, FEATURES));
                NDArray input = manager.create(inputs, new Shape(SAMPLES, FEATURES));
                NDArray target = manager.ones(new Shape(SAMPLES, 1)).mul(id);
                // DJL's L2 loss, mean((p - t)^2) / 2: d2/dw_k2 = mean_n x_nk^2, d2/db2 = 1
                double[] weightDiagonal = new double[FEATURES];
                for (int n = 0; n < SAMPLES; n++) {
                    for (int k = 0; k < FEATURES; k++) {
                        double v = inputs[n * FEATURES + k];
                        weightDiagonal[k] += v * v / SAMPLES;
                    }
                }
                List<NDArray> parameters = new ArrayList<>(List.of(x));
                model.getParameters().forEach(p -> parameters.add(p.getValue().getArray()));
                List<byte[]> before = new ArrayList<>();
                for (NDArray parameter : parameters) {
                    before.add(parameter.toByteArray());
                }
                start.await(1, TimeUnit.MINUTES);
                for (int round = 0; round < ROUNDS; round++) {
                    try (NDList diagonal =
                            hessian.compute(() -> x.mul(a).exp().sum(), new NDList(x))) {
                        Assertions.assertClose(diagonal.get(0), functionDiagonal, tolerance);
                    }
                    try (NDList diagonal =
                            hessian.compute(
                                    model, Loss.l2Loss(), new NDList(input), new NDList(target))) {
                        Assertions.assertClose(diagonal.get(0), weightDiagonal, tolerance);
                        Assertions.assertClose(diagonal.get(1), new double[] {1}, tolerance);
                    }
                }
                for (int i = 0; i < parameters.size(); i++) {
                    Assert.assertEquals(
                            parameters.get(i).toByteArray(),
                            before.get(i),
                            "thread " + id + ": parameter " + i);
                }
                return ROUNDS;
            }
        }
    }
}
