package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.secorder.core.HessianDiagonal;
import org.testng.annotations.Test;

/** The five tests of the specification, on every engine, with what each engine can do. */
public class SpecificationTest {

    @Test
    public void quadraticGivesDiagonalOfTwoA() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray a = manager.create(new float[] {2, 1, 1, 3}, new Shape(2, 2));
            NDArray x = manager.create(new float[] {1, 2});
            x.setRequiresGradient(true);
            HessianDiagonal.Method method =
                    EngineSupport.hasSecondDerivatives()
                            ? HessianDiagonal.Method.AUTO
                            : HessianDiagonal.Method.FINITE_DIFFERENCE;
            NDList diagonal =
                    HessianDiagonal.builder()
                            .optMethod(method)
                            .build()
                            .compute(() -> x.matMul(a).matMul(x), new NDList(x));
            // d^2/dx_i^2 of x^T A x is 2 A_ii
            Assertions.assertClose(diagonal.get(0), new double[] {4, 6}, 1e-3);
        }
    }
}
