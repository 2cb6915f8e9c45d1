/**
 * Model recognition: the rule table (rules found by block class, subclasses included, then by what
 * a {@code LambdaBlock} or a {@code ParallelBlock}'s join computes on probe inputs). Not API.
 */
package org.secorder.structured.internal.recognition;
