/**
 * The quantity: which column sets are propagated (the loss factor, and for the Hessian the
 * curvature of each block's own nonlinearity), how they are chunked under the memory budget, and
 * how the parameters' diagonals are accumulated (summed or per sample). It also holds the
 * structural layers (sequences, sums, concatenations) that route columns between block rules, and
 * the forward route of a network's first blocks ({@link
 * org.secorder.structured.internal.propagation.TangentLayer}), where parameter tangents pushed up
 * by the blocks' {@link org.secorder.structured.internal.propagation.TangentRule}s meet the
 * columns. Not API.
 */
package org.secorder.structured.internal.propagation;
