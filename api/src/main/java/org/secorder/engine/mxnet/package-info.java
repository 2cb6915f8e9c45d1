/** The MXNet adapter of the engine seam, loaded only when arrays of the MXNet engine are used. */
package org.secorder.engine.mxnet;
