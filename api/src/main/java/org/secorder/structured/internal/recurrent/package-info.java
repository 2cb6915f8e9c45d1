/**
 * The rules of DJL's recurrent blocks ({@code LSTM}, {@code GRU}, {@code RNN}): DJL runs each as
 * one fused operator, so these rules carry the cell equations themselves, unrolled over time, and
 * check on every forward pass that they reproduce the block's output. Not API.
 */
package org.secorder.structured.internal.recurrent;
