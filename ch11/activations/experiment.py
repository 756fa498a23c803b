"""The activations experiment: train every activation, then the dying-ReLU demonstration,
and write the run folder."""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11._config import headline_seeds, seeds_why
from ch11._evidence import seed_summary, spread_figure
from ch11.activations import report
from ch11.activations.config import NAME, Config
from recipes.builders import build_mlp, count_params
from recipes.diagnosis.measures import activation_stats, layer_outputs
from recipes.specs import MLPSpec

__all__ = ["dead_unit_fraction", "run"]


def dead_unit_fraction(model: keras.Model, x: np.ndarray) -> float:
    """Fraction of hidden units whose output is exactly 0 on every example of `x`.

    The hidden units are the outputs of the model's ``act_*`` layers (the names
    `recipes.builders` gives them). Such a unit passes no gradient back for these
    inputs, and unless its inputs change it never comes back: it is dead.

    Args:
        model: a model from `recipes.builders.build_mlp`.
        x: a batch of inputs (e.g. validation images).

    Returns:
        The fraction in [0, 1], or NaN when an activation is not finite (the net
        diverged, so "dead" has no meaning).

    Raises:
        ValueError: if the model has no ``act_*`` layer.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Better Activation Functions"
    (dying ReLUs).
    """
    stats = _dead_per_layer(model, x)
    if stats["dead_fraction"].isna().any():
        return float("nan")
    return float(np.rint(stats["dead_fraction"] * stats["units"]).sum() / stats["units"].sum())


def _dead_per_layer(model: keras.Model, x: np.ndarray) -> pd.DataFrame:
    """`activation_stats` of the ``act_*`` layers; dead_fraction NaN where not finite."""
    names = _act_names(model)
    if not names:
        raise ValueError("dead_unit_fraction found no 'act_*' layer in the model; build it "
                         "with recipes.builders.build_mlp.")
    stats = activation_stats(model, x, names)
    stats.loc[stats["nonfinite_fraction"] > 0, "dead_fraction"] = np.nan
    return stats


def _act_names(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers if layer.name.startswith("act_")]


class _DeadUnitTracker(keras.callbacks.Callback):
    """Log the dead-unit fraction before training and after each epoch."""

    def __init__(self, x: np.ndarray) -> None:
        super().__init__()
        self.x = x
        self.initial = float("nan")

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.initial = dead_unit_fraction(self.model, self.x)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["dead_fraction"] = dead_unit_fraction(self.model, self.x)


