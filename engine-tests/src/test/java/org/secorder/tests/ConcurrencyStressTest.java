package org.secorder.tests;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import ai.djl.training.loss.L2Loss;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianDiagonal.Method;
import org.secorder.tests.FixtureSupport.Fixture;
import org.secorder.tests.FixtureSupport.Variant;
import org.testng.Assert;
import org.testng.annotations.Test;

/**
 * Threads computing diagonals by every method at once, while the JVM collects garbage all the time
 * and other threads churn through arrays made from Java memory, each get the closed-form result of
 * every call.
 *
 * <p>Collections are what made wrong values out of memory that DJL 0.36.0 lets the JVM free while
 * an engine still uses it: on PyTorch the scalar of {@code y.pow(3)} or {@code L2Loss}'s weight,
 * saved in libtorch's graph; on MXNet the temporary buffer that {@code manager.create(double[])}
 * copies from. A thread that asks for a collection every few milliseconds makes such a bug show
 * within the first round instead of once in many runs. Every array of the test is made before that
 * thread starts, so that the test's own arrays cannot be hit by the MXNet copy.
 */
public class ConcurrencyStressTest {

    private static final int WORKERS = 4;
    private static final int ROUNDS = 3;
    private static final float[] TRAINED = {0.5f, -1.5f, 2.0f, 0.25f};

    /**
     * Four threads, two with base managers of their own and two sharing one, compute the diagonals
     * of a function and of a model by every method the engine has, and each result is the closed
     * form.
     *
     * @throws Exception if a thread fails or hangs
     */
    @Test
    public void everyMethodGivesClosedFormDiagonalsInManyThreadsWhileTheJvmCollects()
            throws Exception {
        try (NDManager shared = NDManager.newBaseManager()) {
            List<Worker> workers = new ArrayList<>();
            for (int k = 0; k < WORKERS; k++) {
                workers.add(new Worker(k, k % 2 == 0 ? null : shared));
            }
            try {
                runWithCompetition(workers, null);
            } finally {
                workers.forEach(Worker::close);
            }
        }
    }

    /**
     * A thread that trains with a {@link GradientCollector} of its own gets the closed-form
     * gradient in every step while two other threads compute diagonals, and they get theirs.
     *
     * @throws Exception if a thread fails or hangs
     */
    @Test
    public void diagonalsAndAnotherThreadsTrainingDoNotDisturbEachOther() throws Exception {
        try (NDManager shared = NDManager.newBaseManager();
                NDManager trainer = NDManager.newBaseManager()) {
            List<Worker> workers = List.of(new Worker(0, null), new Worker(1, shared));
            try {
                Assert.assertTrue(runWithCompetition(workers, trainer) > 0, "no training step");
            } finally {
                workers.forEach(Worker::close);
            }
        }
    }

    /** The methods this engine has, per API form. */
    private static List<Method> methods(Variant variant) {
        List<Method> methods = new ArrayList<>();
        if (EngineSupport.hasSecondDerivatives()) {
            methods.add(Method.AUTOGRAD);
        }
        methods.add(Method.FINITE_DIFFERENCE);
        if (variant == Variant.MODEL) {
            methods.add(Method.STRUCTURED);
            methods.add(Method.GGN);
        }
        return methods;
    }

