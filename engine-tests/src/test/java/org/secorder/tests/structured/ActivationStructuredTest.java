package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import org.testng.SkipException;
import org.testng.annotations.Test;

/**
 * STRUCTURED equals the exact Hessian diagonal on MLPs with each of DJL's activation blocks: double
 * backward on PyTorch, float64 finite differences on MXNet.
 */
public class ActivationStructuredTest {

    /**
     * MXNet evaluates LeakyReLU's negative side, SELU and GELU in float32 even for float64 arrays,
     * so differences of its float64 gradients are only good to about 1e-4 with a step of 1e-3.
     */
    private static final double FLOAT32_ACTIVATION_TOLERANCE = 1e-3;

    /** ReLU. */
    @Test
    public void reluMatchesExactDiagonal() {
        check(Activation.reluBlock(), false);
    }

    /** ReLU6. */
    @Test
    public void relu6MatchesExactDiagonal() {
        check(Activation.relu6Block(), false);
    }

    /** LeakyReLU with its slope read from the block's outputs. */
    @Test
    public void leakyReluMatchesExactDiagonal() {
        check(Activation.leakyReluBlock(0.1f), true);
    }

    /** ELU with a non-default alpha. */
    @Test
    public void eluMatchesExactDiagonal() {
        check(Activation.eluBlock(0.7f), false);
    }

    /** SELU. */
    @Test
    public void seluMatchesExactDiagonal() {
        if (!Fixtures.isPyTorch()) {
            // The structured rules are the same code on both engines and are checked here
            // exactly against double backward on PyTorch.
            throw new SkipException(
                    "MXNet has no float64 ground truth for SELU: its SELU backward returns lambda"
                            + " (y + alpha) instead of y + lambda alpha, and its forward runs in"
                            + " float32, so neither gradient nor loss differences are exact");
        }
        check(Activation.seluBlock(), false);
    }

    /** GELU. */
    @Test
    public void geluMatchesExactDiagonal() {
        check(Activation.geluBlock(), true);
    }

    /** Sigmoid. */
    @Test
    public void sigmoidMatchesExactDiagonal() {
        check(Activation.sigmoidBlock(), false);
    }

    /** Tanh. */
    @Test
    public void tanhMatchesExactDiagonal() {
        check(Activation.tanhBlock(), false);
    }

    /** Softplus. */
    @Test
    public void softPlusMatchesExactDiagonal() {
        check(Activation.softPlusBlock(), false);
    }

    /** Softsign. */
    @Test
    public void softSignMatchesExactDiagonal() {
        check(Activation.softSignBlock(), false);
    }

    /** Swish with beta 1.5. */
    @Test
    public void swishMatchesExactDiagonal() {
        check(Activation.swishBlock(1.5f), false);
    }

    /** DJL's Mish block, which computes {@code x tanh(log2(1 + e^x))}. */
    @Test
    public void mishMatchesExactDiagonal() {
        check(Activation.mishBlock(), false);
    }

    /** An unnamed LambdaBlock that applies tanh is recognized by what it computes. */
    @Test
    public void unnamedActivationLambdaMatchesExactDiagonal() {
        check(new LambdaBlock(Activation::tanh), false);
    }

    private static void check(Block activation, boolean float32OnMxnet) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block model =
                    Fixtures.initialize(
                            Networks.mlp(activation, 3), manager, Networks.vectors(), 11);
            NDArray input = Fixtures.normal(manager, 12, Networks.vectors());
            NDArray labels = Fixtures.classes(manager, 5, 3);
            Loss loss = new SoftmaxCrossEntropyLoss();
            NDArray[] actual = Fixtures.structured(model, loss, input, labels, false);
            if (float32OnMxnet && !Fixtures.isPyTorch()) {
                NDList expected = Fixtures.gradientDifferences(model, loss, input, labels, 1e-3);
                Fixtures.assertMatches(actual, expected, FLOAT32_ACTIVATION_TOLERANCE);
            } else {
                NDList expected = Fixtures.reference(model, loss, input, labels);
                Fixtures.assertMatches(actual, expected, Fixtures.tolerance());
            }
        }
    }
}
