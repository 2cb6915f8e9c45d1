package org.secorder.structured.internal.attention;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.BatchNorm;
import ai.djl.nn.transformer.ScaledDotProductAttentionBlock;
import ai.djl.nn.transformer.TransformerEncoderBlock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.secorder.structured.internal.PrivateFields;
import org.secorder.structured.internal.rules.ActivationFunction;

/**
 * The derivatives of DJL's {@link TransformerEncoderBlock} in inference mode, from its equations:
 * {@code r = attention(x) + x}, {@code n = norm1(r)}, {@code y = norm2(feedForward(n) + x)} (DJL
 * adds the block's input, not {@code n}, before the second normalization), its dropouts the
 * identity and its normalizations DJL's {@code BatchNorm} over the embedding axis with the running
 * statistics, {@code gamma (z - mean) / sqrt(var + eps) + beta}.
 *
 * <p>The feed-forward block is a sequence of per-token Linear blocks and elementwise activations
 * (DJL's {@code PointwiseFeedForwardBlock}); the activations come recognized, with their
 * derivatives, from the rule table. The products are backpropagation written out by hand for all
 * rows at once, so the generalized Gauss-Newton diagonal costs about one backward pass of the block
 * per column of the loss factor.
 */
public final class TransformerEncoderDerivatives extends TokenDerivatives {

    private final SelfAttention attention;
    private final Normalization attentionNorm;
    private final Normalization outputNorm;
    private final List<Piece> feedForward;

    /**
     * Creates the derivatives of an encoder block for one computation.
     *
     * @param description the block's path and kind, for messages
     * @param block the block
     * @param feedForward the feed-forward block's steps, in order
     * @param ownCurvature whether the block's own curvature is needed (the Hessian)
     */
    public TransformerEncoderDerivatives(
            String description,
            TransformerEncoderBlock block,
            List<Step> feedForward,
            boolean ownCurvature) {
        super(description, block, ownCurvature);
        this.attention =
                new SelfAttention(
                        this, (ScaledDotProductAttentionBlock) part(block, "selfAttentionBlock"));
        this.attentionNorm = new Normalization((BatchNorm) part(block, "attentionNorm"));
        this.outputNorm = new Normalization((BatchNorm) part(block, "outputNorm"));
        this.feedForward = new ArrayList<>();
        for (Step step : feedForward) {
            this.feedForward.add(
                    step.linear != null
                            ? new LinearPiece(step.linear)
                            : new ActivationPiece(step.function, step.parameters));
        }
    }

    /**
     * Returns a part of an encoder block, by the name of its field in DJL 0.36.0.
     *
     * @param block the block
     * @param field the field: {@code selfAttentionBlock}, {@code attentionNorm}, {@code
     *     pointWisefullyConnected} or {@code outputNorm}
     * @return the part
     */
    public static Block part(TransformerEncoderBlock block, String field) {
        return (Block) PrivateFields.read(block, TransformerEncoderBlock.class, field);
    }

    /** {@inheritDoc} */
    @Override
    NDArray compute(Values values, NDArray x) {
        NDArray residual = attention.forward(values, x).add(x);
        NDArray z = attentionNorm.forward(values, residual);
        for (Piece piece : feedForward) {
            z = piece.forward(values, z);
        }
        return outputNorm.forward(values, z.add(x));
    }

    /** {@inheritDoc} */
    @Override
    NDArray backward(NDArray rows, Map<Parameter, NDArray> products, boolean inputNeeded) {
        NDArray g = outputNorm.backward(rows, products);
        NDArray onInput = g;
        for (int i = feedForward.size() - 1; i >= 0; i--) {
            g = feedForward.get(i).backward(g, products);
        }
        g = attentionNorm.backward(g, products);
        NDArray throughAttention = attention.backward(g, products, inputNeeded);
        return inputNeeded ? onInput.add(g).add(throughAttention) : null;
    }

