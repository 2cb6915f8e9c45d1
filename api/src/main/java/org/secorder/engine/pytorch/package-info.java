/**
 * The PyTorch adapter of the engine seam, loaded only when arrays of the PyTorch engine are used.
 */
package org.secorder.engine.pytorch;
