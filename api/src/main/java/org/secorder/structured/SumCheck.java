package org.secorder.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.ParallelBlock;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.secorder.evaluation.HostArrays;

/**
 * Checks that a {@link ParallelBlock} combines its branches by summing them, by applying its
 * combining function (a private field in DJL 0.36.0) to probe arrays.
 */
final class SumCheck {

    private static final double TOLERANCE = 1e-12;

    private SumCheck() {}

    /**
     * Returns whether a parallel block sums the single outputs of its branches.
     *
     * @param block the block
     * @param manager a manager for the probe arrays
     * @return whether the block is a sum of its branches
     */
    static boolean isSum(ParallelBlock block, NDManager manager) {
        int branches = block.getChildren().size();
        if (branches == 0) {
            return false;
        }
        Function<List<NDList>, NDList> function = combiner(block);
        List<NDList> inputs = new ArrayList<>(branches);
        NDArray expected = null;
        for (int i = 0; i < branches; i++) {
            double[] values = new double[6];
            for (int j = 0; j < values.length; j++) {
                values[j] = Math.sin(1.7 * i + 0.9 * j + 0.3) * (i + 1);
            }
            NDArray probe = HostArrays.create(manager, values, new Shape(2, 3));
            inputs.add(new NDList(probe));
            expected = expected == null ? probe : expected.add(probe);
        }
        try {
            NDList output = function.apply(inputs);
            if (output.size() != 1 || !output.head().getShape().equals(expected.getShape())) {
                return false;
            }
            NDArray difference = output.head().toType(DataType.FLOAT64, false).sub(expected);
            return difference.abs().max().getDouble() <= TOLERANCE;
        } catch (RuntimeException e) {
            return false;
        }
    }

    @SuppressWarnings("unchecked")
    private static Function<List<NDList>, NDList> combiner(ParallelBlock block) {
        return (Function<List<NDList>, NDList>)
                PrivateFields.read(block, ParallelBlock.class, "function");
    }
}