    /**
     * One step of the feed-forward block: a {@link Linear} block on every token, or an elementwise
     * activation recognized by the rule table.
     */
    public static final class Step {

        private final Linear linear;
        private final ActivationFunction function;
        private final double[] parameters;

        private Step(Linear linear, ActivationFunction function, double[] parameters) {
            this.linear = linear;
            this.function = function;
            this.parameters = parameters;
        }

        /**
         * Returns the step of a Linear block.
         *
         * @param linear the block
         * @return the step
         */
        public static Step linear(Linear linear) {
            return new Step(linear, null, null);
        }

        /**
         * Returns the step of an elementwise activation.
         *
         * @param function the function
         * @param parameters its parameters
         * @return the step
         */
        public static Step activation(ActivationFunction function, double[] parameters) {
            return new Step(null, function, parameters.clone());
        }
    }

    /** A step of the feed-forward block, on every token. */
    private interface Piece {

        /** Computes the step and keeps what {@link #backward} needs. */
        NDArray forward(Values values, NDArray z);

        /** Records the step's products (where wanted) and returns the rows on its input. */
        NDArray backward(NDArray rows, Map<Parameter, NDArray> products);
    }

    /** A Linear block of the feed-forward block. */
    private final class LinearPiece implements Piece {

        private final TokenLinear linear;
        private NDArray input;

        LinearPiece(Linear block) {
            linear = new TokenLinear(TransformerEncoderDerivatives.this, block);
        }

        @Override
        public NDArray forward(Values values, NDArray z) {
            input = keep(z);
            linear.read(values);
            return linear.apply(z);
        }

        @Override
        public NDArray backward(NDArray rows, Map<Parameter, NDArray> products) {
            linear.products(rows, input, products);
            return linear.transpose(rows);
        }
    }

    /** An elementwise activation of the feed-forward block. */
    private final class ActivationPiece implements Piece {

        private final ActivationFunction function;
        private final double[] parameters;
        private NDArray slope;

        ActivationPiece(ActivationFunction function, double[] parameters) {
            this.function = function;
            this.parameters = parameters;
        }

        @Override
        public NDArray forward(Values values, NDArray z) {
            NDArray y = function.value(z, parameters);
            slope = keep(function.first(z, y, parameters));
            return y;
        }

        @Override
        public NDArray backward(NDArray rows, Map<Parameter, NDArray> products) {
            return rows.mul(slope.expandDims(1));
        }
    }

    /** DJL's BatchNorm over the embedding axis in inference mode. */
    private final class Normalization {

        private final Parameter gamma;
        private final Parameter beta;
        private final Parameter runningMean;
        private final Parameter runningVar;
        private final float epsilon;
        private NDArray scale;
        private NDArray normalized;

        Normalization(BatchNorm block) {
            int axis = PrivateFields.readInt(block, BatchNorm.class, "axis");
            if (axis != 2 && axis != -1) {
                throw new UnsupportedOperationException(
                        "its BatchNorm normalizes axis " + axis + ", not the embedding axis 2");
            }
            gamma = block.getParameters().get("gamma");
            beta = block.getParameters().get("beta");
            runningMean = block.getParameters().get("runningMean");
            runningVar = block.getParameters().get("runningVar");
            epsilon = PrivateFields.readFloat(block, BatchNorm.class, "epsilon");
        }

        NDArray forward(Values values, NDArray z) {
            NDArray inverse = values.of(runningVar).add(epsilon).sqrt().pow(-1);
            NDArray mean = values.of(runningMean);
            normalized = keep(z.sub(mean).mul(inverse));
            NDArray factor = values.of(gamma);
            scale = keep(factor.mul(inverse));
            return normalized.mul(factor).add(values.of(beta));
        }

        NDArray backward(NDArray rows, Map<Parameter, NDArray> products) {
            record(products, gamma, () -> tokenSums(rows.mul(normalized.expandDims(1))));
            record(products, beta, () -> tokenSums(rows));
            return rows.mul(scale);
        }
    }
}
