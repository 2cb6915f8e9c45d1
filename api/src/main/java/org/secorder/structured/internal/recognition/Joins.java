package org.secorder.structured.internal.recognition;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.ParallelBlock;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.function.Function;
import org.secorder.evaluation.HostArrays;
import org.secorder.structured.internal.PrivateFields;
import org.secorder.structured.internal.propagation.ConcatLayer;
import org.secorder.structured.internal.propagation.Layer;
import org.secorder.structured.internal.propagation.SequenceLayer;
import org.secorder.structured.internal.propagation.SumLayer;
import org.secorder.structured.internal.rules.ActivationLayer;

/**
 * The rule of a {@code ParallelBlock}: what its join computes, found by applying the join (a
 * private field in DJL 0.36.0) to probe arrays.
 *
 * <p>A join is a sum if it returns the sum of the probes; it is a sum followed by an elementwise
 * function if its value depends only on the sum (three different splits of the same sum give the
 * same value), the function then being {@code x -> join(x, 0, ..., 0)}, recognized like an
 * anonymous activation; it is a concatenation if it equals {@code NDArrays.concat} of the probes
 * along some axis after the batch axis. Findings are kept per block and engine: a join cannot
 * change.
 */
final class Joins {

    /** What the join rule supports, for the list of supported blocks. */
    static final String DESCRIPTION =
            "ParallelBlock and its subclasses whose join is a sum of any number of branches"
                    + " (residual blocks), a sum followed by an elementwise activation (ResNetV1's"
                    + " relu(unit + shortcut)), or a concatenation along a feature axis (GoogLeNet,"
                    + " SqueezeNet), recognized by evaluating the join on probe inputs";

    private static final double TOLERANCE = 1e-12;
    private static final Shape PROBE = new Shape(2, 3, 2, 2);
    private static final Map<Block, Kind> KINDS = Collections.synchronizedMap(new WeakHashMap<>());

    private Joins() {}

    /** What a join computes. */
    private enum Kind {
        SUM,
        SUM_THEN_ELEMENTWISE,
        CONCAT,
        OTHER
    }

    static Layer create(Block block, String path, Recognition recognition) {
        ParallelBlock parallel = (ParallelBlock) block;
        String description = recognition.describe(block, path);
        Function<List<NDList>, NDList> join = combiner(parallel);
        int count = parallel.getChildren().size();
        Kind kind = count == 0 ? Kind.OTHER : kind(parallel, join, recognition.getManager());
        if (kind == Kind.OTHER) {
            throw recognition.unsupported(
                    block,
                    path,
                    "its join is not a sum of its branches, a sum followed by an elementwise"
                            + " activation, or a concatenation along an axis (checked on probe"
                            + " inputs)");
        }
        List<Layer> branches = recognition.children(block, path);
        if (kind == Kind.SUM) {
            return new SumLayer(description, branches);
        }
        if (kind == Kind.CONCAT) {
            return new ConcatLayer(description, branches, outputs -> join.apply(outputs).head());
        }
        LambdaBlock function =
                new LambdaBlock(list -> join.apply(withZeros(list.head(), count)), "join");
        Probes.Finding finding = Probes.identify(function, recognition.getManager());
        SumLayer sum = new SumLayer(description + " sum", branches);
        if (finding.isIdentity()) {
            return sum;
        }
        if (finding.getFunction() == null) {
            throw recognition.unsupported(
                    block,
                    path,
                    "its join is a function of the sum of its branches that is not a known"
                            + " elementwise activation");
        }
        Layer activation =
                new ActivationLayer(
                        description + " join",
                        function,
                        finding.getFunction(),
                        finding.getParameters());
        return new SequenceLayer(description, List.of(sum, activation));
    }

    private static List<NDList> withZeros(NDArray first, int count) {
        List<NDList> inputs = new ArrayList<>(count);
        inputs.add(new NDList(first));
        for (int i = 1; i < count; i++) {
            inputs.add(new NDList(first.zerosLike()));
        }
        return inputs;
    }

    private static Kind kind(
            ParallelBlock block, Function<List<NDList>, NDList> join, NDManager manager) {
        Kind kind = KINDS.get(block);
        if (kind == null) {
            try (NDManager scope = manager.newSubManager()) {
                kind = probe(block.getChildren().size(), join, scope);
            }
            KINDS.put(block, kind);
        }
        return kind;
    }

    private static Kind probe(int count, Function<List<NDList>, NDList> join, NDManager manager) {
        List<NDList> inputs = new ArrayList<>(count);
        NDList parts = new NDList(count);
        NDArray sum = null;
        for (int i = 0; i < count; i++) {
            double[] values = new double[Math.toIntExact(PROBE.size())];
            for (int j = 0; j < values.length; j++) {
                values[j] = Math.sin(1.7 * i + 0.9 * j + 0.3) * (i + 1);
            }
            NDArray probe = HostArrays.create(manager, values, PROBE);
            inputs.add(new NDList(probe));
            parts.add(probe);
            sum = sum == null ? probe : sum.add(probe);
        }
        NDArray output = apply(join, inputs);
        if (output == null) {
            return Kind.OTHER;
        }
        if (output.getShape().equals(PROBE)) {
            if (close(output, sum)) {
                return Kind.SUM;
            }
            NDArray whole = apply(join, withZeros(sum, count));
            List<NDList> even = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                even.add(new NDList(sum.div(count)));
            }
            NDArray split = apply(join, even);
            if (whole != null && split != null && close(output, whole) && close(output, split)) {
                return Kind.SUM_THEN_ELEMENTWISE;
            }
            return Kind.OTHER;
        }
        for (int axis = 1; axis < PROBE.dimension(); axis++) {
            if (count > 1 && close(output, NDArrays.concat(parts, axis))) {
                return Kind.CONCAT;
            }
        }
        return Kind.OTHER;
    }

    private static NDArray apply(Function<List<NDList>, NDList> join, List<NDList> inputs) {
        try {
            NDList output = join.apply(inputs);
            return output.size() == 1 ? output.head() : null;
        } catch (RuntimeException e) {
            return null;
        }
    }

    private static boolean close(NDArray actual, NDArray expected) {
        if (!actual.getShape().equals(expected.getShape())) {
            return false;
        }
        NDArray difference = actual.toType(DataType.FLOAT64, false).sub(expected);
        return difference.abs().max().getDouble() <= TOLERANCE;
    }

    @SuppressWarnings("unchecked")
    private static Function<List<NDList>, NDList> combiner(ParallelBlock block) {
        return (Function<List<NDList>, NDList>)
                PrivateFields.read(block, ParallelBlock.class, "function");
    }
}
