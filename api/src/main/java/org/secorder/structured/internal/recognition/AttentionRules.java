package org.secorder.structured.internal.recognition;

import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.Dropout;
import ai.djl.nn.transformer.ScaledDotProductAttentionBlock;
import ai.djl.nn.transformer.TransformerEncoderBlock;
import ai.djl.util.Pair;
import java.util.ArrayList;
import java.util.List;
import org.secorder.structured.internal.PrivateFields;
import org.secorder.structured.internal.attention.AttentionDerivatives;
import org.secorder.structured.internal.attention.TransformerEncoderDerivatives;
import org.secorder.structured.internal.propagation.Layer;
import org.secorder.structured.internal.rules.ActivationFunction;
import org.secorder.structured.internal.rules.DerivativesLayer;

/**
 * The rules of DJL's attention blocks: {@link ScaledDotProductAttentionBlock} as self-attention and
 * {@link TransformerEncoderBlock}, their first derivatives written out by hand; for the Hessian
 * their own curvature by double backward, where the engine has it.
 */
final class AttentionRules {

    /** What the attention rule supports, for the list of supported blocks. */
    static final String ATTENTION =
            "ScaledDotProductAttentionBlock as self-attention on (batch, tokens, embedding),"
                + " without a mask, its dropout in inference mode; its own curvature (the Hessian,"
                + " not the GGN) by double backward";

    /** What the encoder rule supports, for the list of supported blocks. */
    static final String ENCODER =
            "TransformerEncoderBlock in inference mode, its feed-forward block made of Linear"
                + " blocks and DJL's activations; its own curvature (the Hessian, not the GGN) by"
                + " double backward";

    private static final String NO_SECOND_DERIVATIVES =
            "its own curvature (the softmax of attention, smooth activations) needs double"
                    + " backward, which this engine does not have; the generalized Gauss-Newton"
                    + " diagonal is covered";

    private AttentionRules() {}

    /** The rule of {@link ScaledDotProductAttentionBlock}. */
    static Layer attention(Block block, String path, Recognition recognition) {
        Object dropout =
                PrivateFields.read(
                        block, ScaledDotProductAttentionBlock.class, "attentionProbsDropout");
        if (PrivateFields.readFloat(dropout, Dropout.class, "rate") > 0) {
            recognition.requireInference(block, path, "drops attention weights at random");
        }
        requireOwnCurvature(block, path, recognition);
        GenericRule.claimAll(block, path, recognition);
        String description = recognition.describe(block, path);
        return new DerivativesLayer(
                description,
                block,
                new AttentionDerivatives(
                        description,
                        (ScaledDotProductAttentionBlock) block,
                        recognition.needsOwnCurvature()));
    }

    /** The rule of {@link TransformerEncoderBlock}. */
    static Layer encoder(Block block, String path, Recognition recognition) {
        recognition.requireInference(
                block, path, "normalizes with BatchNorm, which uses the statistics of the batch");
        requireOwnCurvature(block, path, recognition);
        Block feedForward =
                TransformerEncoderDerivatives.part(
                        (TransformerEncoderBlock) block, "pointWisefullyConnected");
        List<TransformerEncoderDerivatives.Step> steps = new ArrayList<>();
        String refusal = feedForward instanceof SequentialBlock ? null : "it is not a sequence";
        for (Pair<String, Block> child : feedForward.getChildren()) {
            TransformerEncoderDerivatives.Step step = step(child.getValue(), recognition);
            if (step == null) {
                refusal =
                        "its step "
                                + child.getKey()
                                + " is neither a Linear block nor one of DJL's activations";
                break;
            }
            steps.add(step);
        }
        if (refusal != null) {
            if (recognition.isGeneric()) {
                return GenericRule.create(
                        block, path, recognition, recognition.needsOwnCurvature());
            }
            throw recognition.unsupported(block, path, "its feed-forward block: " + refusal);
        }
        GenericRule.claimAll(block, path, recognition);
        String description = recognition.describe(block, path);
        try {
            return new DerivativesLayer(
                    description,
                    block,
                    new TransformerEncoderDerivatives(
                            description,
                            (TransformerEncoderBlock) block,
                            steps,
                            recognition.needsOwnCurvature()));
        } catch (UnsupportedOperationException e) {
            throw recognition.unsupported(block, path, e.getMessage());
        }
    }

    private static void requireOwnCurvature(Block block, String path, Recognition recognition) {
        if (recognition.needsOwnCurvature() && !recognition.isGeneric()) {
            throw recognition.unsupported(block, path, NO_SECOND_DERIVATIVES);
        }
    }

    /** A step of a feed-forward block, or {@code null} if it is not one the rule knows. */
    private static TransformerEncoderDerivatives.Step step(Block block, Recognition recognition) {
        if (block instanceof Linear) {
            return TransformerEncoderDerivatives.Step.linear((Linear) block);
        }
        if (!(block instanceof LambdaBlock)) {
            return null;
        }
        LambdaBlock lambda = (LambdaBlock) block;
        for (ActivationFunction function : ActivationFunction.values()) {
            if (function.getBlockName().equals(lambda.getName())) {
                double[] parameters = Probes.activation(lambda, function, recognition.getManager());
                return parameters == null
                        ? null
                        : TransformerEncoderDerivatives.Step.activation(function, parameters);
            }
        }
        Probes.Finding finding = Probes.identify(lambda, recognition.getManager());
        return finding.getFunction() == null
                ? null
                : TransformerEncoderDerivatives.Step.activation(
                        finding.getFunction(), finding.getParameters());
    }
}
