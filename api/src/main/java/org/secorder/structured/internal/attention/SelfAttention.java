package org.secorder.structured.internal.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.transformer.ScaledDotProductAttentionBlock;
import java.util.Map;
import org.secorder.structured.internal.PrivateFields;

/**
 * The equations of DJL's {@link ScaledDotProductAttentionBlock} as self-attention (one input, no
 * mask), and their backpropagation for {@code N k} rows at once.
 *
 * <p>Per sample, with {@code x} the tokens {@code (T, E)}: {@code q = x W_q^T + b_q}, likewise
 * {@code k} and {@code v}, split into {@code h} heads of width {@code H = E / h}; per head {@code A
 * = softmax(q k^T / sqrt H)} over the last axis and {@code o = A v}; the heads joined again, {@code
 * y = o W_o^T + b_o}. Backward, for rows {@code g} on {@code y}: {@code g_o = g W_o}, {@code g_A =
 * g_o v^T}, {@code g_v = A^T g_o}, {@code g_S = A (g_A - rowsum(g_A A)) / sqrt H}, {@code g_q = g_S
 * k}, {@code g_k = g_S^T q}; the projections' products are sums over the tokens of {@code g^T x}.
 */
final class SelfAttention {

    private final TokenDerivatives owner;
    private final TokenLinear query;
    private final TokenLinear key;
    private final TokenLinear value;
    private final TokenLinear result;
    private final long heads;
    private NDArray x;
    private NDArray queries;
    private NDArray keys;
    private NDArray values;
    private NDArray weights;
    private NDArray joined;
    private double scale;

    /**
     * Reads an attention block.
     *
     * @param owner keeps the arrays of a forward pass
     * @param block the block
     */
    SelfAttention(TokenDerivatives owner, ScaledDotProductAttentionBlock block) {
        this.owner = owner;
        this.query = new TokenLinear(owner, block.getQueryProjection());
        this.key = new TokenLinear(owner, block.getKeyProjection());
        this.value = new TokenLinear(owner, block.getValueProjection());
        this.result = new TokenLinear(owner, block.getResultProjection());
        this.heads =
                PrivateFields.readInt(block, ScaledDotProductAttentionBlock.class, "headCount");
    }

    /**
     * Computes the attention of the tokens to each other and keeps what {@link #backward} needs.
     *
     * @param parameters the values of the parameters
     * @param input the tokens, {@code (N, T, E)}
     * @return the output, {@code (N, T, E)}
     */
    NDArray forward(TokenDerivatives.Values parameters, NDArray input) {
        Shape shape = input.getShape();
        long width = shape.get(2) / heads;
        // DJL scales by a float32 constant, also on float64 arrays: the same value here
        scale = 1f / (float) Math.sqrt(width);
        x = input;
        query.read(parameters);
        key.read(parameters);
        value.read(parameters);
        result.read(parameters);
        queries = owner.keep(split(query.apply(input)));
        keys = owner.keep(split(key.apply(input)));
        values = owner.keep(split(value.apply(input)));
        NDArray scores = queries.matMul(keys.transpose(0, 2, 1)).mul(scale);
        weights = owner.keep(scores.softmax(-1));
        NDArray attended = weights.matMul(values);
        joined = owner.keep(join(attended, shape.get(0), 1).squeeze(1));
        return result.apply(joined);
    }

    /**
     * Backpropagates rows on the output.
     *
     * @param rows {@code (N, k, T, E)}
     * @param products receives the projections' products, or {@code null}
     * @param inputNeeded whether the rows on the input are wanted
     * @return the rows on the input, {@code (N, k, T, E)}, or {@code null}
     */
    NDArray backward(NDArray rows, Map<Parameter, NDArray> products, boolean inputNeeded) {
        Shape shape = rows.getShape();
        long n = shape.get(0);
        long k = shape.get(1);
        long steps = shape.get(2);
        long width = shape.get(3) / heads;
        result.products(rows, joined, products);
        // (N h, k T, H): every head's rows of every sample together
        NDArray onJoined =
                result.transpose(rows)
                        .reshape(n, k, steps, heads, width)
                        .transpose(0, 3, 1, 2, 4)
                        .reshape(n * heads, k * steps, width);
        NDArray onWeights =
                onJoined.matMul(values.transpose(0, 2, 1)).reshape(n * heads, k, steps, steps);
        // g_v = A^T g_o for each row: the rows side by side, (N h, T, k H)
        NDArray onValues =
                weights.transpose(0, 2, 1)
                        .matMul(
                                onJoined.reshape(n * heads, k, steps, width)
                                        .transpose(0, 2, 1, 3)
                                        .reshape(n * heads, steps, k * width))
                        .reshape(n * heads, steps, k, width)
                        .transpose(0, 2, 1, 3)
                        .reshape(n * heads, k * steps, width);
        NDArray probabilities = weights.expandDims(1);
        NDArray centered = onWeights.sub(onWeights.mul(probabilities).sum(new int[] {3}, true));
        NDArray onScores = centered.mul(probabilities).mul(scale);
        NDArray onQueries = onScores.reshape(n * heads, k * steps, steps).matMul(keys);
        NDArray onKeys =
                onScores.transpose(0, 1, 3, 2).reshape(n * heads, k * steps, steps).matMul(queries);
        NDArray q = join(onQueries, n, k);
        NDArray kk = join(onKeys, n, k);
        NDArray v = join(onValues, n, k);
        query.products(q, x, products);
        key.products(kk, x, products);
        value.products(v, x, products);
        if (!inputNeeded) {
            return null;
        }
        return query.transpose(q).add(key.transpose(kk)).add(value.transpose(v));
    }

    /** {@code (N, T, E)} to {@code (N h, T, H)}. */
    private NDArray split(NDArray tokens) {
        Shape shape = tokens.getShape();
        long n = shape.get(0);
        long steps = shape.get(1);
        long width = shape.get(2) / heads;
        return tokens.reshape(n, steps, heads, width)
                .transpose(0, 2, 1, 3)
                .reshape(n * heads, steps, width);
    }

    /** {@code (N h, k T, H)} to {@code (N, k, T, E)}. */
    private NDArray join(NDArray split, long n, long k) {
        Shape shape = split.getShape();
        long steps = shape.get(1) / k;
        long width = shape.get(2);
        return split.reshape(n, heads, k, steps, width)
                .transpose(0, 2, 3, 1, 4)
                .reshape(n, k, steps, heads * width);
    }
}
