package org.secorder.core;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.secorder.engine.RecordingScope;
import org.secorder.engine.SecondOrderEngine;
import org.secorder.engine.SecondOrderEngines;
import org.secorder.evaluation.Evaluation;
import org.secorder.evaluation.LossFunction;
import org.secorder.evaluation.ParameterSnapshot;
import org.secorder.operator.CurvatureOperator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Hessian or GGN of a loss as a {@link CurvatureOperator}: each product evaluates the loss
 * again, in a scope of its own, and goes through {@link HessianDiagonal}'s per-parameter handling
 * of frozen and unused parameters.
 */
final class ProductOperator implements CurvatureOperator {

    /** The number of vector-Jacobian products per GGN product above which a warning is logged. */
    static final long COSTLY_PRODUCTS = 64;

    private static final Logger LOGGER = LoggerFactory.getLogger(ProductOperator.class);

    private final HessianVectorProduct config;
    private final SecondOrderEngine engine;
    private final NDArray[] parameters;
    private final String[] names;
    private final List<NDArray> callerArrays;
    private final String source;
    private final Supplier<NDArray> func;
    private final Model model;
    private final AtomicBoolean warned = new AtomicBoolean();

    private ProductOperator(
            HessianVectorProduct config,
            NDArray[] parameters,
            String[] names,
            List<NDArray> callerArrays,
            String source,
            Supplier<NDArray> func,
            Model model) {
        this.config = config;
        this.engine = SecondOrderEngines.of(parameters[0]);
        this.parameters = parameters;
        this.names = names;
        this.callerArrays = callerArrays;
        this.source = source;
        this.func = func;
        this.model = model;
    }

    static ProductOperator forLoss(
            HessianVectorProduct config, Supplier<NDArray> func, NDList params) {
        NDArray[] parameters = Arguments.parameters(params, "params");
        String[] names = new String[parameters.length];
        for (int i = 0; i < parameters.length; i++) {
            names[i] = parameters[i].getName();
        }
        return new ProductOperator(
                config, parameters, names, List.of(parameters), "func", func, null);
    }

    static ProductOperator forModel(
            HessianVectorProduct config, Block block, Loss loss, NDList inputs, NDList targets) {
        Arguments.ModelParameters checked =
                Arguments.model(
                        block, loss, inputs, targets, "its curvature is multiplied with a vector");
        NDArray[] parameters = checked.arrays;
        String[] names = checked.names;
        List<NDArray> callers = new ArrayList<>(List.of(parameters));
        callers.addAll(inputs);
        callers.addAll(targets);
        Model model = new Model(block, loss, inputs, targets, config.isTraining());
        return new ProductOperator(
                config,
                parameters,
                names,
                List.copyOf(callers),
                "loss.evaluate(targets, predictions)",
                null,
                model);
    }

    /** {@inheritDoc} */
    @Override
    public NDList getParameters() {
        return new NDList(parameters);
    }

    /** {@inheritDoc} */
    @Override
    public NDList multiply(NDList vector) {
        return multiplyAll(Collections.singletonList(vector)).get(0);
    }

    /**
     * {@inheritDoc}
     *
     * <p>One evaluation of the loss serves every vector: on PyTorch one TorchScript call, and the
     * vector-Jacobian products of {@link HessianVectorProduct.Method#FACTORED} are shared by all
     * vectors.
     */
    @Override
    public List<NDList> multiplyAll(List<NDList> vectors) {
        if (vectors == null) {
            throw new IllegalArgumentException("vectors must not be null");
        }
        if (vectors.isEmpty()) {
            return new ArrayList<>();
        }
        NDArray[][] groups = new NDArray[vectors.size()][];
        List<NDArray> callers = new ArrayList<>(callerArrays);
        for (int j = 0; j < groups.length; j++) {
            groups[j] = checked(vectors.get(j), vectors.size() == 1 ? "v" : "vectors[" + j + "]");
            callers.addAll(List.of(groups[j]));
        }
        if (model == null || !model.training) {
            return perParameter(groups, callers);
        }
        // Training-mode layers such as BatchNorm update running statistics in every forward pass.
        try (ParameterSnapshot snapshot =
                new ParameterSnapshot(engine, parameters, parameters[0].getManager())) {
            try {
                return perParameter(groups, callers);
            } finally {
                snapshot.restore();
            }
        }
    }

    private NDArray[] checked(NDList vector, String name) {
        if (vector == null) {
            throw new IllegalArgumentException(name + " must not be null");
        }
        NDArray[] arrays = Arguments.vectors(vector, parameters);
        for (int i = 0; i < arrays.length; i++) {
            String engineName = arrays[i].getManager().getEngine().getEngineName();
            if (!engineName.equals(engine.getEngineName())) {
                throw new IllegalArgumentException(
                        name
                                + ": entry "
                                + i
                                + " must belong to the parameters' engine "
                                + engine.getEngineName()
                                + ", got "
                                + engineName);
            }
            Device device = parameters[i].getDevice();
            if (!arrays[i].getDevice().equals(device)) {
                throw new IllegalArgumentException(
                        name
                                + ": entry "
                                + i
                                + " must be on the device of parameter "
                                + i
                                + ", "
                                + device
                                + ", got "
                                + arrays[i].getDevice());
            }
        }
        return arrays;
    }

