package org.secorder.structured.internal.propagation;

import org.secorder.structured.internal.columns.ColumnSet;

/** What happens to a column set once it has been propagated to the input of a layer. */
public interface Continuation {

    /** A continuation that needs nothing: there are no parameters below. */
    Continuation NONE =
            new Continuation() {
                @Override
                public boolean isNeeded() {
                    return false;
                }

                @Override
                public void accept(ColumnSet columns) {}
            };

    /**
     * Returns whether anything below needs the columns; if not, they are not computed.
     *
     * @return whether {@link #accept(ColumnSet)} does any work
     */
    boolean isNeeded();

    /**
     * Continues the propagation with the columns at the input of a layer.
     *
     * @param columns the columns
     */
    void accept(ColumnSet columns);
}
