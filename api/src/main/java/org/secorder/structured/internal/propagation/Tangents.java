package org.secorder.structured.internal.propagation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;

/**
 * Forward-mode directions, {@code T} per group and sample: the derivatives of a layer's values with
 * respect to single parameters, pushed up the network by the layers' Jacobians.
 *
 * <p>The values are {@code (n, G, T, d / G)}: the per-sample features ({@code d} of them, in the
 * feature shape) split into {@code G} contiguous blocks, and the {@code T} tangents of group {@code
 * g} are zero outside block {@code g}. A convolution's weight tangents, say, are one group per
 * filter, each non-zero in its own output channel only; a map that mixes the blocks makes one group
 * of them all. Where the number of channels (the first axis of the feature shape) is a multiple of
 * {@code G}, each block is {@code C / G} whole channels, and channel-wise maps (pooling) apply to
 * every block on its own.
 */
public final class Tangents {

    private final NDArray values;
    private final Shape featureShape;

    /**
     * Creates tangents.
     *
     * @param values {@code (n, G, T, d / G)}
     * @param featureShape the per-sample feature shape, of size {@code d}
     */
    public Tangents(NDArray values, Shape featureShape) {
        Shape shape = values.getShape();
        if (shape.dimension() != 4 || shape.get(1) * shape.get(3) != featureShape.size()) {
            throw new IllegalArgumentException(
                    "tangents of shape " + shape + " do not cover the features " + featureShape);
        }
        this.values = values;
        this.featureShape = featureShape;
    }

    /**
     * Returns the values.
     *
     * @return {@code (n, G, T, d / G)}
     */
    public NDArray getValues() {
        return values;
    }

    /**
     * Returns the per-sample feature shape.
     *
     * @return the feature shape
     */
    public Shape getFeatureShape() {
        return featureShape;
    }

    /**
     * Returns the number of samples.
     *
     * @return {@code n}
     */
    public long getSamples() {
        return values.getShape().get(0);
    }

    /**
     * Returns the number of groups.
     *
     * @return {@code G}
     */
    public long getGroups() {
        return values.getShape().get(1);
    }

    /**
     * Returns the number of tangents per group.
     *
     * @return {@code T}
     */
    public long getCount() {
        return values.getShape().get(2);
    }

    /**
     * Returns whether every group is made of whole channels, so that channel-wise maps apply.
     *
     * @return whether the channels divide into the groups
     */
    public boolean isChannelWise() {
        return featureShape.dimension() >= 2 && featureShape.get(0) % getGroups() == 0;
    }

    /**
     * Returns every tangent's block as a batch of feature maps, {@code (n G T, C / G, spatial...)},
     * for channel-wise maps.
     *
     * @return the view
     */
    public NDArray channels() {
        long groups = getGroups();
        return values.reshape(
                new Shape(-1, featureShape.get(0) / groups).addAll(featureShape.slice(1)));
    }

    /**
     * Returns the tangents after a channel-wise map, from its output {@code (n G T, C / G,
     * spatial...)}.
     *
     * @param mapped the map's output
     * @return the mapped tangents, in the same groups
     */
    public Tangents fromChannels(NDArray mapped) {
        Shape shape = mapped.getShape();
        long groups = getGroups();
        Shape features = new Shape(shape.get(1) * groups).addAll(shape.slice(2));
        return new Tangents(
                mapped.reshape(getSamples(), groups, getCount(), shape.size() / shape.get(0)),
                features);
    }

    /**
     * Returns the same tangents as one group, zeros written out: for a map that mixes the blocks.
     *
     * @return the tangents as one group of {@code G T}
     */
    public Tangents ungrouped() {
        long groups = getGroups();
        if (groups == 1) {
            return this;
        }
        NDArray eye =
                values.getManager()
                        .eye(Math.toIntExact(groups))
                        .toType(values.getDataType(), false);
        NDArray spread = values.expandDims(3).mul(eye.reshape(1, groups, 1, groups, 1));
        return new Tangents(
                spread.reshape(getSamples(), 1, groups * getCount(), featureShape.size()),
                featureShape);
    }

