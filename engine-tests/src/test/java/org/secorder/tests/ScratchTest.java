package org.secorder.tests;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.secorder.core.HessianDiagonal;
import org.testng.annotations.Test;

public class ScratchTest {
    @Test
    public void explore() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray a = manager.create(new float[] {2, 1, 1, 3}, new Shape(2, 2));
            NDArray x = manager.create(new float[] {1, 2});
            x.setRequiresGradient(true);
            NDArray y = manager.create(new float[] {3, 4});
            y.setRequiresGradient(true);
            try {
                System.out.println(
                        "QUAD "
                                + HessianDiagonal.hessianDiagonal(
                                                () -> x.matMul(a).matMul(x), new NDList(x))
                                        .get(0));
            } catch (RuntimeException e) {
                System.out.println("QUAD ERR " + e);
            }
            try {
                System.out.println(
                        "SIN "
                                + HessianDiagonal.hessianDiagonal(
                                                () -> x.sin().sum(), new NDList(x))
                                        .get(0));
            } catch (RuntimeException e) {
                System.out.println("SIN ERR " + e);
            }
            try {
                System.out.println(
                        "UNUSED "
                                + HessianDiagonal.hessianDiagonal(
                                        () -> x.sin().sum(), new NDList(x, y)));
            } catch (RuntimeException e) {
                System.out.println("UNUSED ERR " + e);
            }
            try {
                System.out.println(
                        "FD UNUSED "
                                + HessianDiagonal.builder()
                                        .optMethod(HessianDiagonal.Method.FINITE_DIFFERENCE)
                                        .build()
                                        .compute(() -> x.sin().sum(), new NDList(x, y)));
            } catch (RuntimeException e) {
                System.out.println("FDUNUSED ERR " + e);
                e.printStackTrace(System.out);
            }
            System.out.println("grad x " + x.getGradient() + " y " + y.getGradient());
            try {
                System.out.println(
                        "CUBE "
                                + HessianDiagonal.hessianDiagonal(
                                                () -> x.pow(3).sum(), new NDList(x))
                                        .get(0));
            } catch (RuntimeException e) {
                System.out.println("CUBE ERR " + e);
            }
        }
    }
}
