package org.secorder.structured.internal.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import java.util.Map;

/**
 * A {@link Linear} block on every token, {@code y = z W^T + b}: its forward pass from the
 * parameters' values, and its products for rows on its output (each row's product with the weight
 * is {@code sum_t g[t]^T z[t]}, with the bias {@code sum_t g[t]}).
 */
final class TokenLinear {

    private final TokenDerivatives owner;
    private final Parameter weightParameter;
    private final Parameter biasParameter;
    private NDArray weight;
    private NDArray bias;

    /**
     * Reads a Linear block.
     *
     * @param owner keeps the arrays of a forward pass
     * @param block the block
     */
    TokenLinear(TokenDerivatives owner, Linear block) {
        this.owner = owner;
        weightParameter = block.getParameters().get("weight");
        biasParameter =
                block.getParameters().contains("bias") ? block.getParameters().get("bias") : null;
    }

    /**
     * Takes the parameters' values for a forward pass.
     *
     * @param values the values
     */
    void read(TokenDerivatives.Values values) {
        weight = owner.keep(values.of(weightParameter));
        bias = biasParameter == null ? null : owner.keep(values.of(biasParameter));
    }

    /**
     * Applies the map to tokens, with the values last read.
     *
     * @param tokens {@code (N, T, in)}
     * @return {@code (N, T, out)}
     */
    NDArray apply(NDArray tokens) {
        return TokenDerivatives.affine(tokens, weight, bias);
    }

    /**
     * Records each row's products with the weight and the bias.
     *
     * @param rows the rows on the output, {@code (N, k, T, out)}
     * @param input the input the map had, {@code (N, T, in)}
     * @param products receives the products, or {@code null}
     */
    void products(NDArray rows, NDArray input, Map<Parameter, NDArray> products) {
        TokenDerivatives.record(
                products, weightParameter, () -> TokenDerivatives.weightProducts(rows, input));
        TokenDerivatives.record(products, biasParameter, () -> TokenDerivatives.tokenSums(rows));
    }

    /**
     * Applies the transposed map to rows: {@code g W}.
     *
     * @param rows {@code (N, k, T, out)}
     * @return {@code (N, k, T, in)}
     */
    NDArray transpose(NDArray rows) {
        return TokenDerivatives.times(rows, weight);
    }
}
