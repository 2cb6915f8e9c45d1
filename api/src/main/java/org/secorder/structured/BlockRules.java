package org.secorder.structured;

import ai.djl.nn.Block;
import java.util.List;
import java.util.Objects;
import org.secorder.structured.internal.recognition.RuleTable;
import org.secorder.structured.internal.rules.DerivativesLayer;

/**
 * The table of block rules that the structured methods ({@code Method.STRUCTURED} and the
 * generalized Gauss-Newton curvature) use, and the way to add rules for block classes of your own.
 *
 * <p>A block is looked up by its class, then by each superclass in turn, so a rule covers the
 * subclasses of its class (DJL's model-zoo {@code Mlp} is a {@code SequentialBlock}) unless one of
 * them has a rule of its own. A rule registered here takes precedence over a built-in rule for the
 * same class. {@code LambdaBlock}s and {@code ParallelBlock}s are then recognized by what they
 * compute on probe inputs.
 *
 * <pre>{@code
 * BlockRules.register(Scale.class, "Scale (y = s * x)", block -> new ScaleDerivatives(block));
 * }</pre>
 *
 * <p>The table is shared by all threads; registering and computing may happen at the same time (a
 * computation sees the table as it was when it looked the block up).
 */
public final class BlockRules {

    private BlockRules() {}

    /**
     * Registers the rule of a block class and its subclasses, replacing a rule registered for the
     * same class before.
     *
     * @param type the block class
     * @param description what the rule supports, for the list of supported blocks
     * @param rule the rule
     * @param <B> the block class
     * @throws IllegalArgumentException if an argument is {@code null} or the description is blank
     */
    public static <B extends Block> void register(
            Class<B> type, String description, BlockRule<? super B> rule) {
        if (type == null) {
            throw new IllegalArgumentException("type must not be null");
        }
        if (description == null || description.isBlank()) {
            throw new IllegalArgumentException("description must not be blank");
        }
        if (rule == null) {
            throw new IllegalArgumentException("rule must not be null");
        }
        RuleTable.registerUser(
                type,
                description,
                (block, path, recognition) ->
                        new DerivativesLayer(
                                recognition.describe(block, path),
                                recognition.claim(block, path),
                                Objects.requireNonNull(
                                        rule.derivatives(type.cast(block)),
                                        "the rule for " + type.getName() + " returned null")));
    }

    /**
     * Removes the rule registered for a block class; a built-in rule for it applies again.
     *
     * @param type the block class
     * @return whether a rule was registered for it
     */
    public static boolean unregister(Class<? extends Block> type) {
        return RuleTable.unregisterUser(type);
    }

    /**
     * Returns what the structured methods support, one entry per rule: built-in rules first, in the
     * table's order, then registered ones.
     *
     * @return the descriptions
     */
    public static List<String> supportedBlocks() {
        return RuleTable.descriptions();
    }
}
