package org.secorder.tests.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.secorder.structured.internal.rules.Strided;
import org.testng.Assert;
import org.testng.annotations.Test;

/** The array helpers of the pooling and convolution rules against the engine's own operators. */
public class StridedTest {

    /** Repeating every entry along each axis in turn equals the engine's {@code repeat}. */
    @Test
    public void repeatEachEqualsEngineRepeatOnEveryAxis() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray array = manager.arange(120f).reshape(2, 3, 4, 5);
            for (int axis = 0; axis < 4; axis++) {
                NDArray expected = array.repeat(axis, 3);
                NDArray actual = Strided.repeatEach(array, axis, 3);
                Assert.assertEquals(actual.getShape(), expected.getShape(), "axis " + axis);
                Assert.assertEquals(
                        actual.toFloatArray(), expected.toFloatArray(), 0f, "axis " + axis);
            }
        }
    }

    /** One copy leaves the array as it is. */
    @Test
    public void repeatEachOnceReturnsTheArray() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray array = manager.arange(6f).reshape(new Shape(2, 3));
            Assert.assertSame(Strided.repeatEach(array, 1, 1), array);
        }
    }
}
