/**
 * Column algebra: signed sets of factor columns {@code H = sum_c sign_c v_c v_c^T} per sample,
 * dense or kept factored, and the maps that move them from a block's output to its input. Not API.
 */
package org.secorder.structured.internal.columns;
