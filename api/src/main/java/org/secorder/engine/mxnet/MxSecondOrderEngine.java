package org.secorder.engine.mxnet;

import ai.djl.mxnet.engine.MxGradientCollector;
import ai.djl.mxnet.engine.MxNDArray;
import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.mxnet.jna.LibUtils;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.PointerByReference;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngine;

/**
 * The MXNet adapter: gradients through {@code MXAutogradBackwardEx} with explicit variables, so
 * that no gradient buffer is written.
 *
 * <p>The numpy-mode operators that DJL's MXNet engine runs mostly have backward operators without
 * gradients of their own; a double backward through one of them fails, and this adapter then names
 * that operator in an {@link UnsupportedOperationException}.
 */
public final class MxSecondOrderEngine implements SecondOrderEngine {

    private static final Pattern NON_DIFFERENTIABLE =
            Pattern.compile("Operator (\\S+) is non-differentiable");
    private static final String NO_GRAPH = "not in a computational graph";
    private static final String UNREACHABLE = "unreachable from the outputs";
    private static final int RTLD_LAZY_LOCAL = 1;
    private static final String HVP = "the exact Hessian-vector product by double backward";
    private static final String HVP_ALTERNATIVES =
            "Use Curvature.GGN for exact Gauss-Newton-vector products from first derivatives"
                    + " (models with a supported loss), or run on the PyTorch engine.";

    private final MxAutogradLibrary lib;

    /** Binds the autograd functions of the {@code libmxnet} that DJL has loaded. */
    public MxSecondOrderEngine() {
        lib =
                Native.load(
                        LibUtils.getLibName(),
                        MxAutogradLibrary.class,
                        Map.of(Library.OPTION_OPEN_FLAGS, RTLD_LAZY_LOCAL));
    }

    /** {@inheritDoc} */
    @Override
    public String getEngineName() {
        return "MXNet";
    }

    /** {@inheritDoc} */
    @Override
    public boolean differentiatesTwice() {
        return false;
    }

    /** {@inheritDoc} */
    @Override
    public RecordingScope recording(boolean enabled) {
        boolean previous = MxGradientCollector.setRecording(enabled);
        return () -> MxGradientCollector.setRecording(previous);
    }

