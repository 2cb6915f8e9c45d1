package org.secorder.operator;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import org.secorder.evaluation.HostArrays;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The eigenvalues of largest magnitude of a symmetric {@link CurvatureOperator}, by the Lanczos
 * iteration with full reorthogonalization.
 *
 * <p>Each iteration costs one operator product and keeps one Lanczos vector (the size of all
 * parameters), so memory grows with the iterations. After every iteration the tridiagonal matrix is
 * decomposed (Jacobi rotations, plain Java), and the iteration stops once the residual estimate
 * {@code beta_m |y_m|} of each wanted Ritz pair is within the tolerance relative to its Ritz value,
 * once the Krylov space is the whole space, or at the iteration limit. Should the Krylov space
 * become invariant, the iteration restarts from a new random vector orthogonal to it. The residual
 * norms reported are then measured, with one more product per eigenpair: {@code ||A v - lambda
 * v||}.
 *
 * <p>A Krylov space holds one eigenvector per distinct eigenvalue, so an eigenvalue of exact
 * multiplicity is reported with its multiplicity only where restarts reach its other eigenvectors:
 * when the Krylov space becomes invariant before {@code count} eigenvalues converge. Otherwise its
 * copies may be missed, and the next eigenvalues reported in their place; eigenvalues that are
 * merely close are found, each after enough iterations.
 *
 * <p>The start vector comes from a seeded {@link Random}: the same seed gives the same result on
 * every engine.
 */
public final class Lanczos {

    private static final Logger LOGGER = LoggerFactory.getLogger(Lanczos.class);

    private final CurvatureOperator operator;
    private final int count;
    private final double tolerance;
    private final int maxIterations;
    private final long seed;

    private final NDArray[] parameters;
    private final long dimension;
    private long products;

    /**
     * Prepares a solver.
     *
     * @param operator the symmetric operator
     * @param count how many eigenvalues to find, at least 1 and at most the dimension
     * @param tolerance the relative residual norm to reach, positive
     * @param maxIterations the most Lanczos iterations (products) before the residual checks
     * @param seed the seed of the start vector
     */
    public Lanczos(
            CurvatureOperator operator, int count, double tolerance, int maxIterations, long seed) {
        if (operator == null) {
            throw new IllegalArgumentException("operator must not be null");
        }
        this.operator = operator;
        this.parameters = operator.getParameters().toArray(new NDArray[0]);
        long size = 0;
        for (NDArray parameter : parameters) {
            size += parameter.size();
        }
        this.dimension = size;
        if (count < 1 || count > dimension) {
            throw new IllegalArgumentException(
                    "count must be between 1 and the number of parameter elements, "
                            + dimension
                            + ", got "
                            + count);
        }
        if (!(tolerance > 0) || Double.isInfinite(tolerance)) {
            throw new IllegalArgumentException(
                    "tolerance must be positive and finite, got " + tolerance);
        }
        if (maxIterations < count) {
            throw new IllegalArgumentException(
                    "maxIterations must be at least count (" + count + "), got " + maxIterations);
        }
        this.count = count;
        this.tolerance = tolerance;
        this.maxIterations = maxIterations;
        this.seed = seed;
    }

    /**
     * Runs the iteration.
     *
     * @return the eigenpairs, which the caller must close
     */
    public Eigenpairs compute() {
        NDManager results = parameters[0].getManager().newSubManager();
        try (NDManager work = parameters[0].getManager().newSubManager()) {
            Eigenpairs pairs = iterate(work, results);
            return pairs;
        } catch (RuntimeException | Error e) {
            results.close();
            throw e;
        }
    }

    private Eigenpairs iterate(NDManager work, NDManager results) {
        Random random = new Random(seed);
        List<NDArray[]> basis = new ArrayList<>();
        List<Double> alphas = new ArrayList<>();
        List<Double> betas = new ArrayList<>();
        basis.add(normalized(randomVector(random, work), work));
        int limit = (int) Math.min(maxIterations, dimension);
        Ritz ritz = null;
        for (int j = 0; j < limit; j++) {
            NDArray[] q = basis.get(j);
            NDArray[] w = multiply(q, work);
            double alpha = dot(q, w);
            axpy(w, -alpha, q);
            if (j > 0) {
                axpy(w, -betas.get(j - 1), basis.get(j - 1));
            }
            reorthogonalize(w, basis);
            reorthogonalize(w, basis);
            alphas.add(alpha);
            double beta = Math.sqrt(Math.max(0, dot(w, w)));
            ritz = new Ritz(alphas, betas, beta);
            // at an invariant subspace every residual estimate vanishes: look further instead
            boolean invariant =
                    beta <= 1e-10 * Math.max(ritz.largestMagnitude(), Double.MIN_NORMAL);
            if (j + 1 == limit || !invariant && ritz.converged(count, tolerance)) {
                break;
            }
            if (invariant) {
                // an invariant subspace: start again, orthogonal to it
                NDArray[] restart = randomVector(random, work);
                reorthogonalize(restart, basis);
                reorthogonalize(restart, basis);
                betas.add(0.0);
                basis.add(normalized(restart, work));
            } else {
                betas.add(beta);
                scale(w, 1 / beta);
                basis.add(w);
            }
        }
        return eigenpairs(ritz, basis, work, results);
    }

