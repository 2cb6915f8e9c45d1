package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.core.Linear;
import ai.djl.training.loss.Loss;
import com.sun.jna.NativeLibrary;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.function.Supplier;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianDiagonal.Method;
import org.testng.Assert;
import org.testng.SkipException;
import org.testng.annotations.Test;

/**
 * Thousands of calls in one JVM hold native memory steady: every array and native handle a call
 * makes is freed by the time it returns.
 */
public class NativeMemoryTest {

    private static final int CALLS = 5000;
    private static final int WARM_UP_CALLS = 500;
    private static final int SAMPLES = 6;
    private static final int SAMPLE_EVERY = 20;
    private static final long ALLOWED_GROWTH_KIB = 64 * 1024;
    private static final int WIDTH = 1024;
    private static final Path STATUS = Paths.get("/proc/self/status");

    /**
     * Resident memory after 5,000 calls is within 64 MiB of where it was after 500, and the
     * caller's manager holds as many arrays as before the first call.
     *
     * <p>Calls alternate between a function and a model, each of a single parameter element so that
     * finite differences stay fast on MXNet. Each loss evaluation makes arrays of {@value #WIDTH}
     * floats from the caller's arrays, so a leak of one evaluation's arrays would grow resident
     * memory by hundreds of MiB over the 4,500 calls measured. Resident memory is read as the least
     * of a few readings after each phase, each after a garbage collection and after returning freed
     * C heap to the system, so that allocator noise does not count as growth while a leak, which
     * lifts every reading, does.
     *
     * @throws IOException if {@code /proc/self/status} cannot be read
     */
    @Test
    public void residentMemoryHoldsSteadyOverThousandsOfCalls() throws IOException {
        if (!Files.isReadable(STATUS)) {
            throw new SkipException("no /proc/self/status to read resident memory from");
        }
        Method method =
                EngineSupport.hasSecondDerivatives() ? Method.AUTOGRAD : Method.FINITE_DIFFERENCE;
        HessianDiagonal hessian = HessianDiagonal.builder().optMethod(method).build();
        double tolerance = FixtureSupport.tolerance(method);
        try (NDManager manager = NDManager.newBaseManager()) {
            float[] values = {0.3f};
            NDArray x = manager.create(values);
            x.setRequiresGradient(true);
            float[] widths = new float[WIDTH];
            for (int k = 0; k < WIDTH; k++) {
                widths[k] = (float) Math.sin(k) * 0.5f;
            }
            NDArray b = manager.create(widths, new Shape(1, WIDTH));
            // f = sum_ik tanh(x_i b_k): d2f/dx_i2 = sum_k b_k^2 tanh''(x_i b_k)
            Supplier<NDArray> loss = () -> x.reshape(1, 1).mul(b).tanh().sum();
            double[] expected = new double[values.length];
            double meanSquare = 0;
            for (float w : widths) {
                meanSquare += (double) w * w / WIDTH;
                for (int i = 0; i < values.length; i++) {
                    double t = Math.tanh((double) values[i] * w);
                    expected[i] += (double) w * w * -2 * t * (1 - t * t);
                }
            }
            // one input feature, WIDTH samples, no bias, DJL's L2 loss: d2/dw2 = mean x^2
            Block model = Linear.builder().setUnits(1).optBias(false).build();
            model.initialize(manager, DataType.FLOAT32, new Shape(WIDTH, 1));
            NDList inputs = new NDList(manager.create(widths, new Shape(WIDTH, 1)));
            NDList targets = new NDList(manager.ones(new Shape(WIDTH, 1)));
            Loss l2 = Loss.l2Loss();
            NDList params = new NDList(x);
            int arrays = manager.getManagedArrays().size();
            long afterWarmUp = Long.MAX_VALUE;
            long atEnd = Long.MAX_VALUE;
            for (int call = 1; call <= CALLS; call++) {
                boolean check = call <= 2 || call > CALLS - 2;
                if (call % 2 == 1) {
                    try (NDList diagonal = hessian.compute(loss, params)) {
                        if (check) {
                            Assertions.assertClose(diagonal.get(0), expected, tolerance);
                        }
                    }
                } else {
                    try (NDList diagonal = hessian.compute(model, l2, inputs, targets)) {
                        if (check) {
                            Assertions.assertClose(
                                    diagonal.get(0), new double[] {meanSquare}, tolerance);
                        }
                    }
                }
                if (isSample(call, WARM_UP_CALLS)) {
                    afterWarmUp = Math.min(afterWarmUp, residentKib());
                } else if (isSample(call, CALLS)) {
                    atEnd = Math.min(atEnd, residentKib());
                }
            }
            Assert.assertEquals(
                    manager.getManagedArrays().size(), arrays, "arrays left in the manager");
            Assert.assertTrue(
                    atEnd - afterWarmUp <= ALLOWED_GROWTH_KIB,
                    "resident memory grew by "
                            + (atEnd - afterWarmUp)
                            + " KiB between call "
                            + WARM_UP_CALLS
                            + " ("
                            + afterWarmUp
                            + " KiB) and call "
                            + CALLS
                            + " ("
                            + atEnd
                            + " KiB)");
        }
    }

    /** Whether a reading is taken after this call, one of the last few of a phase. */
    private static boolean isSample(int call, int phaseEnd) {
        return call <= phaseEnd
                && call > phaseEnd - SAMPLES * SAMPLE_EVERY
                && (phaseEnd - call) % SAMPLE_EVERY == 0;
    }

    /**
     * Returns VmRSS after a garbage collection, so that collectable Java wrappers are gone, and
     * after glibc's {@code malloc_trim}, so that freed C heap is returned where it can be.
     */
    private static long residentKib() throws IOException {
        System.gc();
        trimCHeap();
        for (String line : Files.readAllLines(STATUS, StandardCharsets.US_ASCII)) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IOException("no VmRSS in " + STATUS);
    }

    private static void trimCHeap() {
        try {
            NativeLibrary.getInstance("c").getFunction("malloc_trim").invokeInt(new Object[] {0});
        } catch (UnsatisfiedLinkError e) {
            // not glibc: readings keep the allocator's free lists, the minimum still sees a leak
        }
    }
}
