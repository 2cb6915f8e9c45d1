package org.secorder.structured.internal.recognition;

import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import java.util.Set;
import org.secorder.structured.internal.propagation.Layer;
import org.secorder.structured.internal.rules.ActivationFunction;
import org.secorder.structured.internal.rules.ActivationLayer;
import org.secorder.structured.internal.rules.MovingLayer;
import org.secorder.structured.internal.rules.PoolingLayer;
import org.secorder.structured.internal.rules.ReshapeLayer;

/**
 * The rule of a {@code LambdaBlock}: what it computes, found by its name where DJL gives one and
 * always checked on probe values.
 */
final class Lambdas {

    /** What the lambda rule supports, for the list of supported blocks. */
    static final String DESCRIPTION =
            "LambdaBlocks computing DJL's activations (ReLU, ReLU6, LeakyReLU, ELU, SELU, GELU,"
                    + " sigmoid, Tanh, softPlus, softSign, Swish, Mish), named or anonymous;"
                    + " DJL's max and average pooling blocks (1d, 2d, 3d, global);"
                    + " Blocks.identityBlock; LambdaBlocks, named or anonymous, that only move or"
                    + " select values within a sample (flatten, reshape, transpose, any"
                    + " permutation; a crop, a slice, the last step of a sequence), recognized by a"
                    + " probe that reveals the map";

    private static final Set<String> POOLS =
            Set.of(
                    "maxPool1d",
                    "maxPool2d",
                    "maxPool3d",
                    "avgPool1d",
                    "avgPool2d",
                    "avgPool3d",
                    "globalMaxPool1d",
                    "globalMaxPool2d",
                    "globalMaxPool3d",
                    "globalAvgPool1d",
                    "globalAvgPool2d",
                    "globalAvgPool3d");

    private Lambdas() {}

    static Layer create(Block block, String path, Recognition recognition) {
        LambdaBlock lambda = (LambdaBlock) block;
        String name = lambda.getName();
        String description = path + " (LambdaBlock '" + name + "')";
        for (ActivationFunction function : ActivationFunction.values()) {
            if (function.getBlockName().equals(name)) {
                double[] parameters = Probes.activation(lambda, function, recognition.getManager());
                if (parameters == null) {
                    throw Recognition.unsupported(
                            description,
                            "it is named like DJL's "
                                    + name
                                    + " block but computes another function");
                }
                return new ActivationLayer(description, block, function, parameters);
            }
        }
        if (POOLS.contains(name)) {
            return new PoolingLayer(description, block);
        }
        Probes.Finding finding = Probes.identify(lambda, recognition.getManager());
        if (finding.isIdentity()) {
            return new ReshapeLayer(description, block);
        }
        if (finding.getFunction() != null) {
            return new ActivationLayer(
                    description, block, finding.getFunction(), finding.getParameters());
        }
        if (finding.mayMoveValues()) {
            return new MovingLayer(description, block);
        }
        throw Recognition.unsupported(
                description,
                "it computes no known activation and does not only move or select values within"
                        + " a sample (checked on a probe)");
    }
}