def run(config: Config) -> ex.Results:
    """Train every activation, then the dying-ReLU demonstration, and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per activation of each part).
    """
    if config.quick:
        config = dataclasses.replace(config, depth=min(config.depth, 5), epochs=1,
                                     demo_epochs=min(config.demo_epochs, 2),
                                     demo_train=min(config.demo_train, 1000))
    run_dir, started = ex.start(NAME, config)
    load_start = os.getloadavg()[0]
    data = ex.mnist_splits(config.quick)
    probe = data["x_valid"][:config.probe_size]
    demo_data = ex.train_subset(data, config.demo_train)
    plan = [("compare", a, config.optimizer, config.learning_rate, config.epochs, data)
            for a in config.activations]
    plan += [("dying_relu", a, config.demo_optimizer, config.demo_learning_rate,
              config.demo_epochs, demo_data) for a in config.demo_activations]
    rows, histories, per_layer, outputs = [], {}, [], {}
    for k, (part, activation, optimizer, lr, epochs, part_data) in enumerate(plan, 1):
        spec = MLPSpec.deep(config.depth, config.units, activation=activation,
                            input_norm=config.input_norm)
        tracker = _DeadUnitTracker(probe)
        model, history = ex.train_variant(
            lambda s=spec: build_mlp(s, (28, 28), 10, adapt_data=data["x_train"]),
            ex.classifier_compile(optimizer, lr), part_data, seed=config.seed, epochs=epochs,
            batch_size=config.batch_size, callbacks=[tracker],
            label=f"variant {k}/{len(plan)}: {part}, {activation}, {optimizer} at {lr:g} on "
                  f"{len(part_data['x_train'])} images",
            log_dir=ex.tensorboard_dir(run_dir, f"{part}_{activation}"))
        histories[f"{part}_{activation}"] = history
        layers = _dead_per_layer(model, probe).assign(part=part, activation=activation)
        per_layer.append(layers)
        rows.append(_row(part, activation, optimizer, lr, model, history, data,
                         tracker.initial, layers))
        if part == "dying_relu":  # 4 layers, input to output side, for the histograms
            names = _act_names(model)
            picks = np.unique(np.linspace(0, len(names) - 1, min(len(names), 4)).round())
            dead = layers.set_index("layer")["dead_fraction"]
            outputs |= {f"{activation}: {n} ({dead[n]:.0%} dead)": v for n, v in layer_outputs(
                model, probe, [names[int(i)] for i in picks]).items()}

    table = pd.DataFrame(rows)
    layers = pd.concat(per_layer, ignore_index=True)[
        ["part", "activation", "layer", "depth", "units", "dead_fraction", "frac_zero",
         "mean", "std"]]
    layers.to_csv(run_dir / "dead_units_per_layer.csv", index=False)
    figures, diagnosis = report.figures(run_dir, histories, table, layers, outputs, config)
    load = (load_start, os.getloadavg()[0])
    seeds = headline_seeds(config)
    main_rows = [{"activation": r.activation, "val_acc": r.val_acc}
                 for r in table[table["part"] == "compare"].itertuples()]
    per_seed = ex.over_seeds(seeds, config.seed, main_rows, lambda s: _rerun(config, data, s))
    summary = seed_summary(per_seed, "activation", report.HEADLINE_COLUMNS)
    evidence = report.evidence(summary, per_seed, seeds, seeds_why(config), config)
    figures.append(spread_figure(run_dir, per_seed, "activation", report.HEADLINE_COLUMNS,
                                 f"Validation accuracy after {config.epochs} epoch(s), per seed"))
    return ex.finish(NAME, config, run_dir, started, table,
                     title="Activation functions on MNIST", intro=report.intro(config),
                     histories=histories, figures=figures,
                     notes=[evidence.headline, *report.notes(table, config, load)],
                     metrics=report.metrics(table), sections=[("Diagnostics", diagnosis)],
                     evidence=evidence)


def _rerun(config: Config, data: dict, seed: int) -> list[dict]:
    """The comparison's activations again with another seed: their validation accuracy."""
    rows = []
    for activation in config.activations:
        spec = MLPSpec.deep(config.depth, config.units, activation=activation,
                            input_norm=config.input_norm)
        _, history = ex.train_variant(
            lambda s=spec: build_mlp(s, (28, 28), 10, adapt_data=data["x_train"]),
            ex.classifier_compile(config.optimizer, config.learning_rate), data, seed=seed,
            epochs=config.epochs, batch_size=config.batch_size,
            label=f"seed {seed}: compare, {activation}")
        rows.append({"activation": activation, "val_acc": history.history["val_accuracy"][-1]})
    return rows


def _row(part: str, activation: str, optimizer: str, lr: float, model: keras.Model, history,
         data, dead_init: float, layers: pd.DataFrame) -> dict:
    h = history.history
    val = np.nan_to_num(np.asarray(h["val_accuracy"], dtype=float))
    return {
        "part": part, "activation": activation, "optimizer": optimizer, "learning_rate": lr,
        "epochs": len(h["loss"]), "val_acc_epoch1": h["val_accuracy"][0],
        "val_acc": h["val_accuracy"][-1], "best_val_acc": float(val.max()),
        "best_epoch": int(val.argmax()) + 1, "test_acc": ex.test_accuracy(model, data),
        "s_per_epoch": sum(h["epoch_time"]) / len(h["epoch_time"]),
        "dead_init": dead_init, "dead_final": h["dead_fraction"][-1],
        "dead_max_layer": layers["dead_fraction"].max(skipna=False),
        "trainable": count_params(model)["trainable"],
    }
