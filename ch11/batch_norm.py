"""Batch normalization: none vs after the activation vs before it, on MNIST.

Hands-On ML, chapter 11, "Batch Normalization". The same deep MLP and the same small
CNN are trained without BN, with BN after each activation and with BN before it (the
Dense/Conv layer then has no bias, as the book recommends), from the same seed and with
the same optimizer. The run reports learning curves, accuracy after each epoch, time per
epoch, trainable/non-trainable parameter counts, the train-validation gap, the hidden
activations' spread through depth and the gradient flow of the trained MLPs (both from
`recipes.diagnostics`, on 512 validation images), and what BN does with a very small batch.

Run: ``python -m ch11.batch_norm`` (``make recipe-bn``), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11._text import mnist_text, quick_note
from recipes.builders import build_cnn, build_mlp, count_params
from recipes.diagnostics import activation_stats, gradient_norms
from recipes.plots import gradient_flow, layer_profile, learning_curves
from recipes.runs import save_figure
from recipes.specs import CNNSpec, MLPSpec

__all__ = ["Config", "PLACEMENTS", "main", "run"]

NAME = "batch_norm"
PLACEMENTS = ("none", "after", "before")
_LOSS = "sparse_categorical_crossentropy"


@dataclass(frozen=True)
class Config(ex.ExperimentConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    mlp_depth: int = ex.option(20, "hidden layers of the deep MLP")
    mlp_units: int = ex.option(100, "units per hidden layer")
    activation: str = ex.option("relu", "hidden activation")
    mlp_epochs: int = ex.option(3, "epochs for the MLP variants")
    cnn_epochs: int = ex.option(2, "epochs for the CNN variants")
    optimizer: str = ex.optimizer_option("sgd", "optimizer for every variant")
    learning_rates: tuple[float, ...] = ex.option(
        (0.01, 0.05), "MLP learning rates (BN's promise is a higher usable rate); the CNN and "
                      "the small-batch runs use the first")
    batch_size: int = ex.option(32, "mini-batch size")
    small_batch_size: int = ex.option(4, "the 'very small' batch")
    small_batch_train: int = ex.option(5000, "training images for the small-batch run")
    out_dir: str = ex.out_dir_option()

    def __post_init__(self) -> None:
        self._at_least(1, "mlp_depth", "mlp_units", "mlp_epochs", "cnn_epochs", "batch_size",
                       "small_batch_size", "small_batch_train")
        if not self.learning_rates or min(self.learning_rates) <= 0:
            raise ValueError(f"learning_rates must be > 0, got {self.learning_rates}.")


def _diagnose(model: keras.Model, x: np.ndarray, y: np.ndarray,
              variant: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per hidden activation its spread, and per kernel its gradient norm, on one batch."""
    names = [layer.name for layer in model.layers if layer.name.startswith("act_")]
    return (activation_stats(model, x, names).assign(variant=variant),
            gradient_norms(model, x, y))