    /**
     * Returns the same values in another feature shape of the same size.
     *
     * @param shape the new feature shape
     * @return the reshaped tangents
     */
    public Tangents reshape(Shape shape) {
        return new Tangents(values, shape);
    }

    /**
     * Multiplies every tangent elementwise by a per-sample factor: the Jacobian of an elementwise
     * block.
     *
     * @param factor {@code (n, d)}
     * @return the scaled tangents
     */
    public Tangents scale(NDArray factor) {
        return new Tangents(values.mul(blocks(factor)), featureShape);
    }

    /**
     * Returns every tangent's quadratic form with a per-sample diagonal, {@code sum_i w_i t_i^2}.
     *
     * @param weights {@code (n, d)}
     * @return {@code (n, G, T)}
     */
    public NDArray weightedSquares(NDArray weights) {
        NDArray squares = values.square();
        squares.muli(blocks(weights));
        NDArray sums = squares.sum(new int[] {3});
        squares.close();
        return sums;
    }

    /**
     * Returns every tangent's quadratic form with signed columns at the same features, {@code sum_c
     * sign_c (t . v_c)^2}.
     *
     * @param columns {@code (n, K, d)}
     * @param signs {@code (n, K)}, or {@code null} for all {@code +1}
     * @return {@code (n, G, T)}
     */
    public NDArray columnSquares(NDArray columns, NDArray signs) {
        long samples = getSamples();
        long groups = getGroups();
        long count = columns.getShape().get(1);
        long tangents = getCount();
        long block = values.getShape().get(3);
        // (n, G, d / G, K): every group's block of every column
        NDArray blocks = columns.reshape(samples, count, groups, -1).transpose(0, 2, 3, 1);
        if (throughGram(groups, tangents, block * groups, count)) {
            // fewer multiplications through each group's signed Gram matrix of the columns,
            // t^T (sum_c sign_c v_c v_c^T) t, where the blocks are short
            NDArray signed =
                    signs == null ? blocks : blocks.mul(signs.reshape(samples, 1, 1, count));
            NDArray gram = blocks.matMul(signed.transpose(0, 1, 3, 2));
            NDArray projected = values.matMul(gram);
            NDArray forms = projected.muli(values).sum(new int[] {3});
            projected.close();
            return forms;
        }
        NDArray products = values.matMul(blocks);
        NDArray squares = products.muli(products);
        if (signs != null) {
            squares.muli(signs.reshape(samples, 1, 1, count));
        }
        NDArray sums = squares.sum(new int[] {3});
        products.close();
        return sums;
    }

    /**
     * Returns the multiplications per sample of {@link #columnSquares}: {@code G T (d / G) K} from
     * the products with every column, or {@code G (d / G)^2 (K + T)} through the Gram matrices of
     * the groups' blocks, whichever is less.
     *
     * @param groups the number of groups {@code G}
     * @param tangents the number of tangents per group {@code T}
     * @param features the number of features {@code d}
     * @param columns the number of columns {@code K}
     * @return the multiplications
     */
    public static double columnSquaresCost(
            long groups, long tangents, long features, long columns) {
        return Math.min(
                productsCost(tangents, features, columns),
                gramCost(groups, tangents, features, columns));
    }

    private static boolean throughGram(long groups, long tangents, long features, long columns) {
        return gramCost(groups, tangents, features, columns)
                < productsCost(tangents, features, columns);
    }

    private static double productsCost(long tangents, long features, long columns) {
        return (double) tangents * features * columns;
    }

    private static double gramCost(long groups, long tangents, long features, long columns) {
        double block = (double) features / groups;
        return features * block * (columns + tangents);
    }

    /** {@code (n, d) -> (n, G, 1, d / G)}, to broadcast over the tangents of each group. */
    private NDArray blocks(NDArray perSample) {
        return perSample.reshape(getSamples(), getGroups(), 1, -1);
    }
}
