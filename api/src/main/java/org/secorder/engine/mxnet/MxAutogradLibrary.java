package org.secorder.engine.mxnet;

import com.sun.jna.Library;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.PointerByReference;

/**
 * The two functions of {@code libmxnet} that DJL's MXNet engine does not expose in a usable form.
 *
 * <p>DJL's own binding of {@code MXAutogradBackwardEx} does not hand the computed gradients back,
 * so the adapter binds it itself.
 */
interface MxAutogradLibrary extends Library {

    /**
     * Computes gradients of outputs with respect to explicit variables, returning them instead of
     * writing to the variables' gradient buffers.
     *
     * @param numOutput the number of outputs
     * @param outputHandles the outputs to differentiate
     * @param ogradHandles the head gradients, or {@code null} for ones
     * @param numVariables the number of variables
     * @param varHandles the variables
     * @param retainGraph 1 to keep the graph for another backward pass
     * @param createGraph 1 to record the backward pass itself
     * @param isTrain 1 to run the backward pass in training mode
     * @param gradHandles receives the array of gradient handles, owned by the caller
     * @param gradStypes receives the storage types of the gradients
     * @return 0 on success, -1 on failure
     */
    int MXAutogradBackwardEx(
            int numOutput,
            Pointer[] outputHandles,
            Pointer[] ogradHandles,
            int numVariables,
            Pointer[] varHandles,
            int retainGraph,
            int createGraph,
            int isTrain,
            PointerByReference gradHandles,
            PointerByReference gradStypes);

    /**
     * Returns the message of the last error raised on the calling thread.
     *
     * @return the message
     */
    String MXGetLastError();
}
