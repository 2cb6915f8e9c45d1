package org.secorder.estimation.internal;

import java.util.SplittableRandom;

/**
 * A reproducible stream of random probe vectors with independent entries of mean zero and variance
 * one, so that {@code E[z z^T] = I}: Rademacher ({@code +1} or {@code -1} with equal probability)
 * or standard Gaussian.
 *
 * <p>The entries are drawn on the host in a fixed order (probe after probe, each the concatenation
 * of the flattened parameters), so the same seed gives the same probes whatever the engine, device,
 * data type or batch size.
 */
public final class Probes {

    private final SplittableRandom random;
    private final boolean gaussian;

    /**
     * Creates a stream of probes.
     *
     * @param seed the seed
     * @param gaussian whether entries are standard Gaussian rather than Rademacher
     */
    public Probes(long seed, boolean gaussian) {
        this.random = new SplittableRandom(seed);
        this.gaussian = gaussian;
    }

    /**
     * Draws the next probe.
     *
     * @param dimension its number of entries
     * @return the probe
     */
    public double[] next(int dimension) {
        double[] probe = new double[dimension];
        if (gaussian) {
            for (int i = 0; i < dimension; i++) {
                probe[i] = random.nextGaussian();
            }
        } else {
            for (int i = 0; i < dimension; i++) {
                probe[i] = random.nextBoolean() ? 1.0 : -1.0;
            }
        }
        return probe;
    }

    /**
     * Draws the next probes.
     *
     * @param count how many
     * @param dimension the entries of each
     * @return the probes
     */
    public double[][] next(int count, int dimension) {
        double[][] probes = new double[count][];
        for (int k = 0; k < count; k++) {
            probes[k] = next(dimension);
        }
        return probes;
    }
}
