/**
 * Evaluating a scalar loss repeatedly with gradient recording on, without leaking arrays and
 * without leaving any change behind in the caller's parameters.
 */
package org.secorder.evaluation;
