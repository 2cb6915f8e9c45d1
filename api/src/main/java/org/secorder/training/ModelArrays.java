package org.secorder.training;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.ParameterList;
import ai.djl.util.Pair;

/** A model's parameters by name and id, and a batch's arrays moved to the parameters' device. */
final class ModelArrays {

    private ModelArrays() {}

    /** Returns the names of {@code model.getParameters()}, in order. */
    static String[] names(Block model) {
        ParameterList parameters = model.getParameters();
        String[] names = new String[parameters.size()];
        for (int i = 0; i < names.length; i++) {
            names[i] = parameters.get(i).getKey();
        }
        return names;
    }

    /** Returns the ids of {@code model.getParameters()}, in order, as optimizers see them. */
    static String[] ids(Block model) {
        ParameterList parameters = model.getParameters();
        String[] ids = new String[parameters.size()];
        int i = 0;
        for (Pair<String, Parameter> entry : parameters) {
            ids[i++] = entry.getValue().getId();
        }
        return ids;
    }

    /** Returns the array of the model's first parameter, whose manager and device results use. */
    static NDArray firstParameter(Block model) {
        ParameterList parameters = model.getParameters();
        if (parameters.isEmpty()) {
            throw new IllegalArgumentException("model has no parameters");
        }
        return parameters.get(0).getValue().getArray();
    }

    /**
     * Returns {@code arrays} on {@code device}: the same list where they are there already,
     * otherwise copies attached to {@code scope}.
     */
    static NDList onDevice(NDList arrays, Device device, NDManager scope) {
        boolean there = true;
        for (NDArray array : arrays) {
            there &= array.getDevice().equals(device);
        }
        if (there) {
            return arrays;
        }
        NDList copies = new NDList(arrays.size());
        for (NDArray array : arrays) {
            NDArray copy = array.toDevice(device, true);
            copy.attach(scope);
            copies.add(copy);
        }
        return copies;
    }
}