    /**
     * Runs the workers from one barrier, next to a thread that asks for garbage collections, one
     * that makes and drops arrays from Java memory and, given a manager for it, one that trains;
     * fails with the first failure of any of them.
     *
     * @return the number of training steps taken
     */
    private static int runWithCompetition(List<Worker> workers, NDManager trainer)
            throws Exception {
        AtomicBoolean stop = new AtomicBoolean();
        CyclicBarrier start = new CyclicBarrier(workers.size());
        ExecutorService pool = Executors.newFixedThreadPool(workers.size() + 3);
        try {
            List<Future<Integer>> companions = new ArrayList<>();
            companions.add(pool.submit(() -> collect(stop)));
            companions.add(pool.submit(() -> churn(stop)));
            if (trainer != null) {
                NDArray template = trainer.create(TRAINED);
                companions.add(pool.submit(() -> train(template, stop)));
            }
            List<Future<Integer>> futures = new ArrayList<>();
            for (Worker worker : workers) {
                Callable<Integer> task =
                        () -> {
                            start.await(1, TimeUnit.MINUTES);
                            return worker.run();
                        };
                futures.add(pool.submit(task));
            }
            for (Future<Integer> future : futures) {
                Assert.assertTrue(future.get(5, TimeUnit.MINUTES) > 0);
            }
            stop.set(true);
            int steps = 0;
            for (Future<Integer> companion : companions) {
                steps = companion.get(1, TimeUnit.MINUTES);
            }
            return trainer == null ? 0 : steps;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof AssertionError) {
                throw (AssertionError) e.getCause();
            }
            throw e;
        } finally {
            stop.set(true);
            pool.shutdown();
            Assert.assertTrue(pool.awaitTermination(1, TimeUnit.MINUTES), "threads did not stop");
        }
    }

    /** Asks for a garbage collection every few milliseconds. */
    private static Integer collect(AtomicBoolean stop) throws InterruptedException {
        int collections = 0;
        while (!stop.get()) {
            System.gc();
            collections++;
            Thread.sleep(2);
        }
        return collections;
    }

    /** Makes small arrays from Java memory and closes them, so that freed memory is reused. */
    private static Integer churn(AtomicBoolean stop) {
        int arrays = 0;
        try (NDManager manager = NDManager.newBaseManager()) {
            float[] values = new float[16];
            while (!stop.get()) {
                values[arrays % values.length] = 1e6f * (arrays % 7 - 3);
                try (NDManager scope = manager.newSubManager()) {
                    scope.create(values).sum().getFloat();
                }
                arrays++;
            }
        }
        return arrays;
    }

    /**
     * Trains {@code f(x) = sum(x^3)}, written without DJL's {@code Number} operators, whose
     * gradient is {@code 3 x^2}, one collector per step, on copies of {@code template} made by the
     * engine.
     */
    private static Integer train(NDArray template, AtomicBoolean stop) {
        double[] expected = new double[TRAINED.length];
        for (int i = 0; i < TRAINED.length; i++) {
            expected[i] = 3.0 * TRAINED[i] * TRAINED[i];
        }
        int steps = 0;
        while (!stop.get()) {
            try (NDManager scope = template.getManager().newSubManager()) {
                NDArray x = template.duplicate();
                x.attach(scope);
                x.setRequiresGradient(true);
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    collector.backward(x.mul(x).mul(x).sum());
                }
                Assertions.assertClose(
                        Assertions.values(x.getGradient()),
                        expected,
                        FixtureSupport.EXACT_FLOAT32,
                        "training step " + steps);
            }
            steps++;
        }
        return steps;
    }

    /** One thread's problems, in a base manager of its own or in a shared one. */
    private static final class Worker {

        private final int id;
        private final NDManager own;
        private final Fixture[] fixtures;

        Worker(int id, NDManager shared) {
            this.id = id;
            own = shared == null ? NDManager.newBaseManager() : null;
            NDManager manager = shared == null ? own : shared;
            fixtures =
                    new Fixture[] {
                        new Fixture(manager, Variant.FUNCTION, false),
                        new Fixture(manager, Variant.MODEL, false)
                    };
        }

        int run() {
            int calls = 0;
            for (int round = 0; round < ROUNDS; round++) {
                for (Fixture fixture : fixtures) {
                    for (Method method : methods(fixture.variant)) {
                        check(fixture, method, round);
                        calls++;
                    }
                }
            }
            return calls;
        }

        /** One call, every parameter's diagonal against the closed form. */
        private void check(Fixture fixture, Method method, int round) {
            double[][] expected = fixture.expected();
            HessianDiagonal hessian = HessianDiagonal.builder().optMethod(method).build();
            // DJL's own L2Loss, which the structured methods know (the fixture's counts calls)
            try (NDList diagonal =
                    fixture.variant == Variant.MODEL
                            ? hessian.compute(
                                    fixture.model, new L2Loss(), fixture.inputs, fixture.targets)
                            : fixture.compute(hessian)) {
                for (int i = 0; i < expected.length; i++) {
                    Assertions.assertClose(
                            Assertions.values(diagonal.get(i)),
                            expected[i],
                            FixtureSupport.tolerance(method),
                            "thread "
                                    + id
                                    + (own == null ? " (shared" : " (own")
                                    + " manager), round "
                                    + round
                                    + ", "
                                    + method
                                    + " on the "
                                    + fixture.variant
                                    + ", parameter "
                                    + i);
                }
            }
        }

        void close() {
            if (own != null) {
                own.close();
            }
        }
    }
}