    /** {@inheritDoc} */
    @Override
    public RecordingScope trainingMode(boolean training) {
        boolean previous = MxGradientCollector.setTraining(training);
        return () -> MxGradientCollector.setTraining(previous);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray[] gradient(NDArray loss, NDArray[] variables, boolean createGraph) {
        try {
            return backward(loss, null, variables, true, createGraph);
        } catch (MxBackwardException e) {
            if (!isUnused(e)) {
                throw e;
            }
        }
        // MXNet does not say which variable is unreachable: find out for each on its own, then ask
        // for the reachable ones together, since FullyConnected (MKL-DNN) leaves the bias gradient
        // uninitialised when the weight gradient is not asked for in the same call.
        NDArray[] gradients = new NDArray[variables.length];
        if (variables.length == 1) {
            return gradients;
        }
        List<Integer> reachable = new ArrayList<>();
        for (int i = 0; i < variables.length; i++) {
            if (isReachable(loss, variables[i])) {
                reachable.add(i);
            }
        }
        if (reachable.isEmpty()) {
            return gradients;
        }
        NDArray[] subset = new NDArray[reachable.size()];
        for (int k = 0; k < subset.length; k++) {
            subset[k] = variables[reachable.get(k)];
        }
        NDArray[] computed = backward(loss, null, subset, true, createGraph);
        for (int k = 0; k < subset.length; k++) {
            gradients[reachable.get(k)] = computed[k];
        }
        return gradients;
    }

    private boolean isReachable(NDArray loss, NDArray variable) {
        NDArray[] probe;
        try {
            probe = backward(loss, null, new NDArray[] {variable}, true, false);
        } catch (MxBackwardException e) {
            if (isUnused(e)) {
                return false;
            }
            throw e;
        }
        for (NDArray array : probe) {
            if (array != null) {
                array.close();
            }
        }
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray[] hessianDiagonal(NDArray loss, NDArray[] variables, boolean createGraph) {
        NDArray[] results = new NDArray[variables.length];
        for (int i = 0; i < variables.length; i++) {
            NDArray variable = variables[i];
            NDArray[] gradient;
            try {
                gradient = backward(loss, null, new NDArray[] {variable}, true, true);
            } catch (MxBackwardException e) {
                if (isUnused(e)) {
                    continue;
                }
                throw unsupported(e);
            }
            results[i] = diagonalOf(gradient[0], variable, createGraph);
            gradient[0].close();
        }
        return results;
    }

    /**
     * {@inheritDoc}
     *
     * <p>Asks MXNet for the gradient with a graph, then for the gradient of each {@code g_i . v_i}:
     * MXNet's numpy-mode backward operators register no gradient of their own, so for most losses
     * the second step fails and an {@link UnsupportedOperationException} names the operator.
     */
    @Override
    public NDArray[][] hessianVectorProducts(
            NDArray loss, NDArray[] variables, NDArray[][] vectors, boolean createGraph) {
        NDArray[] gradients;
        try {
            gradients = gradient(loss, variables, true);
        } catch (MxBackwardException e) {
            throw unsupported(e, HVP, HVP_ALTERNATIVES);
        }
        NDArray[][] products = new NDArray[vectors.length][variables.length];
        try {
            for (int j = 0; j < vectors.length; j++) {
                for (int k = 0; k < variables.length; k++) {
                    if (gradients[k] == null) {
                        continue;
                    }
                    accumulate(
                            products[j],
                            rowProducts(gradients[k], vectors[j][k], variables, createGraph));
                }
                for (int i = 0; i < variables.length; i++) {
                    if (gradients[i] != null && products[j][i] == null) {
                        products[j][i] = variables[i].zerosLike();
                        products[j][i].attach(loss.getManager());
                    }
                }
            }
            return products;
        } catch (RuntimeException e) {
            for (NDArray[] group : products) {
                close(group);
            }
            throw e;
        } finally {
            close(gradients);
        }
    }

    /**
     * {@inheritDoc}
     *
     * <p>MXNet cannot take the derivative of a vector-Jacobian product with respect to its
     * cotangent, nor differentiate a loss's backward operators: there is no route through its
     * autograd, and this method always throws. Secorder's {@code HessianVectorProduct} computes
     * these products on MXNet from the loss Hessian's square-root factor with first derivatives
     * only.
     */
    @Override
    public NDArray[][] gaussNewtonVectorProducts(
            NDArray loss,
            NDArray output,
            NDArray[] variables,
            NDArray[][] vectors,
            boolean createGraph) {
        throw new UnsupportedOperationException(
                "The MXNet engine cannot differentiate its backward operators, so it has no"
                        + " Gauss-Newton-vector product by autograd (J v needs a double"
                        + " backward). Use HessianVectorProduct with Curvature.GGN and"
                        + " Method.AUTO or Method.FACTORED: exact, from first derivatives only.");
    }

    /** The gradient of {@code g . v} for every variable, {@code null} where it is unreachable. */
    private NDArray[] rowProducts(
            NDArray gradient, NDArray vector, NDArray[] variables, boolean createGraph) {
        try {
            return backward(gradient, vector, variables, true, createGraph);
        } catch (MxBackwardException e) {
            if (!isUnused(e)) {
                throw unsupported(e, HVP, HVP_ALTERNATIVES);
            }
        }
        NDArray[] rows = new NDArray[variables.length];
        for (int i = 0; i < variables.length; i++) {
            try {
                rows[i] =
                        backward(gradient, vector, new NDArray[] {variables[i]}, true, createGraph)[
                                0];
            } catch (MxBackwardException e) {
                if (!isUnused(e)) {
                    close(rows);
                    throw unsupported(e, HVP, HVP_ALTERNATIVES);
                }
            }
        }
        return rows;
    }

    private static void accumulate(NDArray[] sums, NDArray[] terms) {
        for (int i = 0; i < terms.length; i++) {
            if (terms[i] == null) {
                continue;
            }
            if (sums[i] == null) {
                sums[i] = terms[i];
            } else {
                NDArray sum = sums[i].add(terms[i]);
                sums[i].close();
                terms[i].close();
                sums[i] = sum;
            }
        }
    }

    private static void close(NDArray[] arrays) {
        for (NDArray array : arrays) {
            if (array != null) {
                array.close();
            }
        }
    }

    private NDArray diagonalOf(NDArray gradient, NDArray variable, boolean createGraph) {
        NDManager manager = gradient.getManager();
        Shape shape = gradient.getShape();
        DataType dataType = gradient.getDataType();
        int size = Math.toIntExact(variable.size());
        NDList entries = new NDList(size);
        try {
            for (int j = 0; j < size; j++) {
                NDArray row;
                try (NDManager scratch = manager.newSubManager()) {
                    NDArray oneHot;
                    RecordingScope recording = recording(false);
                    try {
                        NDArray flat = scratch.zeros(new Shape(size), dataType);
                        flat.set(new NDIndex(j), 1);
                        oneHot = flat.reshape(shape);
                    } finally {
                        recording.close();
                    }
                    try {
                        row =
                                backward(
                                        gradient,
                                        oneHot,
                                        new NDArray[] {variable},
                                        true,
                                        createGraph)[0];
                    } catch (MxBackwardException e) {
                        throw unsupported(e);
                    }
                }
                if (row == null) {
                    entries.add(manager.zeros(new Shape(), dataType));
                } else {
                    entries.add(row.reshape(-1).get(j));
                    row.close();
                }
            }
            return NDArrays.stack(entries).reshape(variable.getShape());
        } finally {
            entries.close();
        }
    }

    private NDArray[] backward(
            NDArray output,
            NDArray headGradient,
            NDArray[] variables,
            boolean retainGraph,
            boolean createGraph) {
        Pointer[] outputs = {((MxNDArray) output).getHandle()};
        Pointer[] heads = headGradient == null ? null : new Pointer[] {handle(headGradient)};
        Pointer[] vars = new Pointer[variables.length];
        for (int i = 0; i < variables.length; i++) {
            vars[i] = handle(variables[i]);
        }
        PointerByReference gradHandles = new PointerByReference();
        PointerByReference gradTypes = new PointerByReference();
        int status =
                lib.MXAutogradBackwardEx(
                        1,
                        outputs,
                        heads,
                        vars.length,
                        vars,
                        retainGraph ? 1 : 0,
                        createGraph ? 1 : 0,
                        1,
                        gradHandles,
                        gradTypes);
        if (status != 0) {
            throw new MxBackwardException(lib.MXGetLastError());
        }
        Pointer[] grads = gradHandles.getValue().getPointerArray(0, variables.length);
        MxNDManager manager = (MxNDManager) output.getManager();
        NDArray[] results = new NDArray[variables.length];
        for (int i = 0; i < grads.length; i++) {
            results[i] = grads[i] == null ? null : manager.create(grads[i]);
        }
        return results;
    }

    private static boolean isUnused(MxBackwardException e) {
        return e.getMessage().contains(NO_GRAPH) || e.getMessage().contains(UNREACHABLE);
    }

    private static Pointer handle(NDArray array) {
        return ((MxNDArray) array).getHandle();
    }

    private static UnsupportedOperationException unsupported(MxBackwardException e) {
        return unsupported(
                e,
                "the exact Hessian diagonal by double backward (Method.AUTOGRAD)",
                "Use Method.FINITE_DIFFERENCE for a central-difference approximation from first"
                        + " derivatives, or run on the PyTorch engine.");
    }

    private static UnsupportedOperationException unsupported(
            MxBackwardException e, String what, String alternatives) {
        Matcher matcher = NON_DIFFERENTIABLE.matcher(e.getMessage());
        String operator = matcher.find() ? matcher.group(1) : "an operator of the loss";
        return new UnsupportedOperationException(
                "The MXNet engine cannot differentiate "
                        + operator
                        + " a second time (its backward registers no gradient), so "
                        + what
                        + " is not available for this loss. "
                        + alternatives,
                e);
    }

    /** A failed call into MXNet's autograd, carrying MXNet's own message. */
    private static final class MxBackwardException extends RuntimeException {

        private static final long serialVersionUID = 1L;

        MxBackwardException(String message) {
            super(message);
        }
    }
}
