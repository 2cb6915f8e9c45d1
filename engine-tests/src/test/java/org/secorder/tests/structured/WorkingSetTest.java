package org.secorder.tests.structured;

import org.secorder.structured.internal.propagation.Propagation;
import org.testng.Assert;
import org.testng.annotations.Test;

/** The working set of a column chunk follows glibc's mmap threshold as its two settings give it. */
public class WorkingSetTest {

    private static final long SMALL = 16L << 20;
    private static final long LARGE = 32L << 20;

    /** Without either setting the chunks stay below glibc's default threshold. */
    @Test
    public void withoutSettingsTheWorkingSetIsSmall() {
        Assert.assertEquals(Propagation.workingSetBytes(null, null), SMALL);
    }

    /** A threshold of 128 MiB by the environment variable allows the larger chunks. */
    @Test
    public void largeThresholdByVariableAllowsLargeWorkingSet() {
        Assert.assertEquals(Propagation.workingSetBytes("134217728", null), LARGE);
    }

    /** A threshold below four times the larger working set keeps the small one. */
    @Test
    public void thresholdBelowFourWorkingSetsKeepsSmallWorkingSet() {
        Assert.assertEquals(Propagation.workingSetBytes("134217727", null), SMALL);
    }

    /** The threshold may also come as a glibc tunable, in hexadecimal, among others. */
    @Test
    public void largeThresholdByTunableAllowsLargeWorkingSet() {
        Assert.assertEquals(
                Propagation.workingSetBytes(
                        null, "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=0x8000000"),
                LARGE);
    }

    /** A value that is not a number counts as no setting. */
    @Test
    public void unreadableThresholdKeepsSmallWorkingSet() {
        Assert.assertEquals(
                Propagation.workingSetBytes("lots", "glibc.malloc.mmap_threshold"), SMALL);
    }
}
