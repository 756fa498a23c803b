"""Activation functions: nine of them on one deep MLP, and the dying ReLUs.

Hands-On ML, chapter 11, "Better Activation Functions". The same deep MLP (10 hidden
layers of 100 units, each activation with the initializer Table 11-1 gives it) is trained
with ReLU, leaky ReLU, PReLU, RReLU, ELU, SELU, GELU, Swish and Mish, from the same seed.
The run reports accuracy, time per epoch and the fraction of dead units (units whose
output is 0 on every image of a validation batch). A second part trains ReLU, leaky ReLU
and ELU with a too-high learning rate and follows the dead units epoch by epoch: this is
the usual answer to "why does my ReLU net stop improving after N epochs". The diagnostics
(`recipes.diagnostics.activation_stats`) give the dead fraction per layer, drawn with the
demonstration's activation histograms per layer.

Run: ``python -m ch11.activations`` (``make recipe-activations``), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from ch11._experiment import Results, cli, finish, mnist_splits, start, train_variant
from recipes.activations import ACTIVATION_NAMES
from recipes.builders import build_mlp, count_params
from recipes.diagnostics import activation_stats, layer_outputs
from recipes.losses import make_loss
from recipes.optimizers import OPTIMIZER_NAMES, make_optimizer
from recipes.plots import activation_histograms, layer_profile, learning_curves
from recipes.runs import save_figure
from recipes.specs import MLPSpec

__all__ = ["Config", "dead_unit_fraction", "main", "run"]

NAME = "activations"
DEFAULT_ACTIVATIONS = ("relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "gelu", "swish",
                       "mish")


@dataclass(frozen=True)
class Config:
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seed: int = field(default=42, metadata={"help": "seed, re-applied before each variant"})
    quick: bool = field(default=False, metadata={"help": "small slice, one epoch (tests)"})
    activations: tuple[str, ...] = field(
        default=DEFAULT_ACTIVATIONS,
        metadata={"help": "activations to compare", "choices": ACTIVATION_NAMES})
    depth: int = field(default=10, metadata={"help": "hidden layers of the MLP"})
    units: int = field(default=100, metadata={"help": "units per hidden layer"})
    input_norm: str = field(
        default="normalization",
        metadata={"help": "inputs of every variant: standardized by a Normalization layer "
                          "adapted on the training set (SELU needs it) or pixels in [0, 1]",
                  "choices": ("normalization", "none")})
    epochs: int = field(default=2, metadata={"help": "epochs per activation"})
    optimizer: str = field(default="momentum", metadata={
        "help": "optimizer of the comparison (the book's SGD with momentum 0.9)",
        "choices": OPTIMIZER_NAMES})
    learning_rate: float = field(default=1e-3, metadata={"help": "learning rate of the "
                                                                 "comparison"})
    batch_size: int = field(default=32, metadata={"help": "mini-batch size"})
    probe_size: int = field(default=1000, metadata={
        "help": "validation images on which a dead unit outputs 0 every time"})
    demo_activations: tuple[str, ...] = field(
        default=("relu", "leaky_relu", "elu"),
        metadata={"help": "activations of the dying-ReLU demonstration",
                  "choices": ACTIVATION_NAMES})
    demo_optimizer: str = field(default="adam", metadata={
        "help": "optimizer of the demonstration", "choices": OPTIMIZER_NAMES})
    demo_learning_rate: float = field(default=1e-2, metadata={
        "help": "the too-high learning rate of the demonstration (10x Adam's default)"})
    demo_epochs: int = field(default=5, metadata={"help": "epochs of the demonstration"})
    demo_train: int = field(default=20000, metadata={
        "help": "training images of the demonstration (fewer, so it can run more epochs)"})
    out_dir: str = field(default="runs", metadata={"help": "where run folders go"})

    def __post_init__(self) -> None:
        for name in ("depth", "units", "epochs", "batch_size", "probe_size", "demo_epochs",
                     "demo_train"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("learning_rate", "demo_learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}.")
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


def run(config: Config) -> Results:
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
    run_dir, started = start(NAME, config)
    load_start = os.getloadavg()[0]
    data = mnist_splits(config.quick)
    probe = data["x_valid"][:config.probe_size]
    demo_data = {k: v[:config.demo_train] if k in ("x_train", "y_train") else v
                 for k, v in data.items()}
    plan = [("compare", a, config.optimizer, config.learning_rate, config.epochs, data)
            for a in config.activations]
    plan += [("dying_relu", a, config.demo_optimizer, config.demo_learning_rate,
              config.demo_epochs, demo_data) for a in config.demo_activations]
    rows, histories, per_layer, outputs = [], {}, [], {}
    for k, (part, activation, optimizer, lr, epochs, part_data) in enumerate(plan, 1):
        spec = MLPSpec.deep(config.depth, config.units, activation=activation,
                            input_norm=config.input_norm)
        tracker = _DeadUnitTracker(probe)
        compile_kwargs = {"optimizer": make_optimizer(optimizer, learning_rate=lr),
                          "loss": make_loss("crossentropy"), "metrics": ["accuracy"]}
        model, history = train_variant(
            lambda s=spec: build_mlp(s, (28, 28), 10, adapt_data=data["x_train"]),
            compile_kwargs, part_data, seed=config.seed, epochs=epochs,
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
    figures, diagnosis = _figures(run_dir, histories, table, layers, outputs, config)
    return finish(NAME, config, run_dir, started, table,
                  title="Activation functions on MNIST", intro=_intro(config),
                  histories=histories, figures=figures,
                  notes=_notes(table, config, (load_start, os.getloadavg()[0])),
                  metrics=_metrics(table), sections=[("Diagnostics", diagnosis)])


def _row(part: str, activation: str, optimizer: str, lr: float, model: keras.Model, history,
         data, dead_init: float, layers: pd.DataFrame) -> dict:
    h = history.history
    _, test_acc = model.evaluate(data["x_test"], data["y_test"], verbose=0)
    val = np.nan_to_num(np.asarray(h["val_accuracy"], dtype=float))
    return {
        "part": part, "activation": activation, "optimizer": optimizer, "learning_rate": lr,
        "epochs": len(h["loss"]), "val_acc_epoch1": h["val_accuracy"][0],
        "val_acc": h["val_accuracy"][-1], "best_val_acc": float(val.max()),
        "best_epoch": int(val.argmax()) + 1, "test_acc": test_acc,
        "s_per_epoch": sum(h["epoch_time"]) / len(h["epoch_time"]),
        "dead_init": dead_init, "dead_final": h["dead_fraction"][-1],
        "dead_max_layer": layers["dead_fraction"].max(skipna=False),
        "trainable": count_params(model)["trainable"],
    }


def _accuracy_vs_time(table: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.scatter(table["s_per_epoch"], table["val_acc"])
    for r in table.itertuples():
        ax.annotate(r.activation, (r.s_per_epoch, r.val_acc), textcoords="offset points",
                    xytext=(4, 3), fontsize=8)
    ax.set_xlabel("seconds per epoch")
    ax.set_ylabel("validation accuracy (last epoch)")
    ax.set_title("Accuracy vs cost per epoch, same net and seed")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _dying_plot(histories, table: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10.4, 3.8))
    for r in table.itertuples():
        h = histories[f"dying_relu_{r.activation}"].history
        epochs = np.arange(0, len(h["dead_fraction"]) + 1)
        axes[0].plot(epochs, [r.dead_init, *h["dead_fraction"]], marker=".", label=r.activation)
        axes[1].plot(epochs[1:], h["val_accuracy"], marker=".", label=r.activation)
    axes[0].set_ylabel("fraction of dead units")
    axes[0].set_xlabel("epoch (0 = initialization)")
    axes[1].set_ylabel("validation accuracy")
    axes[1].set_xlabel("epoch")
    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    lr = table["learning_rate"].iloc[0]
    fig.suptitle(f"Too high a learning rate ({table['optimizer'].iloc[0]} at {lr:g})")
    fig.tight_layout()
    return fig


def _figures(run_dir, histories, table: pd.DataFrame, layers: pd.DataFrame,
             outputs: dict[str, np.ndarray], config: Config) -> tuple[list, str]:
    compare = table[table["part"] == "compare"]
    demo = table[table["part"] == "dying_relu"]
    save_figure(learning_curves({a: histories[f"compare_{a}"] for a in compare["activation"]},
                                title=f"{config.depth}-layer MLP: one activation per line"),
                run_dir / "learning_curves.png")
    save_figure(_accuracy_vs_time(compare), run_dir / "accuracy_vs_time.png")
    save_figure(_dying_plot(histories, demo), run_dir / "dying_relu.png")
    figures = [("Learning curves per activation (dashed: training, solid: validation)",
                "learning_curves.png"),
               ("Validation accuracy against seconds per epoch", "accuracy_vs_time.png"),
               ("Dying ReLUs: dead units and validation accuracy per epoch at a too-high "
                "learning rate", "dying_relu.png")]
    text = []
    dying = layers[layers["part"] == "dying_relu"]
    if len(dying):
        where = f"after {config.demo_epochs} epochs at {config.demo_optimizer} " \
                f"{config.demo_learning_rate:g}"
        fig = layer_profile(dying, "dead_fraction", by="activation", log=False,
                            ylabel=f"dead units ({config.probe_size} validation images)",
                            title=f"Dead units per hidden layer {where}")
        fig.axes[0].xaxis.get_major_locator().set_params(integer=True)
        save_figure(fig, run_dir / "dead_units_per_layer.png")
        save_figure(activation_histograms(outputs, title=f"Hidden activations {where}"),
                    run_dir / "dying_relu_histograms.png")
        figures += [("Fraction of dead units per hidden layer (depth 0 = next to the input) "
                     "after the too-high learning rate", "dead_units_per_layer.png"),
                    ("Hidden activations' histograms (log counts) after the too-high "
                     "learning rate", "dying_relu_histograms.png")]
        worst = [f"{a}: diverged (outputs not finite)" if p["dead_fraction"].isna().any()
                 else f"{a}: {p['dead_fraction'].max():.0%} of "
                 f"{p.loc[p['dead_fraction'].idxmax(), 'layer']}'s units dead"
                 if p["dead_fraction"].max() > 0 else f"{a}: no dead unit in any layer"
                 for a, p in dying.groupby("activation", sort=False)]
        text += [f"[dead_units_per_layer.png](dead_units_per_layer.png): the dead fraction "
                 f"per layer {where}, worst layer per activation: {'; '.join(worst)}.",
                 "[dying_relu_histograms.png](dying_relu_histograms.png): the same nets' "
                 "outputs on the validation batch; a dead unit adds only exact zeros (the "
                 "spike at 0). Share of exact zeros in the last hidden layer: "
                 + ", ".join(f"{r.activation} {r.frac_zero:.0%}" for r in dying[
                     dying["depth"] == dying["depth"].max()].itertuples()) + "."]
    return figures, "\n\n".join(text)


def _metrics(table: pd.DataFrame) -> dict:
    return {f"{r.part}_{r.activation}_{c}": getattr(r, c)
            for r in table.itertuples() for c in ("val_acc", "test_acc", "dead_final")}


def _notes(table: pd.DataFrame, config: Config, load: tuple[float, float]) -> list[str]:
    notes = []
    compare = table[table["part"] == "compare"].sort_values("val_acc", ascending=False)
    ranking = ", ".join(f"{r.activation} {r.val_acc:.4f}" for r in compare.itertuples())
    notes.append(f"Validation accuracy after {config.epochs} epoch(s), best first: {ranking}. "
                 f"Spread: {compare['val_acc'].max() - compare['val_acc'].min():.4f} (one seed: "
                 "rerun with other --seed values before trusting a gap of a point or less).")
    fast, slow = compare.loc[compare["s_per_epoch"].idxmin()], compare.loc[
        compare["s_per_epoch"].idxmax()]
    notes.append(f"Time per epoch: from {fast['s_per_epoch']:.1f} s ({fast['activation']}) to "
                 f"{slow['s_per_epoch']:.1f} s ({slow['activation']}), "
                 f"{slow['s_per_epoch'] / fast['s_per_epoch']:.2f}x. These are wall-clock "
                 f"times: the 1-minute load average was {load[0]:.1f} at the start and "
                 f"{load[1]:.1f} at the end on {os.cpu_count()} CPU(s), so with a load above "
                 "the CPU count part of any gap is other processes, not the activation.")
    dead = compare[compare["dead_final"] > 0]
    notes.append("Dead units after training (0 on every one of "
                 f"{config.probe_size} validation images): "
                 + (", ".join(f"{r.activation} {r.dead_final:.1%}" for r in dead.itertuples())
                    if len(dead) else "none in any net")
                 + "; the other activations have none.")
    demo = table[table["part"] == "dying_relu"].set_index("activation")
    if "relu" in demo.index:
        r = demo.loc["relu"]
        stalled = (f"its validation accuracy peaked at epoch {r['best_epoch']} "
                   f"({r['best_val_acc']:.4f}) and ended at {r['val_acc']:.4f}"
                   if r["best_epoch"] < r["epochs"] else
                   f"its validation accuracy still rose to the last epoch ({r['val_acc']:.4f})")
        notes.append(
            f"Dying ReLUs ({r['optimizer']} at {r['learning_rate']:g}, {r['epochs']} epochs on "
            f"{config.demo_train} images): the dead fraction went from {r['dead_init']:.1%} at "
            f"initialization to {r['dead_final']:.1%}; {stalled}.")
        for other in demo.index.drop("relu"):
            o = demo.loc[other]
            notes.append(
                f"{other} at the same rate: {o['dead_final']:.1%} dead units, validation "
                f"accuracy best {o['best_val_acc']:.4f} (epoch {o['best_epoch']}), last "
                f"{o['val_acc']:.4f}.")
        alive = [a for a in demo.index.drop("relu") if demo.loc[a, "dead_final"] == 0]
        if r["dead_final"] > 0.1 and alive:
            notes.append(
                f"Why a ReLU net stops improving: {r['dead_final']:.0%} of its units output 0 "
                "for every input and so get no gradient; the capacity left shrinks as more "
                f"die. {', '.join(alive)} keep every unit alive (a non-zero slope or value "
                "for negative inputs) - which does not by itself make them train well at a "
                "rate this high: compare their accuracies above.")
        elif r["dead_final"] <= 0.1:
            notes.append(f"At this rate only {r['dead_final']:.1%} of the ReLU units died, so "
                         "this run does not show the dying-ReLU effect; try a higher "
                         "--demo-learning-rate.")
    if config.quick:
        notes.append("Quick mode: a shallow net, a small slice and one or two epochs; the "
                     "numbers only smoke-test.")
    best, worst = compare.iloc[0], compare.iloc[-1]
    headline = (f"After {config.epochs} epoch(s): best {best['activation']} "
                f"{best['val_acc']:.4f}, worst {worst['activation']} {worst['val_acc']:.4f} "
                "(validation accuracy)")
    if len(demo):
        dead = ", ".join(f"{a} {demo.loc[a, 'dead_final']:.0%}" for a in demo.index)
        headline += (f"; dead units after {config.demo_epochs} epochs at "
                     f"{config.demo_optimizer} {config.demo_learning_rate:g}: {dead}")
    notes.insert(0, headline + ".")
    return notes


def _intro(config: Config) -> str:
    inputs = ("standardized by a Normalization layer adapted on the training set"
              if config.input_norm == "normalization" else "pixels scaled to [0, 1]")
    return (
        f"MLP: {config.depth} hidden layers x {config.units} units, each activation with the "
        "initializer of Table 11-1 (He for the ReLU family, GELU, Swish and Mish; LeCun for "
        f"SELU); inputs {inputs}. Comparison: {config.optimizer} at {config.learning_rate:g}, "
        f"batch {config.batch_size}, {config.epochs} epoch(s) on "
        f"{'a slice of ' if config.quick else 'the 55,000 training images of '}MNIST. Dying-ReLU "
        f"demonstration: {config.demo_optimizer} at {config.demo_learning_rate:g}, "
        f"{config.demo_epochs} epochs on {config.demo_train} training images. Dead unit: "
        f"outputs 0 on every one of {config.probe_size} validation images. Seed {config.seed} "
        "re-applied before each variant; 5,000 training images held out for validation.")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m ch11.activations [--quick] [--activations relu elu ...] ...``."""
    return cli(Config, run, argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
