package org.secorder.structured.internal.rules;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Activation;

/**
 * The elementwise activations of DJL's {@code Activation} class, with their first and second
 * derivatives as explicit formulas.
 *
 * <p>Parameters (a slope, a scale) are fitted from the block's own outputs at {@code x = 1} and
 * {@code x = -1}, so that they are exactly what the engine computes with.
 */
public enum ActivationFunction {
    /** {@code max(x, 0)}. */
    RELU("ReLU", false) {
        @Override
        public NDArray value(NDArray x, double[] p) {
            return x.maximum(0);
        }

        @Override
        public NDArray first(NDArray x, NDArray y, double[] p) {
            // y = max(x, 0): its sign is the indicator of x > 0
            return y.sign();
        }
    },
    /** {@code min(max(x, 0), 6)}. */
    RELU6("ReLU6", false) {
        @Override
        public NDArray value(NDArray x, double[] p) {
            return x.maximum(0).minimum(6);
        }

        @Override
        public NDArray first(NDArray x, NDArray y, double[] p) {
            return mask(x.gt(0), x).mul(mask(x.lt(6), x));
        }
    },
    /** {@code x} for positive {@code x}, {@code alpha x} otherwise. */
    LEAKY_RELU("LeakyReLU", false) {
        @Override
        public double[] fit(double atOne, double atMinusOne) {
            return new double[] {-atMinusOne};
        }

        @Override
        public NDArray value(NDArray x, double[] p) {
            NDArray positive = mask(x.gt(0), x);
            return x.mul(positive.add(positive.neg().add(1).mul(p[0])));
        }

        @Override
        public NDArray first(NDArray x, NDArray y, double[] p) {
            NDArray positive = mask(x.gt(0), x);
            return positive.add(positive.neg().add(1).mul(p[0]));
        }
    },
    /** {@code x} for positive {@code x}, {@code alpha (e^x - 1)} otherwise. */
    ELU("ELU", true) {
        @Override
        public double[] fit(double atOne, double atMinusOne) {
            return new double[] {1, atMinusOne / Math.expm1(-1)};
        }

        @Override
        public NDArray value(NDArray x, double[] p) {
            return piecewise(x, x.mul(p[0]), x.minimum(0).exp().sub(1).mul(p[0] * p[1]));
        }

        @Override
        public NDArray first(NDArray x, NDArray y, double[] p) {
            return piecewise(x, x.onesLike().mul(p[0]), x.minimum(0).exp().mul(p[0] * p[1]));
        }

        @Override
        public NDArray second(NDArray x, NDArray y, double[] p) {
            return piecewise(x, x.zerosLike(), x.minimum(0).exp().mul(p[0] * p[1]));
        }
    },
    /** {@code lambda x} for positive {@code x}, {@code lambda alpha (e^x - 1)} otherwise. */
    SELU("SELU", true) {
        @Override
        public double[] fit(double atOne, double atMinusOne) {
            return new double[] {atOne, atMinusOne / (atOne * Math.expm1(-1))};
        }

        @Override
        public NDArray value(NDArray x, double[] p) {
            return ELU.value(x, p);
        }

        @Override
        public NDArray first(NDArray x, NDArray y, double[] p) {
            return ELU.first(x, y, p);
        }

        @Override
        public NDArray second(NDArray x, NDArray y, double[] p) {
            return ELU.second(x, y, p);
        }
    },
    /** The logistic function. */
    SIGMOID("sigmoid", true) {
        @Override
        public NDArray value(NDArray x, double[] p) {
            return Activation.sigmoid(x);
        }

        @Override
        public NDArray first(NDArray x, NDArray y, double[] p) {
            return y.mul(y.neg().add(1));
        }

        @Override
        public NDArray second(NDArray x, NDArray y, double[] p) {
            return first(x, y, p).mul(y.mul(-2).add(1));
        }
    },
    /** The hyperbolic tangent. */
    TANH("Tanh", true) {
        @Override
        public NDArray value(NDArray x, double[] p) {
            return x.tanh();
        }

        @Override
        public NDArray first(NDArray x, NDArray y, double[] p) {
            return y.square().neg().add(1);
        }

        @Override
        public NDArray second(NDArray x, NDArray y, double[] p) {
            return first(x, y, p).mul(y).mul(-2);
        }
    },
    /** {@code log(1 + e^x)}. */
    SOFTPLUS("softPlus", true) {
        @Override
        public NDArray value(NDArray x, double[] p) {
            return Activation.softPlus(x);
        }

        @Override
        public NDArray first(NDArray x, NDArray y, double[] p) {
            return SIGMOID.value(x, p);
        }

        @Override
        public NDArray second(NDArray x, NDArray y, double[] p) {
            NDArray s = SIGMOID.value(x, p);
            return s.mul(s.neg().add(1));
        }
    },
    /** {@code x / (1 + |x|)}. */
    SOFTSIGN("softSign", true) {
        @Override
        public NDArray value(NDArray x, double[] p) {
            return x.div(x.abs().add(1));
        }

        @Override
        public NDArray first(NDArray x, NDArray y, double[] p) {
            return x.abs().add(1).pow(-2);
        }

        @Override
        public NDArray second(NDArray x, NDArray y, double[] p) {
            return x.sign().mul(-2).mul(x.abs().add(1).pow(-3));
        }
    },
    /** {@code x Phi(x)} with the exact normal distribution function. */
    GELU("GELU", true) {
        @Override
        public NDArray value(NDArray x, double[] p) {
            return x.mul(normalCdf(x));
        }

        @Override
        public NDArray first(NDArray x, NDArray y, double[] p) {
            return normalCdf(x).add(x.mul(normalPdf(x)));
        }

        @Override
        public NDArray second(NDArray x, NDArray y, double[] p) {
            return normalPdf(x).mul(x.square().neg().add(2));
        }
    },
    /** {@code x sigmoid(beta x)}. */
    SWISH("Swish", true) {
        @Override
        public double[] fit(double atOne, double atMinusOne) {
            return new double[] {(float) Math.log(atOne / (1 - atOne))};
        }

        @Override
        public NDArray value(NDArray x, double[] p) {
            return x.mul(SIGMOID.value(x.mul(p[0]), p));
        }

        @Override
        public NDArray first(NDArray x, NDArray y, double[] p) {
            NDArray s = SIGMOID.value(x.mul(p[0]), p);
            return s.add(x.mul(p[0]).mul(s).mul(s.neg().add(1)));
        }

        @Override
        public NDArray second(NDArray x, NDArray y, double[] p) {
            NDArray s = SIGMOID.value(x.mul(p[0]), p);
            NDArray bx = x.mul(p[0]);
            NDArray inner = bx.mul(s.mul(-2).add(1)).add(2);
            return s.mul(s.neg().add(1)).mul(p[0]).mul(inner);
        }
    },
    /**
     * {@code x tanh(log2(1 + e^x))}: DJL 0.36.0's Mish, which takes a base-2 logarithm where Mish
     * has the natural one.
     */
    MISH("Mish", true) {
        @Override
        public NDArray value(NDArray x, double[] p) {
            return x.exp().add(1).log2().tanh().mul(x);
        }

        @Override
        public NDArray first(NDArray x, NDArray y, double[] p) {
            NDArray t = Activation.softPlus(x).mul(INV_LN2).tanh();
            NDArray inner = SIGMOID.value(x, p).mul(INV_LN2);
            return t.add(x.mul(t.square().neg().add(1)).mul(inner));
        }

        @Override
        public NDArray second(NDArray x, NDArray y, double[] p) {
            NDArray t = Activation.softPlus(x).mul(INV_LN2).tanh();
            NDArray s = SIGMOID.value(x, p);
            NDArray inner = s.mul(INV_LN2);
            NDArray innerSecond = s.mul(s.neg().add(1)).mul(INV_LN2);
            NDArray sech2 = t.square().neg().add(1);
            NDArray bracket = innerSecond.sub(t.mul(inner.square()).mul(2));
            return sech2.mul(inner.mul(2).add(x.mul(bracket)));
        }
    };

