package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.ParameterList;
import ai.djl.training.loss.L1Loss;
import ai.djl.training.loss.L2Loss;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SigmoidBinaryCrossEntropyLoss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import org.testng.annotations.Test;

/**
 * STRUCTURED equals the exact Hessian diagonal for every supported loss and its settings, with
 * DJL's mean reduction, on a smooth MLP whose activation curvature depends on the loss gradient.
 */
public class LossStructuredTest {

    private static final Shape OUTPUTS = new Shape(5, 3);
    private static final double CONFIDENT_SCALE = 12;

    /** {@code L2Loss} with DJL's default weight 1/2. */
    @Test
    public void l2LossMatchesExactDiagonal() {
        checkRegression(new L2Loss());
    }

    /** {@code L2Loss} with weight 0.3. */
    @Test
    public void weightedL2LossMatchesExactDiagonal() {
        checkRegression(new L2Loss("l2", 0.3f));
    }

    /** {@code L2Loss} with a negative weight, whose Hessian columns have negative signs. */
    @Test
    public void negativelyWeightedL2LossMatchesExactDiagonal() {
        checkRegression(new L2Loss("l2", -0.7f));
    }

    /** {@code L1Loss}: a zero loss Hessian, but activation curvature from its gradient. */
    @Test
    public void l1LossMatchesExactDiagonal() {
        checkRegression(new L1Loss());
    }

    /** {@code L1Loss} with weight 2, which DJL 0.36.0 evaluates without the predictions. */
    @Test
    public void weightedL1LossMatchesExactDiagonal() {
        checkRegression(new L1Loss("l1", 2));
    }

    /** Softmax cross-entropy on logits with class-index labels. */
    @Test
    public void sparseSoftmaxCrossEntropyMatchesExactDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            check(new SoftmaxCrossEntropyLoss(), Fixtures.classes(manager, 5, 3), manager);
        }
    }

    /** Softmax cross-entropy over two classes, whose loss Hessian has a one-column root. */
    @Test
    public void twoClassSoftmaxCrossEntropyMatchesExactDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            check(new SoftmaxCrossEntropyLoss(), Fixtures.classes(manager, 5, 2), manager, 2, 1);
        }
    }

    /**
     * Softmax cross-entropy on confident predictions: the last layer scaled up, so that each
     * sample's likeliest class has a probability above 0.9999 and its least likely one, the pivot
     * of the loss Hessian's root, one near 1e-9.
     */
    @Test
    public void confidentSoftmaxCrossEntropyMatchesExactDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray labels = Fixtures.classes(manager, 5, 4);
            check(new SoftmaxCrossEntropyLoss(), labels, manager, 4, CONFIDENT_SCALE);
        }
    }

    /** Softmax cross-entropy on logits with one-hot labels. */
    @Test
    public void oneHotSoftmaxCrossEntropyMatchesExactDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray labels =
                    Fixtures.classes(manager, 5, 3).toType(DataType.INT64, false).oneHot(3);
            check(softmax(1, true, false), labels.toType(DataType.FLOAT64, false), manager);
        }
    }

    /** Softmax cross-entropy on logits with soft labels that do not sum to one. */
    @Test
    public void softLabelSoftmaxCrossEntropyMatchesExactDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            check(softmax(1, true, false), Fixtures.uniform(manager, 21, OUTPUTS), manager);
        }
    }

    /** Softmax cross-entropy with weight 0.5 and a positive class axis. */
    @Test
    public void weightedSoftmaxCrossEntropyMatchesExactDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Loss loss = new SoftmaxCrossEntropyLoss("ce", 0.5f, 1, true, true);
            check(loss, Fixtures.classes(manager, 5, 3), manager);
        }
    }

    /** Softmax cross-entropy on log-probabilities ({@code fromLogit=false}), a linear loss. */
    @Test
    public void logProbabilitySoftmaxCrossEntropyMatchesExactDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Loss loss = new SoftmaxCrossEntropyLoss("ce", 1, -1, true, false);
            check(loss, Fixtures.classes(manager, 5, 3), manager);
        }
    }

    /** Sigmoid binary cross-entropy on logits with hard targets. */
    @Test
    public void sigmoidCrossEntropyMatchesExactDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray targets = Fixtures.uniform(manager, 22, OUTPUTS).gt(0.5);
            check(
                    new SigmoidBinaryCrossEntropyLoss(),
                    targets.toType(DataType.FLOAT64, false),
                    manager);
        }
    }

    /** Sigmoid binary cross-entropy on logits with soft targets and weight 1.5. */
    @Test
    public void softTargetSigmoidCrossEntropyMatchesExactDiagonal() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Loss loss = new SigmoidBinaryCrossEntropyLoss("bce", 1.5f, false);
            check(loss, Fixtures.uniform(manager, 23, OUTPUTS), manager);
        }
    }

    private static Loss softmax(float weight, boolean fromLogit, boolean sparse) {
        return new SoftmaxCrossEntropyLoss("ce", weight, -1, sparse, fromLogit);
    }

    private static void checkRegression(Loss loss) {
        try (NDManager manager = NDManager.newBaseManager()) {
            check(loss, Fixtures.normal(manager, 24, OUTPUTS), manager);
        }
    }

    private static void check(Loss loss, NDArray labels, NDManager manager) {
        check(loss, labels, manager, 3, 1);
    }

    private static void check(
            Loss loss, NDArray labels, NDManager manager, int outputs, double outputScale) {
        Block model =
                Fixtures.initialize(
                        Networks.twice(Activation.tanhBlock(), Activation.sigmoidBlock(), outputs),
                        manager,
                        Networks.vectors(),
                        31);
        ParameterList parameters = model.getParameters();
        for (int i = parameters.size() - 2; i < parameters.size(); i++) {
            NDArray last = parameters.valueAt(i).getArray();
            last.mul(outputScale).copyTo(last);
        }
        NDArray input = Fixtures.normal(manager, 32, Networks.vectors());
        NDArray[] actual = Fixtures.structured(model, loss, input, labels, false);
        NDList expected = Fixtures.reference(model, loss, input, labels);
        Fixtures.assertMatches(actual, expected, Fixtures.tolerance());
    }
}
