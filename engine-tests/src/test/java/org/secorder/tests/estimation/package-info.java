/**
 * Tests of the stochastic estimators against explicit dense operators, whose exact diagonal and
 * trace are known independently, and of the Monte-Carlo GGN diagonal against the exact one.
 */
package org.secorder.tests.estimation;
