package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import org.secorder.structured.internal.propagation.Layer;

/** Checks a block's output against the formula of its rule. */
final class Outputs {

    private static final double RELATIVE_TOLERANCE = 1e-4;

    private Outputs() {}

    /**
     * Throws if a block's output differs from what its rule computes.
     *
     * @param layer the layer, for the message
     * @param output the block's output
     * @param expected what the rule computes
     * @param formula the rule's formula, for the message
     * @throws UnsupportedOperationException if they differ
     */
    static void check(Layer layer, NDArray output, NDArray expected, String formula) {
        double error = -1;
        if (output.getShape().equals(expected.getShape())) {
            error = output.sub(expected).abs().max().toType(DataType.FLOAT64, false).getDouble();
        }
        double size = expected.abs().max().toType(DataType.FLOAT64, false).getDouble();
        if (!(error >= 0 && error <= RELATIVE_TOLERANCE * Math.max(1, size))) {
            throw new UnsupportedOperationException(
                    layer.getDescription()
                            + " does not compute "
                            + formula
                            + " as the rule of its superclass does; register a rule for its class"
                            + " with BlockRules.register");
        }
    }
}