    private Eigenpairs eigenpairs(
            Ritz ritz, List<NDArray[]> basis, NDManager work, NDManager results) {
        int[] order = ritz.largest(count);
        int m = ritz.size();
        double[] values = new double[count];
        double[] residuals = new double[count];
        List<NDList> vectors = new ArrayList<>();
        List<NDList> ritzVectors = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            int index = order[i];
            values[i] = ritz.decomposition.getValues()[index];
            NDArray[] v = zeros(work);
            for (int l = 0; l < m; l++) {
                axpy(v, ritz.decomposition.vector(l, index), basis.get(l));
            }
            ritzVectors.add(new NDList(v));
        }
        // one more product each, all in one call where the operator shares work between them
        List<NDList> images = operator.multiplyAll(ritzVectors);
        products += count;
        boolean converged = true;
        for (int i = 0; i < count; i++) {
            NDList image = images.get(i);
            image.attach(work);
            NDArray[] av = image.toArray(new NDArray[0]);
            NDArray[] v = ritzVectors.get(i).toArray(new NDArray[0]);
            axpy(av, -values[i], v);
            residuals[i] = Math.sqrt(Math.max(0, dot(av, av)));
            converged &= residuals[i] <= tolerance * Math.abs(values[i]);
            NDList vector = ritzVectors.get(i);
            vector.attach(results);
            vectors.add(vector);
        }
        if (!converged) {
            LOGGER.warn(
                    "Lanczos did not reach the relative residual {} for the {} largest eigenvalues"
                            + " in {} iterations (residual norms {}, eigenvalues {}); raise"
                            + " maxIterations or the tolerance",
                    tolerance,
                    count,
                    m,
                    Arrays.toString(residuals),
                    Arrays.toString(values));
        }
        return new Eigenpairs(values, residuals, vectors, products, m, converged, results);
    }

    private NDArray[] multiply(NDArray[] vector, NDManager work) {
        NDList product = operator.multiply(new NDList(vector));
        products++;
        product.attach(work);
        return product.toArray(new NDArray[0]);
    }

    private NDArray[] randomVector(Random random, NDManager work) {
        NDArray[] vector = new NDArray[parameters.length];
        for (int i = 0; i < parameters.length; i++) {
            NDArray parameter = parameters[i];
            double[] values = new double[Math.toIntExact(parameter.size())];
            for (int k = 0; k < values.length; k++) {
                values[k] = random.nextGaussian();
            }
            vector[i] =
                    HostArrays.create(work, values, parameter.getShape())
                            .toDevice(parameter.getDevice(), false)
                            .toType(parameter.getDataType(), false);
        }
        return vector;
    }

    private NDArray[] zeros(NDManager work) {
        NDArray[] vector = new NDArray[parameters.length];
        for (int i = 0; i < parameters.length; i++) {
            NDArray parameter = parameters[i];
            vector[i] =
                    work.zeros(
                            parameter.getShape(), parameter.getDataType(), parameter.getDevice());
        }
        return vector;
    }

    private static NDArray[] normalized(NDArray[] vector, NDManager work) {
        double norm = Math.sqrt(dot(vector, vector));
        scale(vector, 1 / norm);
        return vector;
    }

    private static void reorthogonalize(NDArray[] w, List<NDArray[]> basis) {
        for (NDArray[] q : basis) {
            axpy(w, -dot(q, w), q);
        }
    }

    private static double dot(NDArray[] a, NDArray[] b) {
        double sum = 0;
        for (int i = 0; i < a.length; i++) {
            try (NDArray product = a[i].mul(b[i]);
                    NDArray total = product.sum();
                    NDArray wide = total.toType(DataType.FLOAT64, false)) {
                sum += wide.getDouble();
            }
        }
        return sum;
    }

    /** {@code y += a x}, in place. */
    private static void axpy(NDArray[] y, double a, NDArray[] x) {
        for (int i = 0; i < y.length; i++) {
            try (NDArray term = x[i].mul(a)) {
                y[i].addi(term);
            }
        }
    }

    private static void scale(NDArray[] x, double a) {
        for (NDArray array : x) {
            array.muli(a);
        }
    }

    /** The Ritz values and vectors of the tridiagonal matrix after an iteration. */
    private static final class Ritz {

        final SymmetricEigen decomposition;
        final double beta;
        final int size;

        Ritz(List<Double> alphas, List<Double> betas, double beta) {
            size = alphas.size();
            double[] diagonal = new double[size];
            double[] off = new double[Math.max(0, size - 1)];
            for (int i = 0; i < size; i++) {
                diagonal[i] = alphas.get(i);
                if (i + 1 < size) {
                    off[i] = betas.get(i);
                }
            }
            decomposition = SymmetricEigen.tridiagonal(diagonal, off);
            this.beta = beta;
        }

        int size() {
            return size;
        }

        double largestMagnitude() {
            double largest = 0;
            for (double value : decomposition.getValues()) {
                largest = Math.max(largest, Math.abs(value));
            }
            return largest;
        }

        /** The indices of the {@code k} Ritz values of largest magnitude, largest first. */
        int[] largest(int k) {
            double[] values = decomposition.getValues();
            Integer[] indices = new Integer[values.length];
            for (int i = 0; i < indices.length; i++) {
                indices[i] = i;
            }
            Arrays.sort(
                    indices,
                    Comparator.comparingDouble((Integer i) -> Math.abs(values[i])).reversed());
            int[] top = new int[Math.min(k, indices.length)];
            for (int i = 0; i < top.length; i++) {
                top[i] = indices[i];
            }
            return top;
        }

        boolean converged(int k, double tolerance) {
            if (size < k) {
                return false;
            }
            double[] values = decomposition.getValues();
            for (int index : largest(k)) {
                double estimate = beta * Math.abs(decomposition.vector(size - 1, index));
                if (!(estimate <= tolerance * Math.abs(values[index]))) {
                    return false;
                }
            }
            return true;
        }
    }
}
