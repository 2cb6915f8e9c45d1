package org.secorder.structured.internal.columns;

import ai.djl.ndarray.NDArray;
import java.util.function.Supplier;

/**
 * A linear map shared by all samples, applied to a batch of rows: the transposed Jacobian of a
 * block whose Jacobian does not depend on the sample.
 */
public interface RowMap {

    /**
     * Applies the map to each row of a batch.
     *
     * @param rows a batch {@code (B, outputFeatures...)}
     * @return the batch {@code (B, inputFeatures...)}
     */
    NDArray apply(NDArray rows);

    /**
     * Applies the map to the rows {@code offset .. offset + count - 1} of the identity matrix of
     * the output features; implementations override this where the answer is at hand.
     *
     * @param identityRows makes those rows of the identity, {@code (count, outputFeatures...)}
     * @param offset the first row
     * @param count the number of rows
     * @return the batch {@code (count, inputFeatures...)}
     */
    default NDArray applyToIdentity(Supplier<NDArray> identityRows, long offset, long count) {
        return apply(identityRows.get());
    }
}
