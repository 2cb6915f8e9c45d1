/**
 * The rules of DJL's attention blocks ({@code ScaledDotProductAttentionBlock} as self-attention,
 * {@code TransformerEncoderBlock}): blocks on sequences of tokens whose products are
 * backpropagation written out by hand for all rows at once, checked on every forward pass against
 * the block's own output. Not API.
 */
package org.secorder.structured.internal.attention;
