/** The engine-agnostic test suite of Secorder, run once per DJL engine. */
package org.secorder.tests;
