package org.secorder.tests;

import ai.djl.engine.Engine;
import org.secorder.core.HessianDiagonal;
import org.testng.Assert;
import org.testng.SkipException;

/** What the suite knows about the engine it runs on. */
final class EngineSupport {

    private EngineSupport() {}

    /** Returns the default engine's name, failing if it is not the one the build asked for. */
    static String name() {
        String name = Engine.getInstance().getEngineName();
        String expected = System.getProperty("secorder.test.engine");
        if (expected != null) {
            Assert.assertEquals(name, expected, "the suite runs on the wrong engine");
        }
        return name;
    }

    /** Whether the engine differentiates DJL's operators twice. */
    static boolean hasSecondDerivatives() {
        return "PyTorch".equals(name());
    }

    /** Skips the calling test where the engine has no second derivatives of DJL's operators. */
    static void requireSecondDerivatives() {
        if (!hasSecondDerivatives()) {
            throw new SkipException(
                    name()
                            + " has no second derivatives of DJL's operators; the clear error is"
                            + " checked instead");
        }
    }

    /** The method a user of this engine would pick for a Hessian diagonal. */
    static HessianDiagonal.Method workingMethod() {
        return hasSecondDerivatives()
                ? HessianDiagonal.Method.AUTO
                : HessianDiagonal.Method.FINITE_DIFFERENCE;
    }

    /** A tolerance for {@link #workingMethod()} in float32: rounding, or central differences. */
    static double float32Tolerance() {
        return hasSecondDerivatives() ? 1e-5 : 2e-3;
    }

    /** A tolerance for {@link #workingMethod()} in float64. */
    static double float64Tolerance() {
        return hasSecondDerivatives() ? 1e-10 : 1e-6;
    }
}
