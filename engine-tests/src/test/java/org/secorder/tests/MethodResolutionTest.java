package org.secorder.tests;

import ai.djl.ndarray.NDList;
import ai.djl.nn.Activation;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.loss.Loss;
import org.secorder.core.HessianDiagonal;
import org.secorder.core.HessianDiagonal.Method;
import org.testng.Assert;
import org.testng.annotations.Test;

/** What {@link Method#AUTO} picks for a model, as {@link HessianDiagonal#resolve} reports it. */
public class MethodResolutionTest {

    private static SequentialBlock supportedModel() {
        return new SequentialBlock()
                .add(Linear.builder().setUnits(4).build())
                .add(Activation.tanhBlock())
                .add(Linear.builder().setUnits(2).build());
    }

    @Test
    public void autoPicksStructuredForSupportedModels() {
        Method method =
                HessianDiagonal.builder()
                        .build()
                        .resolve(supportedModel(), Loss.softmaxCrossEntropyLoss());
        Assert.assertEquals(method, Method.STRUCTURED);
    }

    @Test
    public void autoPicksAutogradWhenAGraphIsAskedFor() {
        Method method =
                HessianDiagonal.builder()
                        .optCreateGraph(true)
                        .build()
                        .resolve(supportedModel(), Loss.softmaxCrossEntropyLoss());
        Assert.assertEquals(method, Method.AUTOGRAD);
    }

    @Test
    public void autoPicksAutogradForUnsupportedBlocks() {
        SequentialBlock model =
                supportedModel().add(new LambdaBlock(x -> new NDList(x.head().sin()), "sine"));
        Method method =
                HessianDiagonal.builder().build().resolve(model, Loss.softmaxCrossEntropyLoss());
        Assert.assertEquals(method, Method.AUTOGRAD);
    }

    @Test
    public void explicitMethodsAreKept() {
        for (Method explicit :
                new Method[] {Method.AUTOGRAD, Method.FINITE_DIFFERENCE, Method.GGN}) {
            Method method =
                    HessianDiagonal.builder()
                            .optMethod(explicit)
                            .build()
                            .resolve(supportedModel(), Loss.l2Loss());
            Assert.assertEquals(method, explicit);
        }
    }
}
