/** Internals of the structured methods: not API, may change in any release. */
package org.secorder.structured.internal;
