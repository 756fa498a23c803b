"""The skip-connection experiment: measure and train every variant, write the run folder."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11._config import headline_seeds, seeds_why
from ch11._evidence import seed_summary, spread_figure
from ch11.residual import report
from ch11.residual.config import NAME, Config
from recipes.builders import build_mlp, count_params
from recipes.diagnosis.measures import gradient_norms
from recipes.losses import make_loss
from recipes.specs import MLPSpec

__all__ = ["hidden_gradient_norms", "run"]


def hidden_gradient_norms(model: keras.Model, x: np.ndarray,
                          y: np.ndarray) -> tuple[np.ndarray, float]:
    """The loss gradient's L2 norm for each hidden Dense kernel, and the loss, on one batch.

    The ``hidden_*`` rows of `recipes.diagnosis.measures.gradient_norms` with the cross-entropy:
    the forward pass runs in training mode, so batch norm uses the batch's statistics, as
    it does during a training step; its moving statistics are put back afterwards, so the
    model is left unchanged.

    Args:
        model: a model from `recipes.builders.build_mlp` (layers ``hidden_0`` ...).
        x: a batch of inputs.
        y: its integer labels.

    Returns:
        ``(norms, loss)``: one norm per hidden layer, input side first (NaN where the
        gradient is not finite), and the batch's cross-entropy.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "The Vanishing/Exploding Gradients
    Problems".
    """
    grads = gradient_norms(model, x, y, make_loss("crossentropy"))
    hidden = grads["layer"].str.fullmatch(r"hidden_\d+")
    return grads.loc[hidden, "grad_norm"].to_numpy(), grads.attrs["loss"]


def run(config: Config) -> ex.Results:
    """Measure and train every variant and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per variant; per-layer norms in layer_gradients.csv).
    """
    if config.quick:
        config = dataclasses.replace(config, depth=min(config.depth, 6), epochs=1,
                                     probe_size=min(config.probe_size, 200))
    run_dir, started = ex.start(NAME, config)
    data = ex.mnist_splits(config.quick)
    x_probe, y_probe = data["x_train"][:config.probe_size], data["y_train"][:config.probe_size]
    plan = [(a, r, b) for a in config.activations for r in (False, True)
            for b in config.batch_norms]
    rows, histories, layers = [], {}, []
    for k, (activation, residual, bn) in enumerate(plan, 1):
        name = report.variant_name(activation, residual, bn)
        spec = MLPSpec.deep(config.depth, config.units, activation=activation,
                            residual=residual, batch_norm=bn)
        init = {}

        def build(spec: MLPSpec = spec, init: dict = init) -> keras.Model:
            model = build_mlp(spec, (28, 28), 10)
            init["norms"], init["loss"] = hidden_gradient_norms(model, x_probe, y_probe)
            return model

        model, history = ex.train_variant(
            build, ex.classifier_compile(config.optimizer, config.learning_rate), data,
            seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
            callbacks=[keras.callbacks.TerminateOnNaN()],
            label=f"variant {k}/{len(plan)}: {name}",
            log_dir=ex.tensorboard_dir(run_dir, name.replace(" + ", "_").replace(" ", "_")))
        after, after_loss = hidden_gradient_norms(model, x_probe, y_probe)
        histories[name.replace(" + ", "_").replace(" ", "_")] = history
        for when, norms in (("initialization", init["norms"]), ("after training", after)):
            layers.append(pd.DataFrame({"variant": name, "activation": activation,
                                        "when": when, "depth": np.arange(len(norms)),
                                        "grad_norm": norms}))
        rows.append(_row(name, activation, residual, bn, init, after, after_loss, model,
                         history, data))

    table = pd.DataFrame(rows)
    profile = pd.concat(layers, ignore_index=True)
    profile.to_csv(run_dir / "layer_gradients.csv", index=False)
    figures = report.figures(run_dir, profile, config)
    notes = report.notes(table, config)
    plan = report.headline_plan(config)
    names = {report.variant_name(*v) for v in plan}
    seeds = headline_seeds(config)
    main_rows = [{"variant": r.variant, "test_acc": r.test_acc, "diverged": float(r.diverged)}
                 for r in table.itertuples() if r.variant in names]
    per_seed = ex.over_seeds(seeds, config.seed, main_rows,
                             lambda s: _rerun(config, plan, data, s))
    summary = seed_summary(per_seed, "variant", report.HEADLINE_COLUMNS)
    evidence = report.evidence(summary, per_seed, seeds, seeds_why(config), config)
    figures.append(spread_figure(run_dir, per_seed, "variant", ["test_acc"],
                                 f"Test accuracy after {config.epochs} epoch(s), per seed"))
    return ex.finish(NAME, config, run_dir, started, table,
                     title=f"Skip connections in a {config.depth}-layer MLP on MNIST",
                     intro=report.intro(config), histories=histories, figures=figures,
                     notes=[evidence.headline, *notes], metrics=report.metrics(table),
                     evidence=evidence)


def _rerun(config: Config, plan: list, data: dict, seed: int) -> list[dict]:
    """The headline's variants again with another seed: test accuracy, divergence."""
    rows = []
    for activation, residual, bn in plan:
        spec = MLPSpec.deep(config.depth, config.units, activation=activation,
                            residual=residual, batch_norm=bn)
        name = report.variant_name(activation, residual, bn)
        model, history = ex.train_variant(
            lambda s=spec: build_mlp(s, (28, 28), 10),
            ex.classifier_compile(config.optimizer, config.learning_rate), data, seed=seed,
            epochs=config.epochs, batch_size=config.batch_size,
            callbacks=[keras.callbacks.TerminateOnNaN()], label=f"seed {seed}: {name}")
        losses = np.asarray(history.history["loss"], dtype=float)
        rows.append({"variant": name, "test_acc": ex.test_accuracy(model, data),
                     "diverged": float(not np.all(np.isfinite(losses)))})
    return rows


def _ratio(norms: np.ndarray) -> float:
    return float(norms[0] / norms[-1]) if norms[-1] > 0 else float("nan")


def _row(name, activation, residual, bn, init, after, after_loss, model, history,
         data) -> dict:
    h = history.history
    init_norms = init["norms"]
    params = count_params(model)
    finite = np.isfinite(after_loss) and np.all(np.isfinite(after))
    return {
        "variant": name, "activation": activation, "residual": residual, "batch_norm": bn,
        "init_loss": init["loss"], "grad_first_init": init_norms[0],
        "grad_last_init": init_norms[-1], "grad_max_init": float(np.max(init_norms)),
        "first_over_last_init": _ratio(init_norms),
        "zero_grad_layers_init": int(np.sum(init_norms == 0)),
        "first_over_last_after": _ratio(after) if finite else float("nan"),
        "diverged": not finite or not np.isfinite(h["loss"][-1]),
        "val_acc": h["val_accuracy"][-1] if "val_accuracy" in h else float("nan"),
        "test_acc": ex.test_accuracy(model, data), "s_per_epoch": float(np.mean(h["epoch_time"]))
        if h.get("epoch_time") else float("nan"),
        "trainable": params["trainable"], "non_trainable": params["non_trainable"],
    }
