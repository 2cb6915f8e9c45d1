package org.secorder.structured.internal.recognition;

import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.ParallelBlock;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.convolutional.Conv1d;
import ai.djl.nn.convolutional.Conv1dTranspose;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.convolutional.Conv2dTranspose;
import ai.djl.nn.convolutional.Conv3d;
import ai.djl.nn.convolutional.Convolution;
import ai.djl.nn.convolutional.Deconvolution;
import ai.djl.nn.core.Embedding;
import ai.djl.nn.core.Linear;
import ai.djl.nn.core.Prelu;
import ai.djl.nn.norm.BatchNorm;
import ai.djl.nn.norm.Dropout;
import ai.djl.nn.norm.LayerNorm;
import ai.djl.nn.recurrent.GRU;
import ai.djl.nn.recurrent.LSTM;
import ai.djl.nn.recurrent.RNN;
import ai.djl.nn.recurrent.RecurrentBlock;
import ai.djl.nn.transformer.ScaledDotProductAttentionBlock;
import ai.djl.nn.transformer.TransformerEncoderBlock;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.secorder.structured.internal.propagation.Layer;
import org.secorder.structured.internal.recurrent.RecurrentDerivatives;
import org.secorder.structured.internal.rules.BatchNormLayer;
import org.secorder.structured.internal.rules.ConvolutionLayer;
import org.secorder.structured.internal.rules.DerivativesLayer;
import org.secorder.structured.internal.rules.EmbeddingLayer;
import org.secorder.structured.internal.rules.LayerNormLayer;
import org.secorder.structured.internal.rules.LinearLayer;
import org.secorder.structured.internal.rules.PreluLayer;
import org.secorder.structured.internal.rules.ReshapeLayer;
import org.secorder.structured.internal.rules.TransposedConvolutionLayer;

/**
 * The rule table: one entry per block class, found for a block by its class and then by each
 * superclass in turn. Rules registered by users come before the built-in ones at every class.
 *
 * <p>The built-in entries are below, one line each; adding a block is one rule class, one line here
 * and one row in the per-rule test.
 */
public final class RuleTable {

    private static final Map<Class<?>, Entry> BUILT_IN = new LinkedHashMap<>();
    private static final Map<Class<?>, Entry> USER = new ConcurrentHashMap<>();

    static {
        builtIn(
                SequentialBlock.class,
                "SequentialBlock and its subclasses (such as the model zoo's Mlp), not returning"
                        + " intermediate outputs",
                Recognition::sequence);
        builtIn(ParallelBlock.class, Joins.DESCRIPTION, Joins::create);
        builtIn(LambdaBlock.class, Lambdas.DESCRIPTION, Lambdas::create);
        builtIn(
                Linear.class,
                "Linear on (batch, features) inputs",
                (block, path, r) ->
                        new LinearLayer(r.describe(block, path), r.claim((Linear) block, path)));
        for (Class<? extends Convolution> type :
                List.of(Conv1d.class, Conv2d.class, Conv3d.class)) {
            builtIn(
                    type,
                    type.getSimpleName()
                            + " (any stride, padding, dilation, groups, with or without bias)",
                    (block, path, r) ->
                            new ConvolutionLayer(
                                    r.describe(block, path), r.claim((Convolution) block, path)));
        }
        for (Class<? extends Deconvolution> type :
                List.of(Conv1dTranspose.class, Conv2dTranspose.class)) {
            builtIn(
                    type,
                    type.getSimpleName()
                            + " (any stride, padding, output padding, dilation, groups, with or"
                            + " without bias; DJL runs it on MXNet only)",
                    (block, path, r) ->
                            new TransposedConvolutionLayer(
                                    r.describe(block, path), r.claim((Deconvolution) block, path)));
        }
        builtIn(
                BatchNorm.class,
                "BatchNorm and its subclasses (GhostBatchNorm) in inference mode",
                (block, path, r) -> {
                    r.requireInference(block, path, "uses the statistics of the batch");
                    return new BatchNormLayer(
                            r.describe(block, path), r.claim((BatchNorm) block, path));
                });
        builtIn(
                LayerNorm.class,
                "LayerNorm over the trailing axes of each sample (with or without learned gamma"
                        + " and beta)",
                (block, path, r) ->
                        new LayerNormLayer(
                                r.describe(block, path), r.claim((LayerNorm) block, path)));
        builtIn(
                Dropout.class,
                "Dropout in inference mode",
                (block, path, r) -> {
                    r.requireInference(block, path, "is random");
                    return new ReshapeLayer(r.describe(block, path), block);
                });
        builtIn(
                Embedding.class,
                "Embedding and its subclasses (TrainableWordEmbedding) as the first block",
                (block, path, r) ->
                        new EmbeddingLayer(
                                r.describe(block, path), r.claim((Embedding<?>) block, path)));
        builtIn(
                Prelu.class,
                "Prelu (its slope learned)",
                (block, path, r) ->
                        new PreluLayer(r.describe(block, path), r.claim((Prelu) block, path)));
        for (Class<? extends RecurrentBlock> type : List.of(LSTM.class, GRU.class, RNN.class)) {
            builtIn(
                    type,
                    (type == RNN.class ? "RNN (tanh or ReLU) " : type.getSimpleName() + " ")
                            + RecurrentDerivatives.DESCRIPTION_SUFFIX,
                    RuleTable::recurrent);
        }
        builtIn(
                ScaledDotProductAttentionBlock.class,
                AttentionRules.ATTENTION,
                AttentionRules::attention);
        builtIn(TransformerEncoderBlock.class, AttentionRules.ENCODER, AttentionRules::encoder);
    }