def _row(family: str, placement: str, lr: float, model: keras.Model, history, data,
         batch_size: int, diag: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> dict:
    h = history.history
    test_acc = ex.test_accuracy(model, data)
    # Keras's training accuracy is a running mean over the epoch while the weights move;
    # the gap is measured on the final weights, on as many training images as validation.
    n = len(data["x_valid"])
    _, train_acc = model.evaluate(data["x_train"][:n], data["y_train"][:n], verbose=0)
    params = count_params(model)
    return {
        "model": family, "batch_norm": placement, "learning_rate": lr, "batch_size": batch_size,
        "epochs": len(h["loss"]), "val_acc_epoch1": h["val_accuracy"][0],
        "val_acc": h["val_accuracy"][-1], "test_acc": test_acc,
        "train_acc": train_acc, "train_val_gap": train_acc - h["val_accuracy"][-1],
        "s_per_epoch": sum(h["epoch_time"]) / len(h["epoch_time"]),
        "trainable": params["trainable"], "non_trainable": params["non_trainable"],
        "act_std_last": diag[0]["std"].iloc[-1] if diag else np.nan,
        "grad_first_over_last": diag[1]["grad_norm"].iloc[0] / diag[1]["grad_norm"].iloc[-2]
        if diag else np.nan,
    }


def run(config: Config) -> ex.Results:
    """Train every variant and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per model x placement, plus the small-batch rows).
    """
    if config.quick:
        config = dataclasses.replace(config, mlp_depth=min(config.mlp_depth, 5), mlp_epochs=1,
                                     cnn_epochs=1, small_batch_train=300)
    run_dir, started = ex.start(NAME, config)
    data = ex.mnist_splits(config.quick)
    probe, probe_y = data["x_valid"][:512], data["y_valid"][:512]
    rows, histories, stats, flows = [], {}, [], {}
    mlp = MLPSpec.deep(config.mlp_depth, config.mlp_units, activation=config.activation)
    cnn = CNNSpec(filters=(32, 64), dense_units=(128,), activation=config.activation)
    lr0 = config.learning_rates[0]
    plan = [("mlp", p, lr) for lr in config.learning_rates for p in PLACEMENTS]
    plan += [("cnn", p, lr0) for p in PLACEMENTS]
    total = len(plan) + 2
    for k, (family, placement, lr) in enumerate(plan, 1):
        if family == "mlp":
            spec, builder = dataclasses.replace(mlp, batch_norm=placement), build_mlp
            epochs, key = config.mlp_epochs, f"mlp_lr{lr:g}_bn_{placement}"
        else:
            spec, builder = dataclasses.replace(cnn, batch_norm=placement), build_cnn
            epochs, key = config.cnn_epochs, f"cnn_bn_{placement}"
        model, history = ex.train_variant(
            lambda s=spec, b=builder: b(s, (28, 28), 10),
            ex.classifier_compile(config.optimizer, lr, loss=_LOSS), data,
            seed=config.seed, epochs=epochs, batch_size=config.batch_size,
            label=f"variant {k}/{total}: {family}, BN {placement}, learning rate {lr:g}")
        diag = None
        if family == "mlp":
            diag = _diagnose(model, probe, probe_y, f"BN {placement}, lr {lr:g}")
            stats.append(diag[0])
            flows.setdefault(lr, {})[f"BN {placement}"] = diag[1]
        rows.append(_row(family, placement, lr, model, history, data, config.batch_size, diag))
        histories[key] = history

    small = ex.train_subset(data, config.small_batch_train)
    for k, placement in enumerate(("none", "before"), len(plan) + 1):
        spec = dataclasses.replace(mlp, batch_norm=placement)
        model, history = ex.train_variant(
            lambda s=spec: build_mlp(s, (28, 28), 10),
            ex.classifier_compile(config.optimizer, lr0, loss=_LOSS), small,
            seed=config.seed, epochs=1, batch_size=config.small_batch_size,
            label=f"variant {k}/{total}: mlp, BN {placement}, "
                  f"batch {config.small_batch_size} on {len(small['x_train'])} images")
        row = _row("mlp (small batch)", placement, lr0, model, history, data,
                   config.small_batch_size)
        rows.append(row)
        histories[f"mlp_small_batch_bn_{placement}"] = history

    table = pd.DataFrame(rows)
    stats = pd.concat(stats, ignore_index=True)
    stats[["variant", "layer", "depth", "mean", "std", "frac_zero", "dead_fraction"]].to_csv(
        run_dir / "mlp_activation_stats.csv", index=False)
    figures = _figures(run_dir, histories, stats, config)
    flow_figures, diagnosis = _flow_figures(run_dir, flows, table, stats, config)
    notes = _notes(table, config)
    return ex.finish(NAME, config, run_dir, started, table, title="Batch normalization on MNIST",
                     intro=_intro(config), histories=histories, figures=figures + flow_figures,
                     notes=notes, metrics=_metrics(table), sections=[("Diagnostics", diagnosis)])


def _figures(run_dir, histories, stats: pd.DataFrame, config: Config) -> list[tuple[str, str]]:
    figures = []
    for lr in config.learning_rates:
        prefix = f"mlp_lr{lr:g}_"
        mlp = {k.replace(prefix, ""): v for k, v in histories.items() if k.startswith(prefix)}
        name = f"mlp_learning_curves_lr{lr:g}.png"
        save_figure(learning_curves(mlp, title=f"Deep MLP, learning rate {lr:g}"),
                    run_dir / name)
        figures.append((f"Deep MLP at learning rate {lr:g} (dashed: training, solid: "
                        "validation)", name))
    cnn = {k.replace("cnn_", ""): v for k, v in histories.items() if k.startswith("cnn_")}
    save_figure(learning_curves(cnn, title="Small CNN: learning curves"),
                run_dir / "cnn_learning_curves.png")
    fig = layer_profile(stats, "std", log=True, ylabel="activation std (512 validation images)",
                        title="Hidden activations' spread through depth, after training")
    fig.axes[0].xaxis.get_major_locator().set_params(integer=True)
    save_figure(fig, run_dir / "mlp_activation_std.png")
    return figures + [
        ("Small CNN learning curves", "cnn_learning_curves.png"),
        ("Activation std per hidden layer of the trained MLPs", "mlp_activation_std.png")]


def _flow_figures(run_dir, flows: dict[float, dict[str, pd.DataFrame]], table: pd.DataFrame,
                  stats: pd.DataFrame, config: Config) -> tuple[list[tuple[str, str]], str]:
    """One gradient-flow figure per learning rate, and what they and the std figure show."""
    figures, text = [], []
    for lr, frames in flows.items():
        name = f"mlp_gradient_flow_lr{lr:g}.png"
        save_figure(gradient_flow(frames, title=f"Trained MLPs' gradient flow, learning rate "
                                                f"{lr:g} (512 validation images)"),
                    run_dir / name)
        figures.append((f"Gradient norm per kernel of the MLPs trained at {lr:g} (log scale)",
                        name))
        rows = table[(table["model"] == "mlp") & (table["learning_rate"] == lr)]
        rows = rows.set_index("batch_norm")
        text.append(
            f"[{name}]({name}): after {config.mlp_epochs} epoch(s) at {lr:g}, hidden_0's "
            "gradient norm / the last hidden layer's: " + ", ".join(
                f"BN {p} {rows.loc[p, 'grad_first_over_last']:.3g} (hidden_0: "
                f"{frames[f'BN {p}']['grad_norm'].iloc[0]:.3g})" for p in PLACEMENTS)
            + "; the validation accuracy after epoch 1: " + ", ".join(
                f"BN {p} {rows.loc[p, 'val_acc_epoch1']:.4f}" for p in PLACEMENTS) + ".")
    spread = stats.groupby("variant", sort=False)["std"]
    text.append(
        "[mlp_activation_std.png](mlp_activation_std.png): the hidden activations' std on 512 "
        "validation images, first -> last hidden layer: " + "; ".join(
            f"{v} {s.iloc[0]:.3g} -> {s.iloc[-1]:.3g}" for v, s in spread) + ".")
    return figures, "\n\n".join(text)


def _lookup(table: pd.DataFrame, model: str, placement: str, column: str,
            lr: float | None = None) -> float:
    match = table[(table["model"] == model) & (table["batch_norm"] == placement)]
    if lr is not None:
        match = match[match["learning_rate"] == lr]
    return float(match[column].iloc[0])


def _metrics(table: pd.DataFrame) -> dict:
    return {f"{r.model}_lr{r.learning_rate:g}_bn_{r.batch_norm}_{c}": getattr(r, c)
            for r in table.itertuples() for c in ("val_acc_epoch1", "test_acc")}


def _notes(table: pd.DataFrame, config: Config) -> list[str]:
    notes = []
    settings = [("mlp", lr) for lr in config.learning_rates] + [("cnn", config.learning_rates[0])]
    for family, lr in settings:
        def acc(p: str, family: str = family, lr: float = lr) -> float:
            return _lookup(table, family, p, "val_acc_epoch1", lr)

        best = max(PLACEMENTS[1:], key=acc)
        verdict = "learns faster per epoch" if acc(best) > acc("none") else \
            "does NOT learn faster per epoch"
        notes.append(
            f"{family.upper()} at learning rate {lr:g}: with BN {best} the activation the net "
            f"{verdict} (validation accuracy after epoch 1: {acc(best):.4f} vs "
            f"{acc('none'):.4f} without BN).")
    for family in ("mlp", "cnn"):
        lr = config.learning_rates[0]
        ratio = (_lookup(table, family, "before", "s_per_epoch", lr)
                 / _lookup(table, family, "none", "s_per_epoch", lr))
        notes.append(f"{family.upper()}: an epoch with BN before the activation takes "
                     f"{ratio:.2f}x the time of one without BN (BN's extra work per layer).")
    gaps = table[table["model"] != "mlp (small batch)"]
    worst = gaps.loc[gaps["train_val_gap"].idxmax()]
    notes.append(
        f"Train-validation gap: largest for {worst['model']} with BN {worst['batch_norm']} "
        f"({worst['train_val_gap']:+.4f}); BN's noise regularizes a little, but it is not a "
        "substitute for dropout or early stopping.")
    notes.append(
        "The He-initialized ReLU MLP has no vanishing-gradient problem to fix, so at a small "
        "rate BN mostly adds noise and cost; BN's gain shows where it lets a higher rate "
        "train stably (compare the rows per learning rate).")
    sb_none = _lookup(table, "mlp (small batch)", "none", "test_acc")
    sb_bn = _lookup(table, "mlp (small batch)", "before", "test_acc")
    notes.append(
        f"Batch size {config.small_batch_size}: test accuracy {sb_bn:.4f} with BN vs "
        f"{sb_none:.4f} without. With so few samples per batch the batch statistics are "
        "noisy and differ from the moving averages used at inference.")
    if config.quick:
        notes.append(quick_note())
    return notes


def _intro(config: Config) -> str:
    return (
        f"Deep MLP: {config.mlp_depth} hidden layers x {config.mlp_units} units, "
        f"{config.activation} (He init through the recipes' 'auto' table); small CNN: conv 32 "
        "and 64 (3x3, max pooling), Dense 128. Every variant: optimizer "
        f"{config.optimizer} (MLP at learning rates {', '.join(map(str, config.learning_rates))}; "
        f"CNN at {config.learning_rates[0]}), batch {config.batch_size}, seed "
        f"{config.seed} re-applied before each variant, {mnist_text(config.quick)}. 'before' = "
        "Dense/Conv without bias -> BN -> activation; 'after' = Dense/Conv -> activation -> BN.")


main = ex.make_main(Config, run, __doc__, "python -m ch11.batch_norm [--quick] [--mlp-depth N] ...")


if __name__ == "__main__":
    raise SystemExit(main())
