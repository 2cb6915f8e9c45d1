/** Exact second derivatives by double backward through the engine's autograd. */
package org.secorder.autograd;