    /**
     * Computes the products of every group in one evaluation, on the first group's turn, and hands
     * each group through {@link HessianDiagonal}'s per-parameter handling.
     */
    private List<NDList> perParameter(NDArray[][] groups, List<NDArray> callers) {
        HessianDiagonal results =
                HessianDiagonal.builder()
                        .optStrict(config.isStrict())
                        .optCreateGraph(config.isCreateGraph())
                        .build();
        NDArray[][][] computed = new NDArray[1][][];
        List<NDList> products = new ArrayList<>(groups.length);
        try (NDManager held = parameters[0].getManager().newSubManager()) {
            for (int j = 0; j < groups.length; j++) {
                int group = j;
                DiagonalSource source =
                        (active, work) -> {
                            if (computed[0] == null) {
                                computed[0] = products(active, groups, callers, held);
                            }
                            return computed[0][group];
                        };
                products.add(results.diagonal(source, engine, parameters, names, callers));
            }
            return products;
        } catch (RuntimeException | Error e) {
            for (NDList product : products) {
                product.close();
            }
            throw e;
        }
    }

    private NDArray[][] products(
            int[] active, NDArray[][] groups, List<NDArray> callers, NDManager held) {
        NDArray[] variables = new NDArray[active.length];
        NDArray[][] directions = new NDArray[groups.length][active.length];
        for (int k = 0; k < active.length; k++) {
            variables[k] = parameters[active[k]];
            for (int j = 0; j < groups.length; j++) {
                directions[j][k] = groups[j][active[k]];
            }
        }
        NDArray[] output = new NDArray[1];
        Supplier<NDArray> loss = model == null ? func : () -> model.loss(engine, output);
        LossFunction function = new LossFunction(engine, loss, source, callers);
        NDArray[][] computed;
        try (Evaluation evaluation = function.evaluate()) {
            computed = compute(evaluation, output[0], variables, directions);
            for (NDArray[] group : computed) {
                for (NDArray product : group) {
                    if (product != null) {
                        product.attach(held);
                    }
                }
            }
        }
        NDArray[][] products = new NDArray[groups.length][parameters.length];
        for (int j = 0; j < groups.length; j++) {
            for (int k = 0; k < active.length; k++) {
                products[j][active[k]] = computed[j][k];
            }
        }
        return products;
    }

    private NDArray[][] compute(
            Evaluation evaluation, NDArray output, NDArray[] variables, NDArray[][] groups) {
        boolean createGraph = config.isCreateGraph();
        if (config.getCurvature() == Curvature.HESSIAN) {
            return engine.hessianVectorProducts(
                    evaluation.getLoss(), variables, groups, createGraph);
        }
        if (output == null) {
            throw new IllegalArgumentException(
                    "curvature GGN needs a model with exactly one output, the predictions the loss"
                            + " is evaluated on");
        }
        HessianVectorProduct.Method method = config.getMethod();
        if (method != HessianVectorProduct.Method.FACTORED) {
            try {
                return engine.gaussNewtonVectorProducts(
                        evaluation.getLoss(), output, variables, groups, createGraph);
            } catch (UnsupportedOperationException e) {
                if (method != HessianVectorProduct.Method.AUTO || createGraph) {
                    throw e;
                }
            }
        }
        return FactoredGaussNewton.compute(
                engine,
                model.loss,
                output,
                model.targets.singletonOrThrow(),
                variables,
                groups,
                evaluation.getManager(),
                this::costly);
    }

    private void costly(long count) {
        if (count > COSTLY_PRODUCTS && !warned.getAndSet(true)) {
            LOGGER.warn(
                    "Each exact Gauss-Newton-vector product from first derivatives"
                            + " (Method.FACTORED) runs {} vector-Jacobian products through the"
                            + " whole batch (one per sample and loss-factor column): about {}"
                            + " gradient evaluations. Smaller batches cost quadratically less;"
                            + " the PyTorch engine needs about 3.",
                    count,
                    count);
        }
    }

    /** A model's forward pass and loss, recording the model's output of the latest evaluation. */
    private static final class Model {

        final Block block;
        final Loss loss;
        final NDList inputs;
        final NDList targets;
        final boolean training;

        Model(Block block, Loss loss, NDList inputs, NDList targets, boolean training) {
            this.block = block;
            this.loss = loss;
            this.inputs = inputs;
            this.targets = targets;
            this.training = training;
        }

        NDArray loss(SecondOrderEngine engine, NDArray[] output) {
            NDManager manager = inputs.head().getManager();
            ParameterStore store = new ParameterStore(manager, false);
            RecordingScope mode = engine.trainingMode(training);
            try {
                NDList predictions = block.forward(store, inputs, training);
                output[0] = predictions.size() == 1 ? predictions.head() : null;
                return loss.evaluate(targets, predictions);
            } finally {
                mode.close();
            }
        }
    }
}
