package org.secorder.evaluation;

import ai.djl.ndarray.NDArray;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * The caller's arrays that a computation attaches to a scope of its own for a while.
 *
 * <p>{@code NDManager.tempAttachAll} must see each array once: attached twice, an array would
 * record the scope as the manager to return to, and be closed with the scope. Arrays are the same
 * when they are the same object, whatever their values.
 */
public final class CallerArrays {

    private CallerArrays() {}

    /**
     * Returns the arrays without repeats, in the order of their first appearance.
     *
     * @param arrays the caller's arrays, perhaps with one array listed more than once
     * @return each array once
     */
    public static NDArray[] distinct(List<NDArray> arrays) {
        Set<NDArray> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        List<NDArray> unique = new ArrayList<>();
        for (NDArray array : arrays) {
            if (seen.add(array)) {
                unique.add(array);
            }
        }
        return unique.toArray(new NDArray[0]);
    }
}
