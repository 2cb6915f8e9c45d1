package org.secorder.operator;

import ai.djl.ndarray.NDList;
import java.util.ArrayList;
import java.util.List;

/**
 * A symmetric linear operator on the space of some parameters, known only through its products with
 * vectors: the Hessian or the generalized Gauss-Newton matrix of a loss, or any matrix a caller
 * supplies.
 *
 * <p>A vector of this space is an {@link NDList} with one array per parameter, of that parameter's
 * shape, data type and device. Estimators, traces and eigenvalue solvers are written against this
 * interface only, so they work for every operator.
 */
public interface CurvatureOperator {

    /**
     * Returns the parameters whose space this operator acts on, in order; callers read their
     * shapes, data types and devices and must neither modify nor close them.
     *
     * @return one array per parameter
     */
    NDList getParameters();

    /**
     * Multiplies the operator with a vector.
     *
     * @param vector one array per parameter, shaped like it; left unchanged
     * @return the product, one new array per parameter, shaped like it, which the caller owns and
     *     must close
     */
    NDList multiply(NDList vector);

    /**
     * Multiplies the operator with several vectors; an operator may share work between them (the
     * products of {@code HessianVectorProduct} evaluate the loss once for all), and by default
     * multiplies them one by one.
     *
     * @param vectors the vectors, each one array per parameter, shaped like it; left unchanged
     * @return one product per vector, in order, each owned by the caller
     */
    default List<NDList> multiplyAll(List<NDList> vectors) {
        if (vectors == null) {
            throw new IllegalArgumentException("vectors must not be null");
        }
        List<NDList> products = new ArrayList<>(vectors.size());
        try {
            for (NDList vector : vectors) {
                products.add(multiply(vector));
            }
        } catch (RuntimeException | Error e) {
            for (NDList product : products) {
                product.close();
            }
            throw e;
        }
        return products;
    }
}
