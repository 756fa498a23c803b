"""Activation functions: nine of them on one deep MLP, and the dying ReLUs.

Hands-On ML, chapter 11, "Better Activation Functions". The same deep MLP (10 hidden
layers of 100 units, each activation with the initializer Table 11-1 gives it) is trained
with ReLU, leaky ReLU, PReLU, RReLU, ELU, SELU, GELU, Swish and Mish, from the same seed.
The run reports accuracy, time per epoch and the fraction of dead units (units whose
output is 0 on every image of a validation batch). A second part trains ReLU, leaky ReLU
and ELU with a too-high learning rate and follows the dead units epoch by epoch: this is
the usual answer to "why does my ReLU net stop improving after N epochs". The diagnostics
(`recipes.diagnosis.measures.activation_stats`) give the dead fraction per layer, drawn with the
demonstration's activation histograms per layer.

Run: ``python -m ch11.activations`` (``make recipe-activations``), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

from ch11 import _activations_report as report
from ch11 import _experiment as ex
from recipes.activations import ACTIVATION_NAMES
from recipes.builders import build_mlp, count_params
from recipes.diagnosis.measures import activation_stats, layer_outputs
from recipes.specs import MLPSpec

__all__ = ["Config", "dead_unit_fraction", "main", "run"]

NAME = "activations"
DEFAULT_ACTIVATIONS = ("relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "gelu", "swish",
                       "mish")


@dataclass(frozen=True)
class Config(ex.ExperimentConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    activations: tuple[str, ...] = ex.option(DEFAULT_ACTIVATIONS, "activations to compare",
                                             ACTIVATION_NAMES)
    depth: int = ex.option(10, "hidden layers of the MLP")
    units: int = ex.option(100, "units per hidden layer")
    input_norm: str = ex.input_norm_option("SELU needs it")
    epochs: int = ex.option(2, "epochs per activation")
    optimizer: str = ex.optimizer_option(
        "momentum", "optimizer of the comparison (the book's SGD with momentum 0.9)")
    learning_rate: float = ex.option(1e-3, "learning rate of the comparison")
    batch_size: int = ex.option(32, "mini-batch size")
    probe_size: int = ex.option(1000, "validation images on which a dead unit outputs 0 every time")
    demo_activations: tuple[str, ...] = ex.option(
        ("relu", "leaky_relu", "elu"), "activations of the dying-ReLU demonstration",
        ACTIVATION_NAMES)
    demo_optimizer: str = ex.optimizer_option("adam", "optimizer of the demonstration")
    demo_learning_rate: float = ex.option(
        1e-2, "the too-high learning rate of the demonstration (10x Adam's default)")
    demo_epochs: int = ex.option(5, "epochs of the demonstration")
    demo_train: int = ex.option(
        20000, "training images of the demonstration (fewer, so it can run more epochs)")
    out_dir: str = ex.out_dir_option()

    def __post_init__(self) -> None:
        self._at_least(1, "depth", "units", "epochs", "batch_size", "probe_size", "demo_epochs",
                       "demo_train")
        self._positive("learning_rate", "demo_learning_rate")
        for name in ("activations", "demo_activations"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name} must name at least one activation.")
            unknown = [a for a in values if a not in ACTIVATION_NAMES]
            if unknown:
                raise ValueError(f"Unknown activation(s) {unknown} in {name}. "
                                 f"Valid: {', '.join(ACTIVATION_NAMES)}.")


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
                  f"{len(part_data['x_train'])} images")
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
    return ex.finish(NAME, config, run_dir, started, table,
                     title="Activation functions on MNIST", intro=report.intro(config),
                     histories=histories, figures=figures,
                     notes=report.notes(table, config, (load_start, os.getloadavg()[0])),
                     metrics=report.metrics(table), sections=[("Diagnostics", diagnosis)])


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


main = ex.make_main(Config, run, __doc__,
                    "python -m ch11.activations [--quick] [--activations relu elu ...] ...")


if __name__ == "__main__":
    raise SystemExit(main())
