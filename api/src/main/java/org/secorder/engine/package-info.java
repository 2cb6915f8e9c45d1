/**
 * The engine seam: the few differentiation primitives Secorder needs from a DJL engine, and the
 * lookup of the adapter that provides them.
 */
package org.secorder.engine;
