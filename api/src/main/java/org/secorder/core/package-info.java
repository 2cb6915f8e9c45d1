/** The public API of Secorder: Hessian diagonals of DJL losses and models. */
package org.secorder.core;