    private static final double SQRT_HALF = Math.sqrt(0.5);
    private static final double INV_SQRT_TWO_PI = 1 / Math.sqrt(2 * Math.PI);
    private static final double INV_LN2 = 1 / Math.log(2);

    private final String blockName;
    private final boolean smooth;

    ActivationFunction(String blockName, boolean smooth) {
        this.blockName = blockName;
        this.smooth = smooth;
    }

    /**
     * Returns the name that DJL's {@code Activation.xxxBlock()} gives its {@code LambdaBlock}.
     *
     * @return the block name
     */
    public String getBlockName() {
        return blockName;
    }

    /**
     * Returns whether the second derivative is not zero almost everywhere.
     *
     * @return whether the activation adds curvature columns
     */
    public boolean isSmooth() {
        return smooth;
    }

    /**
     * Returns the parameters that reproduce the given outputs at {@code x = 1} and {@code x = -1}.
     *
     * @param atOne the output at {@code 1}
     * @param atMinusOne the output at {@code -1}
     * @return the parameters
     */
    public double[] fit(double atOne, double atMinusOne) {
        return new double[] {1, 1};
    }

    /**
     * Computes the activation.
     *
     * @param x the input
     * @param p the parameters
     * @return the output
     */
    public abstract NDArray value(NDArray x, double[] p);

    /**
     * Computes the first derivative.
     *
     * @param x the input
     * @param y the output
     * @param p the parameters
     * @return the derivative, shaped like {@code x}
     */
    public abstract NDArray first(NDArray x, NDArray y, double[] p);

    /**
     * Computes the second derivative; zero for piecewise-linear activations.
     *
     * @param x the input
     * @param y the output
     * @param p the parameters
     * @return the second derivative, shaped like {@code x}
     */
    public NDArray second(NDArray x, NDArray y, double[] p) {
        return x.zerosLike();
    }

    private static NDArray mask(NDArray condition, NDArray like) {
        return condition.toType(like.getDataType(), false);
    }

    private static NDArray piecewise(NDArray x, NDArray positive, NDArray negative) {
        NDArray mask = mask(x.gt(0), x);
        return positive.mul(mask).add(negative.mul(mask.neg().add(1)));
    }

    private static NDArray normalCdf(NDArray x) {
        return x.mul(SQRT_HALF).erf().add(1).mul(0.5);
    }

    private static NDArray normalPdf(NDArray x) {
        return x.square().mul(-0.5).exp().mul(INV_SQRT_TWO_PI);
    }
}