    private RuleTable() {}

    /** The rule of DJL's recurrent blocks; the generic rule takes the settings it refuses. */
    private static Layer recurrent(Block block, String path, Recognition recognition) {
        String refusal = RecurrentDerivatives.refusal((RecurrentBlock) block);
        if (refusal != null) {
            if (recognition.isGeneric()) {
                return GenericRule.create(
                        block, path, recognition, recognition.needsOwnCurvature());
            }
            throw recognition.unsupported(block, path, refusal);
        }
        String description = recognition.describe(block, path);
        return new DerivativesLayer(
                description,
                recognition.claim(block, path),
                new RecurrentDerivatives(description, (RecurrentBlock) block));
    }

    private static void builtIn(Class<? extends Block> type, String description, Rule rule) {
        BUILT_IN.put(type, new Entry(type, description, rule));
    }

    /**
     * Registers a user's rule for a block class.
     *
     * @param type the class
     * @param description what it supports
     * @param rule the rule
     */
    public static void registerUser(Class<? extends Block> type, String description, Rule rule) {
        USER.put(type, new Entry(type, description, rule));
    }

    /**
     * Removes a user's rule.
     *
     * @param type the class
     * @return whether there was one
     */
    public static boolean unregisterUser(Class<? extends Block> type) {
        return USER.remove(type) != null;
    }

    /**
     * Finds the rule of a block class: its own, else that of its nearest superclass with one.
     *
     * @param type the block's class
     * @return the entry, or {@code null} if there is none
     */
    public static Entry find(Class<?> type) {
        for (Class<?> c = type; c != null && c != Object.class; c = c.getSuperclass()) {
            Entry entry = USER.get(c);
            if (entry == null) {
                entry = BUILT_IN.get(c);
            }
            if (entry != null) {
                return entry;
            }
        }
        return null;
    }

    /**
     * Returns the classes of the built-in rules, in the table's order.
     *
     * @return the classes
     */
    public static List<Class<?>> builtInClasses() {
        return List.copyOf(BUILT_IN.keySet());
    }

    /**
     * Returns the description of every rule, built-in ones first.
     *
     * @return the descriptions
     */
    public static List<String> descriptions() {
        List<String> all = new ArrayList<>();
        for (Entry entry : BUILT_IN.values()) {
            all.add(entry.description);
        }
        List<Entry> user = new ArrayList<>(USER.values());
        user.sort((a, b) -> a.type.getName().compareTo(b.type.getName()));
        for (Entry entry : user) {
            all.add(entry.description + " (registered)");
        }
        return Collections.unmodifiableList(all);
    }

    /**
     * Returns the list of supported blocks for messages.
     *
     * @return the descriptions, joined
     */
    public static String supportedText() {
        return String.join("; ", descriptions());
    }

    /** One rule with its class and description. */
    public static final class Entry {

        private final Class<?> type;
        private final String description;
        private final Rule rule;

        Entry(Class<?> type, String description, Rule rule) {
            this.type = type;
            this.description = description;
            this.rule = rule;
        }

        /**
         * Returns the class the rule was registered for.
         *
         * @return the class
         */
        public Class<?> getType() {
            return type;
        }

        /**
         * Returns the rule.
         *
         * @return the rule
         */
        public Rule getRule() {
            return rule;
        }
    }
}
