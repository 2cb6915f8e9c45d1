package org.secorder.estimation.internal;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import org.secorder.evaluation.HostArrays;
import org.secorder.operator.CurvatureOperator;

/**
 * The vector space of some parameters seen from the host: a vector is the concatenation of the
 * flattened parameters, in float64. Products of an operator with such vectors run in batches: a
 * batch of vectors goes to each parameter's device and data type in one copy, and its products come
 * back in one copy.
 */
public final class ParameterSpace {

    private final NDArray[] parameters;
    private final int[] offsets;

    /**
     * Creates the space of some parameters.
     *
     * @param parameters the parameters; read for their shapes, data types, devices and managers
     * @throws IllegalArgumentException if they hold more than {@code Integer.MAX_VALUE - 8}
     *     elements together
     */
    public ParameterSpace(NDArray[] parameters) {
        this.parameters = parameters.clone();
        offsets = new int[parameters.length + 1];
        long total = 0;
        for (int i = 0; i < parameters.length; i++) {
            offsets[i] = (int) total;
            total += parameters[i].size();
            if (total > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException(
                        "the parameters hold more than "
                                + (Integer.MAX_VALUE - 8)
                                + " elements together, too many for a stochastic estimate");
            }
        }
        offsets[parameters.length] = (int) total;
    }

    /**
     * Returns the number of elements of all parameters together.
     *
     * @return the dimension
     */
    public int dimension() {
        return offsets[parameters.length];
    }

    /**
     * Returns the bytes one vector takes on the devices.
     *
     * @return the bytes of one vector
     */
    public long vectorBytes() {
        long bytes = 0;
        for (NDArray parameter : parameters) {
            bytes += parameter.size() * parameter.getDataType().getNumOfBytes();
        }
        return Math.max(1, bytes);
    }

    /**
     * Returns how many vectors to send at once so that they and their products fit into a budget.
     *
     * @param memoryBudget bytes
     * @param count how many vectors there are in all
     * @return the batch size, at least 1
     */
    public int batchSize(long memoryBudget, int count) {
        long batch = memoryBudget / (2 * vectorBytes());
        return (int) Math.max(1, Math.min(batch, Math.max(1, count)));
    }

    /**
     * Multiplies an operator with vectors, sending at most {@code batch} of them at once.
     *
     * @param operator the operator
     * @param vectors host vectors of this space
     * @param batch the most vectors on the devices at once
     * @return the products, as host vectors
     */
    public double[][] multiply(CurvatureOperator operator, double[][] vectors, int batch) {
        double[][] products = new double[vectors.length][];
        for (int start = 0; start < vectors.length; start += batch) {
            int count = Math.min(batch, vectors.length - start);
            double[][] chunk = new double[count][];
            System.arraycopy(vectors, start, chunk, 0, count);
            double[][] done = multiplyBatch(operator, chunk);
            System.arraycopy(done, 0, products, start, count);
        }
        return products;
    }

