/**
 * Loss rules: the gradient and a signed square root of the Hessian of each supported DJL loss with
 * respect to the model's predictions, checked against DJL's own loss value. Not API.
 */
package org.secorder.structured.internal.losses;
