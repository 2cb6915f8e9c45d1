package org.secorder.structured;

import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.ParallelBlock;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.convolutional.Conv1d;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.convolutional.Conv3d;
import ai.djl.nn.convolutional.Convolution;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.BatchNorm;
import ai.djl.nn.norm.Dropout;
import ai.djl.util.Pair;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Recognizes the blocks of a model and builds the layers with their rules.
 *
 * <p>Blocks are recognized by their exact class; DJL's activation, pooling and flatten blocks are
 * {@code LambdaBlock}s and are recognized by the name DJL gives them. Every activation is then
 * checked against its formula on probe values, with its parameters fitted from the block's own
 * outputs; a {@code LambdaBlock} without a known name is accepted only if it computes a known
 * activation or the identity on the probe.
 */
final class LayerFactory {

    /** The blocks the structured method supports, for messages. */
    static final String SUPPORTED =
            "SequentialBlock, ParallelBlock summing its branches (residual blocks), Linear on"
                    + " (batch, features) inputs, Conv1d, Conv2d, Conv3d, BatchNorm and Dropout in"
                    + " inference mode, DJL's activation blocks (ReLU, ReLU6, LeakyReLU, ELU, SELU,"
                    + " GELU, sigmoid, Tanh, softPlus, softSign, Swish, Mish), DJL's max and"
                    + " average pooling blocks (1d, 2d, 3d, global), Blocks.batchFlattenBlock,"
                    + " Blocks.identityBlock and LambdaBlocks named like 'reshape' or 'flatten'"
                    + " that keep the values of each sample";

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

    private final NDManager manager;
    private final boolean training;
    private final Set<Parameter> seen = Collections.newSetFromMap(new IdentityHashMap<>());

    private LayerFactory(NDManager manager, boolean training) {
        this.manager = manager;
        this.training = training;
    }

    /**
     * Builds the layers of a model.
     *
     * @param model the model
     * @param manager a manager for probe arrays, closed by the caller
     * @param training whether the model runs in training mode
     * @return the root layer
     * @throws UnsupportedOperationException naming the first block that is not supported
     */
    static Layer build(Block model, NDManager manager, boolean training) {
        return new LayerFactory(manager, training).create(model, "model");
    }

    private Layer create(Block block, String path) {
        Class<?> type = block.getClass();
        String description = path + " (" + type.getSimpleName() + ")";
        if (type == SequentialBlock.class) {
            if (((SequentialBlock) block).isReturnIntermediate()) {
                throw unsupported(description, "it returns its intermediate outputs");
            }
            return new SequenceLayer(description, children(block, path));
        }
        if (type == ParallelBlock.class) {
            if (!Probes.isSum((ParallelBlock) block, manager)) {
                throw unsupported(description, "its branches are not combined by a sum");
            }
            return new SumLayer(description, children(block, path));
        }
        if (type == LambdaBlock.class) {
            return lambda((LambdaBlock) block, path);
        }
        claimParameters(block, description);
        if (type == Linear.class) {
            return new LinearLayer(description, (Linear) block);
        }
        if (type == Conv1d.class || type == Conv2d.class || type == Conv3d.class) {
            return new ConvolutionLayer(description, (Convolution) block);
        }
        if (type == BatchNorm.class) {
            requireInference(description, "uses the statistics of the batch in training mode");
            return new BatchNormLayer(description, (BatchNorm) block);
        }
        if (type == Dropout.class) {
            requireInference(description, "is random in training mode");
            return new ReshapeLayer(description, block);
        }
        throw unsupported(description, "this kind of block has no structured rules");
    }

    private List<Layer> children(Block block, String path) {
        List<Layer> layers = new ArrayList<>();
        for (Pair<String, Block> child : block.getChildren()) {
            layers.add(create(child.getValue(), path + "/" + child.getKey()));
        }
        return layers;
    }

    private Layer lambda(LambdaBlock block, String path) {
        String name = block.getName();
        String description = path + " (LambdaBlock '" + name + "')";
        for (ActivationFunction function : ActivationFunction.values()) {
            if (function.getBlockName().equals(name)) {
                double[] parameters = Probes.activation(block, function, manager);
                if (parameters == null) {
                    throw unsupported(
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
        String lower = name.toLowerCase(Locale.ROOT);
        if ("identity".equals(name) || lower.contains("flatten") || lower.contains("reshape")) {
            return new ReshapeLayer(description, block);
        }
        Probes.Finding finding = Probes.identify(block, manager);
        if (finding.isIdentity()) {
            return new ReshapeLayer(description, block);
        }
        if (finding.getFunction() != null) {
            return new ActivationLayer(
                    description, block, finding.getFunction(), finding.getParameters());
        }
        throw unsupported(
                description, "it has no known name and computes no known activation on a probe");
    }

    private void claimParameters(Block block, String description) {
        for (Pair<String, Parameter> entry : block.getDirectParameters()) {
            if (!seen.add(entry.getValue())) {
                throw unsupported(
                        description,
                        "its parameter '"
                                + entry.getKey()
                                + "' is shared with another block, whose cross terms the"
                                + " structured method does not compute");
            }
        }
    }

    private void requireInference(String description, String reason) {
        if (training) {
            throw unsupported(description, "it " + reason + "; use inference mode");
        }
    }

    private static UnsupportedOperationException unsupported(String description, String reason) {
        return new UnsupportedOperationException(
                "The structured Hessian diagonal does not support the block "
                        + description
                        + ": "
                        + reason
                        + ". Supported blocks: "
                        + SUPPORTED
                        + ". Use Method.AUTOGRAD or Method.FINITE_DIFFERENCE for other models.");
    }
}
