package org.secorder.structured.internal.recognition;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import ai.djl.training.ParameterStore;
import java.util.Collections;
import java.util.Map;
import java.util.WeakHashMap;
import org.secorder.evaluation.HostArrays;
import org.secorder.structured.internal.rules.ActivationFunction;

/**
 * Finds out what a {@code LambdaBlock} computes by running it on probe values, and whether a {@code
 * ParallelBlock} sums its branches. Findings are kept per block and engine, since the functions of
 * both kinds of block cannot change.
 */
public final class Probes {

    private static final double[] PROBE = {
        -3.1, -1.7, -1, -0.45, -0.1, 0.2, 0.7, 1, 2.3, 4.1, 6.5, 7.2
    };
    private static final int AT_MINUS_ONE = 2;
    private static final int AT_ONE = 7;
    private static final double TOLERANCE = 1e-5;
    private static final Map<Block, Finding> FINDINGS =
            Collections.synchronizedMap(new WeakHashMap<>());

    private Probes() {}

    /**
     * Returns the parameters with which a lambda computes an activation, or {@code null} if it
     * computes another function.
     *
     * @param block the lambda
     * @param function the activation its name promises
     * @param manager a manager for probe arrays
     * @return the parameters, or {@code null}
     */
    public static double[] activation(
            LambdaBlock block, ActivationFunction function, NDManager manager) {
        Finding finding = find(block, manager, function);
        return finding.function == function ? finding.parameters : null;
    }

    /**
     * Returns what an unnamed lambda computes: an activation, the identity, or neither.
     *
     * @param block the lambda
     * @param manager a manager for probe arrays
     * @return the finding
     */
    public static Finding identify(LambdaBlock block, NDManager manager) {
        return find(block, manager, null);
    }

    private static Finding find(LambdaBlock block, NDManager manager, ActivationFunction named) {
        String engine = manager.getEngine().getEngineName();
        Finding finding = FINDINGS.get(block);
        if (finding == null || !finding.engine.equals(engine)) {
            finding = probe(block, manager, named);
            FINDINGS.put(block, finding);
        }
        return finding;
    }

    private static Finding probe(LambdaBlock block, NDManager manager, ActivationFunction named) {
        String engine = manager.getEngine().getEngineName();
        try (NDManager scope = manager.newSubManager()) {
            NDArray input = HostArrays.create(scope, PROBE, new Shape(1, PROBE.length));
            NDArray output = run(block, scope, input);
            if (output == null || !output.getShape().equals(input.getShape())) {
                return new Finding(engine, null, null, false, named == null && moves(block, scope));
            }
            if (named == null && output.sub(input).abs().max().getDouble() == 0) {
                return new Finding(engine, null, null, true, false);
            }
            ActivationFunction[] candidates =
                    named == null ? ActivationFunction.values() : new ActivationFunction[] {named};
            for (ActivationFunction function : candidates) {
                double[] parameters = fitted(output, input, function);
                if (parameters != null) {
                    return new Finding(engine, function, parameters, false, false);
                }
            }
            return new Finding(engine, null, null, false, named == null && moves(block, scope));
        }
    }

    /**
     * Returns whether a lambda may only move values within a sample: it fails on the probe (its
     * shapes are those of a real model, decided when it runs), or it maps the distinct values
     * {@code 1 .. d} to some of them and {@code -x} to minus that.
     */
    private static boolean moves(LambdaBlock block, NDManager manager) {
        double[] values = new double[PROBE.length];
        for (int i = 0; i < values.length; i++) {
            values[i] = i + 1;
        }
        NDArray input = HostArrays.create(manager, values, new Shape(1, values.length));
        NDArray output = run(block, manager, input);
        if (output == null || output.getShape().dimension() == 0) {
            return true;
        }
        if (output.getShape().get(0) != 1) {
            // a lambda written for the model's shapes: decided on the real input
            return true;
        }
        NDArray negated = run(block, manager, input.neg());
        if (negated == null || !negated.getShape().equals(output.getShape())) {
            return false;
        }
        double[] result = output.toType(DataType.FLOAT64, false).toDoubleArray();
        double[] opposite = negated.toType(DataType.FLOAT64, false).toDoubleArray();
        for (int i = 0; i < result.length; i++) {
            double v = result[i];
            if (v != Math.rint(v) || v < 1 || v > values.length || opposite[i] != -v) {
                return false;
            }
        }
        return true;
    }

    private static double[] fitted(NDArray output, NDArray input, ActivationFunction function) {
        double[] values = output.toType(DataType.FLOAT64, false).toDoubleArray();
        double[] parameters = function.fit(values[AT_ONE], values[AT_MINUS_ONE]);
        double[] expected = function.value(input, parameters).toDoubleArray();
        for (int i = 0; i < expected.length; i++) {
            double bound = TOLERANCE * Math.max(1, Math.abs(expected[i]));
            if (!(Math.abs(values[i] - expected[i]) <= bound)) {
                return null;
            }
        }
        return parameters;
    }

    private static NDArray run(LambdaBlock block, NDManager manager, NDArray input) {
        try {
            NDList outputs =
                    block.forward(new ParameterStore(manager, false), new NDList(input), false);
            return outputs.size() == 1 ? outputs.head() : null;
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** What probing a block found. */
    public static final class Finding {

        private final String engine;
        private final ActivationFunction function;
        private final double[] parameters;
        private final boolean identity;
        private final boolean moves;

        Finding(
                String engine,
                ActivationFunction function,
                double[] parameters,
                boolean identity,
                boolean moves) {
            this.moves = moves;
            this.engine = engine;
            this.function = function;
            this.parameters = parameters == null ? null : parameters.clone();
            this.identity = identity;
        }

        /**
         * Returns the activation the block computes.
         *
         * @return the activation, or {@code null}
         */
        ActivationFunction getFunction() {
            return function;
        }

        /**
         * Returns the activation's parameters.
         *
         * @return the parameters, or {@code null}
         */
        double[] getParameters() {
            return parameters == null ? null : parameters.clone();
        }

        /**
         * Returns whether the block may only move values within a sample, to be decided on the real
         * input.
         *
         * @return whether the block may be a permutation
         */
        public boolean mayMoveValues() {
            return moves;
        }

        /**
         * Returns whether the block is the identity.
         *
         * @return whether the finding is the identity
         */
        boolean isIdentity() {
            return identity;
        }
    }
}
