package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import org.secorder.operator.CurvatureOperator;

/**
 * A curvature operator given by an explicit symmetric matrix, split across parameters of ranks 1 to
 * 5, that multiplies on the host in float64: an independent ground truth for the estimators. It
 * records every vector that reaches it that is not of a parameter's shape, data type or device.
 */
final class DenseOperator implements CurvatureOperator {

    /** Parameters of ranks 1 to 5, 20 elements in all. */
    static final Shape[] SHAPES = {
        new Shape(3),
        new Shape(2, 2),
        new Shape(1, 2, 2),
        new Shape(2, 1, 2, 1),
        new Shape(1, 2, 1, 1, 2)
    };

    final double[][] matrix;
    final NDList parameters;
    final List<String> violations = new ArrayList<>();
    final AtomicLong products = new AtomicLong();

    private DenseOperator(NDManager manager, DataType type, double[][] matrix) {
        this.matrix = matrix;
        parameters = new NDList();
        for (Shape shape : SHAPES) {
            NDArray parameter = manager.zeros(shape, type);
            parameter.setRequiresGradient(true);
            parameters.add(parameter);
        }
    }

    /** The dimension of the parameter space. */
    static int dimension() {
        int n = 0;
        for (Shape shape : SHAPES) {
            n += (int) shape.size();
        }
        return n;
    }

    /**
     * A symmetric matrix {@code U diag(lambda) U^T}: a random orthogonal {@code U}, the {@code
     * dominant} eigenvalues {@code scale * (dominant - j)}, the others of size about one, of both
     * signs.
     */
    static double[][] spectrum(long seed, int dominant, double scale) {
        int n = dimension();
        Random random = new Random(seed);
        double[][] u = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                u[i][j] = random.nextGaussian();
            }
        }
        // Gram-Schmidt on the columns
        for (int j = 0; j < n; j++) {
            for (int k = 0; k < j; k++) {
                double dot = 0;
                for (int i = 0; i < n; i++) {
                    dot += u[i][j] * u[i][k];
                }
                for (int i = 0; i < n; i++) {
                    u[i][j] -= dot * u[i][k];
                }
            }
            double norm = 0;
            for (int i = 0; i < n; i++) {
                norm += u[i][j] * u[i][j];
            }
            for (int i = 0; i < n; i++) {
                u[i][j] /= Math.sqrt(norm);
            }
        }
        double[] lambda = new double[n];
        for (int j = 0; j < n; j++) {
            lambda[j] = j < dominant ? scale * (dominant - j) : random.nextGaussian();
        }
        double[][] a = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < n; k++) {
                double sum = 0;
                for (int j = 0; j < n; j++) {
                    sum += u[i][j] * lambda[j] * u[k][j];
                }
                a[i][k] = sum;
            }
        }
        return a;
    }

    /** A symmetric matrix with independent Gaussian entries plus a shifted diagonal. */
    static double[][] random(long seed) {
        int n = dimension();
        Random random = new Random(seed);
        double[][] a = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k <= i; k++) {
                a[i][k] = random.nextGaussian();
                a[k][i] = a[i][k];
            }
            a[i][i] += 2 + i % 3;
        }
        return a;
    }

    static DenseOperator of(NDManager manager, DataType type, double[][] matrix) {
        return new DenseOperator(manager, type, matrix);
    }

    double[] diagonal() {
        double[] d = new double[matrix.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = matrix[i][i];
        }
        return d;
    }

    double trace() {
        double t = 0;
        for (double d : diagonal()) {
            t += d;
        }
        return t;
    }

    /** {@inheritDoc} */
    @Override
    public NDList getParameters() {
        return parameters;
    }

    /** {@inheritDoc} */
    @Override
    public NDList multiply(NDList vector) {
        products.incrementAndGet();
        int n = matrix.length;
        double[] v = new double[n];
        int offset = 0;
        for (int i = 0; i < parameters.size(); i++) {
            NDArray p = parameters.get(i);
            NDArray x = vector.get(i);
            if (!x.getShape().equals(p.getShape())
                    || x.getDataType() != p.getDataType()
                    || !x.getDevice().equals(p.getDevice())) {
                violations.add(
                        "entry "
                                + i
                                + ": "
                                + x.getShape()
                                + " "
                                + x.getDataType()
                                + " "
                                + x.getDevice());
            }
            try (NDArray asDouble = x.toType(DataType.FLOAT64, true)) {
                double[] values = asDouble.toDoubleArray();
                System.arraycopy(values, 0, v, offset, values.length);
                offset += values.length;
            }
        }
        double[] av = new double[n];
        for (int i = 0; i < n; i++) {
            double sum = 0;
            for (int k = 0; k < n; k++) {
                sum += matrix[i][k] * v[k];
            }
            av[i] = sum;
        }
        NDList result = new NDList();
        offset = 0;
        for (NDArray p : parameters) {
            int size = (int) p.size();
            double[] part = new double[size];
            System.arraycopy(av, offset, part, 0, size);
            offset += size;
            NDManager manager = p.getManager();
            NDArray product = manager.create(part, p.getShape());
            if (p.getDataType() != DataType.FLOAT64) {
                NDArray converted = product.toType(p.getDataType(), false);
                product.close();
                product = converted;
            }
            result.add(product);
        }
        return result;
    }
}