    private double[][] multiplyBatch(CurvatureOperator operator, double[][] vectors) {
        int count = vectors.length;
        try (NDManager batch = parameters[0].getManager().newSubManager()) {
            NDArray[] stacks = new NDArray[parameters.length];
            for (int i = 0; i < parameters.length; i++) {
                int size = offsets[i + 1] - offsets[i];
                double[] data = new double[count * size];
                for (int k = 0; k < count; k++) {
                    System.arraycopy(vectors[k], offsets[i], data, k * size, size);
                }
                // flat rows: MXNet refuses arrays of rank above 5
                stacks[i] = create(batch, data, new Shape(count, size), parameters[i]);
            }
            List<NDList> vectorList = new ArrayList<>(count);
            for (int k = 0; k < count; k++) {
                NDList vector = new NDList(parameters.length);
                for (int i = 0; i < parameters.length; i++) {
                    vector.add(stacks[i].get(k).reshape(parameters[i].getShape()));
                }
                vectorList.add(vector);
            }
            // one call for the batch: operators may share work between the vectors
            List<NDList> productList = operator.multiplyAll(vectorList);
            if (productList == null || productList.size() != count) {
                throw new IllegalStateException(
                        "the curvature operator must return one product per vector ("
                                + count
                                + "), got "
                                + (productList == null ? "null" : productList.size()));
            }
            for (NDList product : productList) {
                if (product != null) {
                    product.attach(batch);
                }
            }
            NDArray[][] results = new NDArray[parameters.length][count];
            for (int k = 0; k < count; k++) {
                NDList product = productList.get(k);
                check(product);
                for (int i = 0; i < parameters.length; i++) {
                    results[i][k] = product.get(i).reshape(offsets[i + 1] - offsets[i]);
                }
            }
            double[][] products = new double[count][dimension()];
            for (int i = 0; i < parameters.length; i++) {
                int size = offsets[i + 1] - offsets[i];
                NDArray stacked = NDArrays.stack(new NDList(results[i]));
                double[] data = stacked.toType(DataType.FLOAT64, false).toDoubleArray();
                for (int k = 0; k < count; k++) {
                    System.arraycopy(data, k * size, products[k], offsets[i], size);
                }
            }
            return products;
        }
    }

    private void check(NDList product) {
        if (product == null || product.size() != parameters.length) {
            throw new IllegalStateException(
                    "the curvature operator must return one array per parameter ("
                            + parameters.length
                            + "), got "
                            + (product == null ? "null" : product.size()));
        }
        for (int i = 0; i < parameters.length; i++) {
            NDArray array = product.get(i);
            if (array == null || !array.getShape().equals(parameters[i].getShape())) {
                throw new IllegalStateException(
                        "the curvature operator must return arrays shaped like the parameters:"
                                + " entry "
                                + i
                                + " should have shape "
                                + parameters[i].getShape()
                                + ", got "
                                + (array == null ? "null" : array.getShape()));
            }
        }
    }

    /**
     * Copies a host vector of this space into one array per parameter, of its shape, data type and
     * device, attached to its manager.
     *
     * @param flat the host vector
     * @return one array per parameter, which the caller owns
     */
    public NDList toParameters(double[] flat) {
        NDList list = new NDList(parameters.length);
        for (int i = 0; i < parameters.length; i++) {
            double[] data = new double[offsets[i + 1] - offsets[i]];
            System.arraycopy(flat, offsets[i], data, 0, data.length);
            NDManager owner = parameters[i].getManager();
            try (NDManager scratch = owner.newSubManager()) {
                NDArray array = create(scratch, data, parameters[i].getShape(), parameters[i]);
                array.attach(owner);
                list.add(array);
            }
        }
        return list;
    }

    /**
     * Copies one array per parameter to a host vector of this space.
     *
     * @param arrays one array per parameter, shaped like it
     * @return the host vector
     */
    public double[] toHost(NDArray[] arrays) {
        double[] flat = new double[dimension()];
        for (int i = 0; i < parameters.length; i++) {
            if (arrays[i] == null) {
                continue;
            }
            try (NDArray asDouble = arrays[i].toType(DataType.FLOAT64, true)) {
                double[] data = asDouble.toDoubleArray();
                System.arraycopy(data, 0, flat, offsets[i], data.length);
            }
        }
        return flat;
    }

    /** Creates an array of a parameter's data type and device from host values. */
    private static NDArray create(
            NDManager manager, double[] data, Shape shape, NDArray parameter) {
        DataType type = parameter.getDataType();
        Device device = parameter.getDevice();
        NDArray array;
        if (type == DataType.FLOAT32) {
            float[] values = new float[data.length];
            for (int j = 0; j < data.length; j++) {
                values[j] = (float) data[j];
            }
            array = HostArrays.create(manager, values, shape);
        } else {
            array = HostArrays.create(manager, data, shape);
        }
        if (array.getDataType() != type) {
            array = array.toType(type, false);
        }
        if (!array.getDevice().equals(device)) {
            array = array.toDevice(device, false);
        }
        return array;
    }
}
