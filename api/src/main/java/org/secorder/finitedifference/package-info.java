/** Approximate second derivatives from central differences of first derivatives. */
package org.secorder.finitedifference;
