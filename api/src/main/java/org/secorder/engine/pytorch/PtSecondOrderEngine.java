package org.secorder.engine.pytorch;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValueUtils;
import ai.djl.pytorch.jni.JniUtils;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngine;

/**
 * The PyTorch adapter: {@code torch.autograd.grad} through a TorchScript module compiled at run
 * time, so that no parameter's {@code .grad} is read or written.
 *
 * <p>The per-element loop of the Hessian diagonal runs inside libtorch: one JNI call computes the
 * whole diagonal of every variable.
 */
public final class PtSecondOrderEngine implements SecondOrderEngine {

    private static final String SOURCE = "secorder_autograd.py";
    private static final String CLASS_NAME = "SecorderAutograd";
    private static final String LIST_ARGUMENT = "params[]";
    private static final String METHOD_PREFIX = "module_method:";

    private final PtSymbolBlock module;

    /** Compiles the TorchScript module this adapter calls; done once per JVM. */
    public PtSecondOrderEngine() {
        module = load();
    }

    /** {@inheritDoc} */
    @Override
    public String getEngineName() {
        return "PyTorch";
    }

    /** {@inheritDoc} */
    @Override
    public boolean differentiatesTwice() {
        return true;
    }

    /**
     * {@inheritDoc}
     *
     * <p>While recording is on, every array DJL makes on this thread from Java memory (the scalar
     * of {@code x.pow(3)}, say) gets memory of libtorch's own at once: DJL closes such scalars
     * right after the operator, a garbage collection then frees their memory, and libtorch's graph,
     * which saved them, would read garbage in the backward pass (see {@link JavaBufferCopies}).
     */
    @Override
    public RecordingScope recording(boolean enabled) {
        boolean previous = JniUtils.isGradMode();
        JniUtils.setGradMode(enabled);
        JavaBufferCopies copies = enabled ? JavaBufferCopies.open() : null;
        return () -> {
            try {
                if (copies != null) {
                    copies.close();
                }
            } finally {
                JniUtils.setGradMode(previous);
            }
        };
    }

    /** {@inheritDoc} */
    @Override
    public RecordingScope trainingMode(boolean training) {
        // PyTorch layers take the mode as an argument only
        return () -> {};
    }

    /** {@inheritDoc} */
    @Override
    public NDArray[] gradient(NDArray loss, NDArray[] variables, boolean createGraph) {
        return call("gradient", loss, variables, createGraph);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray[] hessianDiagonal(NDArray loss, NDArray[] variables, boolean createGraph) {
        return call("forward", loss, variables, createGraph);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray[][] hessianVectorProducts(
            NDArray loss, NDArray[] variables, NDArray[][] vectors, boolean createGraph) {
        return products("hvp", loss, null, variables, vectors, createGraph);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray[][] gaussNewtonVectorProducts(
            NDArray loss,
            NDArray output,
            NDArray[] variables,
            NDArray[][] vectors,
            boolean createGraph) {
        return products("ggn", loss, output, variables, vectors, createGraph);
    }

    /**
     * Runs a product method of the module through {@link #call}: its one list argument packs a
     * count of the variables, the output where there is one, the variables and the vectors, and the
     * products come back in the vectors' slots.
     */
    private NDArray[][] products(
            String method,
            NDArray loss,
            NDArray output,
            NDArray[] variables,
            NDArray[][] vectors,
            boolean createGraph) {
        List<NDArray> slots = new ArrayList<>();
        NDArray count = loss.getManager().create((long) variables.length);
        slots.add(count);
        if (output != null) {
            slots.add(output);
        }
        slots.addAll(Arrays.asList(variables));
        int offset = slots.size();
        for (NDArray[] group : vectors) {
            slots.addAll(Arrays.asList(group));
        }
        NDArray[] results;
        try {
            results = call(method, loss, slots.toArray(new NDArray[0]), createGraph);
        } finally {
            count.close();
        }
        NDArray[][] products = new NDArray[vectors.length][variables.length];
        for (int j = 0; j < vectors.length; j++) {
            for (int i = 0; i < variables.length; i++) {
                products[j][i] = results[offset + j * variables.length + i];
            }
        }
        return products;
    }

    /**
     * Runs a method of the module with autograd on; DJL's {@code IValueUtils.forward} packs arrays
     * named {@code params[]} into one {@code List[Tensor]} argument, so the variables carry that
     * name only for the duration of the call.
     */
    private NDArray[] call(String method, NDArray loss, NDArray[] variables, boolean createGraph) {
        NDManager manager = loss.getManager();
        NDList inputs = new NDList(variables.length + 3);
        inputs.add(loss);
        inputs.addAll(Arrays.asList(variables));
        NDArray flag = manager.create(createGraph);
        inputs.add(flag);
        NDArray selector = null;
        if (!"forward".equals(method)) {
            selector = manager.create(0);
            selector.setName(METHOD_PREFIX + method);
            inputs.add(selector);
        }
        String[] names = new String[variables.length];
        for (int i = 0; i < variables.length; i++) {
            names[i] = variables[i].getName();
        }
        NDList outputs;
        try {
            for (NDArray variable : variables) {
                variable.setName(LIST_ARGUMENT);
            }
            RecordingScope recording = recording(true);
            try {
                outputs = IValueUtils.forward(module, inputs, true);
            } finally {
                recording.close();
            }
        } finally {
            for (int i = variables.length - 1; i >= 0; i--) {
                variables[i].setName(names[i]);
            }
            flag.close();
            if (selector != null) {
                selector.close();
            }
        }
        NDArray usedMask = outputs.get(variables.length);
        boolean[] used = usedMask.toBooleanArray();
        usedMask.close();
        NDArray[] results = new NDArray[variables.length];
        for (int i = 0; i < variables.length; i++) {
            NDArray result = outputs.get(i);
            if (used[i]) {
                results[i] = result;
            } else {
                result.close();
            }
        }
        return results;
    }

    private static PtSymbolBlock load() {
        String source;
        try (InputStream is = PtSecondOrderEngine.class.getResourceAsStream(SOURCE)) {
            if (is == null) {
                throw new IllegalStateException("Missing resource " + SOURCE);
            }
            source = new String(is.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        byte[] archive = TorchScriptArchive.of(CLASS_NAME, source);
        // The module holds no tensors and lives as long as the JVM, so its manager stays open.
        PtNDManager owner = (PtNDManager) Engine.getEngine("PyTorch").newBaseManager();
        try (InputStream is = new ByteArrayInputStream(archive)) {
            return JniUtils.loadModule(owner, is, false, false);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
