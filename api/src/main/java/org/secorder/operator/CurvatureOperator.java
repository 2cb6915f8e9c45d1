package org.secorder.operator;

import ai.djl.ndarray.NDList;

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
}
