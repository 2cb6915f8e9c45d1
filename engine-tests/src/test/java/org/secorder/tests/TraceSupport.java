package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.testng.Assert;

/**
 * Snapshots of everything a call could leave behind: the values, gradient buffers, gradient flags,
 * names and managers of the caller's arrays, the thread's recording state, and the number of arrays
 * a manager holds.
 */
final class TraceSupport {

    private TraceSupport() {}

    /**
     * Captures the state of arrays and of the manager whose open arrays are counted.
     *
     * @param manager the manager (with its sub-managers) whose arrays are counted
     * @param arrays the caller's arrays
     * @return the snapshot
     */
    static Trace capture(NDManager manager, NDArray... arrays) {
        return new Trace(manager, arrays);
    }

    /** The observable state of a set of arrays at one moment. */
    static final class Trace {

        private final NDManager manager;
        private final NDArray[] arrays;
        private final int managedArrays;
        private final String recording;
        private final List<ArrayState> states;

        Trace(NDManager manager, NDArray... arrays) {
            this.manager = manager;
            this.arrays = arrays.clone();
            states = new ArrayList<>();
            for (NDArray array : arrays) {
                states.add(new ArrayState(array));
            }
            recording = EngineStateSupport.recordingState();
            // counted last: reading gradients above must not leave arrays behind either
            managedArrays = manager.getManagedArrays().size();
        }

        /**
         * Asserts that nothing captured has changed, bit for bit.
         *
         * @param when what happened since the capture, for the failure messages
         */
        void assertUnchanged(String when) {
            Assert.assertEquals(
                    EngineStateSupport.recordingState(), recording, when + ": recording state");
            for (int i = 0; i < arrays.length; i++) {
                states.get(i).assertSame(new ArrayState(arrays[i]), when + ": array " + i);
            }
            Assert.assertEquals(
                    manager.getManagedArrays().size(),
                    managedArrays,
                    when + ": number of open arrays in the caller's manager");
        }
    }

    /** One array's state. */
    private static final class ArrayState {

        private final String name;
        private final NDManager manager;
        private final boolean released;
        private final boolean hasGradient;
        private final boolean nativeRequiresGradient;
        private final byte[] values;
        private final byte[] gradient;

        ArrayState(NDArray array) {
            released = array.isReleased();
            if (released) {
                name = null;
                manager = null;
                hasGradient = false;
                nativeRequiresGradient = false;
                values = null;
                gradient = null;
                return;
            }
            name = array.getName();
            manager = array.getManager();
            hasGradient = array.hasGradient();
            nativeRequiresGradient = EngineStateSupport.nativeRequiresGradient(array);
            values = array.toByteArray();
            gradient = hasGradient ? EngineStateSupport.gradientBytes(array) : null;
        }

        void assertSame(ArrayState now, String what) {
            Assert.assertEquals(now.released, released, what + ": closed");
            Assert.assertEquals(now.name, name, what + ": name");
            Assert.assertTrue(now.manager == manager, what + ": manager " + now.manager);
            Assert.assertEquals(now.hasGradient, hasGradient, what + ": hasGradient()");
            Assert.assertEquals(
                    now.nativeRequiresGradient,
                    nativeRequiresGradient,
                    what + ": requires gradient, as the engine sees it");
            Assert.assertTrue(Arrays.equals(now.values, values), what + ": values changed");
            Assert.assertTrue(
                    Arrays.equals(now.gradient, gradient),
                    what
                            + ": gradient buffer changed (before: "
                            + (gradient == null ? "undefined" : "defined")
                            + ", after: "
                            + (now.gradient == null ? "undefined" : "defined")
                            + ")");
        }
    }
}
