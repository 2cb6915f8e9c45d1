package org.secorder.core;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Block;
import ai.djl.nn.ParameterList;
import ai.djl.training.loss.Loss;

/** Checks of the arguments of the public API, with messages that name the argument. */
final class Arguments {

    private Arguments() {}

    /**
     * Checks the arguments of a call on a model's loss and returns its parameters, in the order of
     * {@code model.getParameters()}, with their names.
     *
     * @param purpose what the call does, for the message of an uninitialized model: "its Hessian
     *     diagonal is computed", say
     * @return the parameters; {@link ModelParameters#names} holds their names
     */
    static ModelParameters model(
            Block model, Loss loss, NDList inputs, NDList targets, String purpose) {
        requireNonNull(model, "model");
        requireNonNull(loss, "loss");
        arrays(inputs, "inputs");
        arrays(targets, "targets");
        if (!model.isInitialized()) {
            throw new IllegalStateException(
                    "model must be initialized before "
                            + purpose
                            + ": call model.initialize(manager, dataType, inputShapes) first");
        }
        ParameterList entries = model.getParameters();
        if (entries.isEmpty()) {
            throw new IllegalArgumentException("model has no parameters");
        }
        NDArray[] arrays = new NDArray[entries.size()];
        String[] names = new String[entries.size()];
        for (int i = 0; i < arrays.length; i++) {
            names[i] = entries.get(i).getKey();
            arrays[i] = entries.get(i).getValue().getArray();
        }
        parameters(new NDList(arrays), "model.getParameters()");
        return new ModelParameters(arrays, names);
    }

    /** A model's parameter arrays and their names, in the order of {@code getParameters()}. */
    static final class ModelParameters {

        final NDArray[] arrays;
        final String[] names;

        ModelParameters(NDArray[] arrays, String[] names) {
            this.arrays = arrays;
            this.names = names;
        }
    }

    static void requireNonNull(Object value, String name) {
        if (value == null) {
            throw new IllegalArgumentException(name + " must not be null");
        }
    }

    /**
     * Checks parameters: a non-empty list of open floating-point arrays of one engine.
     *
     * @return the parameters as an array
     */
    static NDArray[] parameters(NDList params, String name) {
        NDArray[] arrays = arrays(params, name);
        String engine = arrays[0].getManager().getEngine().getEngineName();
        for (int i = 0; i < arrays.length; i++) {
            NDArray array = arrays[i];
            if (!array.getDataType().isFloating()) {
                throw new IllegalArgumentException(
                        name
                                + ": parameter "
                                + describe(i, array.getName())
                                + " must be a floating-point array, got "
                                + array.getDataType());
            }
            String other = array.getManager().getEngine().getEngineName();
            if (!engine.equals(other)) {
                throw new IllegalArgumentException(
                        name
                                + ": all parameters must belong to one engine, but parameter 0 is"
                                + " of "
                                + engine
                                + " and parameter "
                                + describe(i, array.getName())
                                + " of "
                                + other);
            }
        }
        return arrays;
    }

    /**
     * Checks a non-empty list of open arrays.
     *
     * @return the arrays
     */
    static NDArray[] arrays(NDList list, String name) {
        if (list == null) {
            throw new IllegalArgumentException(name + " must not be null");
        }
        if (list.isEmpty()) {
            throw new IllegalArgumentException(name + " must hold at least one array, got none");
        }
        NDArray[] arrays = list.toArray(new NDArray[0]);
        for (int i = 0; i < arrays.length; i++) {
            if (arrays[i] == null) {
                throw new IllegalArgumentException(name + ": entry " + i + " is null");
            }
            if (arrays[i].isReleased()) {
                throw new IllegalArgumentException(
                        name + ": entry " + describe(i, arrays[i].getName()) + " is closed");
            }
        }
        return arrays;
    }

    /**
     * Checks the vectors {@code v}: one open array per parameter, of its shape and data type.
     *
     * @return the vectors, or {@code null} if none were given
     */
    static NDArray[] vectors(NDList vectors, NDArray[] parameters) {
        if (vectors == null) {
            return null;
        }
        if (vectors.size() != parameters.length) {
            throw new IllegalArgumentException(
                    "v must hold one array per parameter: expected "
                            + parameters.length
                            + ", got "
                            + vectors.size());
        }
        NDArray[] arrays = arrays(vectors, "v");
        for (int i = 0; i < arrays.length; i++) {
            if (!arrays[i].getShape().equals(parameters[i].getShape())) {
                throw new IllegalArgumentException(
                        "v: entry "
                                + i
                                + " must have the shape of parameter "
                                + i
                                + ", "
                                + parameters[i].getShape()
                                + ", got "
                                + arrays[i].getShape());
            }
            if (arrays[i].getDataType() != parameters[i].getDataType()) {
                throw new IllegalArgumentException(
                        "v: entry "
                                + i
                                + " must have the data type of parameter "
                                + i
                                + ", "
                                + parameters[i].getDataType()
                                + ", got "
                                + arrays[i].getDataType());
            }
        }
        return arrays;
    }

    /** Names a parameter by its index and, where it has one, its name. */
    static String describe(int index, String name) {
        return name == null || name.isEmpty() ? String.valueOf(index) : index + " (" + name + ")";
    }
}
