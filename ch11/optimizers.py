"""Faster optimizers: SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam, AdaMax, Nadam, AdamW.

Hands-On ML, chapter 11, "Faster Optimizers". The same MLP (the notebook's three hidden
layers of 100 ReLU units, He initialization) is trained from the same seed with each
optimizer for the same number of epochs on MNIST. The run reports the learning curves,
the validation and test accuracy after N epochs, the final loss, and the time per epoch.

Run: ``python -m ch11.optimizers`` (``make recipe-optimizers``), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11._text import mnist_text, quick_note
from recipes.builders import build_mlp, count_params
from recipes.optimizers import DEFAULT_LEARNING_RATES, OPTIMIZER_NAMES
from recipes.plots import learning_curves
from recipes.runs import save_figure
from recipes.specs import MLPSpec

__all__ = ["Config", "main", "run"]

NAME = "optimizers"
BOOK_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamax",
                   "nadam", "adamw")


@dataclass(frozen=True)
class Config(ex.ExperimentConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seed: int = ex.option(42, "seed, re-applied before each optimizer")
    optimizers: tuple[str, ...] = ex.option(BOOK_OPTIMIZERS, "optimizers to compare, in order",
                                            OPTIMIZER_NAMES)
    hidden_units: tuple[int, ...] = ex.option((100, 100, 100),
                                              "hidden layers (the notebook's 3 x 100)")
    activation: str = ex.option("relu", "hidden activation")
    epochs: int = ex.option(5, "epochs per optimizer (the notebook uses 10; 5 keeps the run near "
                            "5 minutes on 2 CPU cores)")
    learning_rate: float | None = ex.option(
        None, "one rate for every optimizer; none: recipes' defaults (1e-2 for plain SGD, "
              "1e-3 for the others)")
    batch_size: int = ex.option(32, "mini-batch size")
    out_dir: str = ex.out_dir_option()

    def __post_init__(self) -> None:
        self._at_least(1, "epochs", "batch_size")
        if not self.optimizers:
            raise ValueError("optimizers must name at least one optimizer.")
        unknown = [o for o in self.optimizers if o not in OPTIMIZER_NAMES]
        if unknown:
            raise ValueError(f"Unknown optimizer {unknown[0]!r}. "
                             f"Valid: {', '.join(OPTIMIZER_NAMES)}.")
        if len(set(self.optimizers)) != len(self.optimizers):
            raise ValueError(f"optimizers must not repeat a name, got {self.optimizers}.")
        self._positive_sizes("hidden_units")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}.")


def _learning_rate(config: Config, name: str) -> float:
    """The rate an optimizer gets: ``config.learning_rate`` or recipes' default for it.

    Args:
        config: the settings.
        name: an optimizer name.

    Returns:
        The learning rate.
    """
    return config.learning_rate if config.learning_rate is not None \
        else DEFAULT_LEARNING_RATES[name]


def run(config: Config) -> ex.Results:
    """Train the same model with every optimizer and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per optimizer).
    """
    if config.quick:
        config = dataclasses.replace(config, epochs=1, hidden_units=config.hidden_units[:1])
    run_dir, started = ex.start(NAME, config)
    load_start = os.getloadavg()[0]
    data = ex.mnist_splits(config.quick)
    spec = MLPSpec(hidden_units=config.hidden_units, activation=config.activation)
    rows, histories = [], {}
    n = len(data["x_valid"])
    for k, name in enumerate(config.optimizers, 1):
        lr = _learning_rate(config, name)
        compile_kwargs = ex.classifier_compile(name, lr, loss="sparse_categorical_crossentropy")
        optimizer = compile_kwargs["optimizer"]
        model, history = ex.train_variant(
            lambda: build_mlp(spec, (28, 28), 10), compile_kwargs, data, seed=config.seed,
            epochs=config.epochs, batch_size=config.batch_size,
            label=f"variant {k}/{len(config.optimizers)}: {name} "
                  f"({type(optimizer).__name__}), learning rate {lr:g}")
        h = history.history
        test_loss, test_acc = model.evaluate(data["x_test"], data["y_test"], verbose=0)
        # Keras's training accuracy is a running mean while the weights move: measure it
        # on the final weights, on as many training images as validation.
        _, train_acc = model.evaluate(data["x_train"][:n], data["y_train"][:n], verbose=0)
        rows.append({
            "optimizer": name, "keras_class": type(optimizer).__name__, "learning_rate": lr,
            "epochs": len(h["loss"]), "train_loss": h["loss"][-1],
            "val_acc_epoch1": h["val_accuracy"][0], "val_loss": h["val_loss"][-1],
            "val_acc": h["val_accuracy"][-1], "test_acc": test_acc, "test_loss": test_loss,
            "train_acc": train_acc, "s_per_epoch": float(np.mean(h["epoch_time"])),
            "train_s": float(np.sum(h["epoch_time"])),
            "params": count_params(model)["trainable"],
        })
        histories[name] = history
    table = pd.DataFrame(rows)
    figures = _figures(run_dir, histories, table)
    return ex.finish(NAME, config, run_dir, started, table, title="Faster optimizers on MNIST",
                     intro=_intro(config, spec), histories=histories, figures=figures,
                     notes=_notes(table, config, (load_start, os.getloadavg()[0]), n),
                     metrics=_metrics(table))


def _figures(run_dir, histories: Mapping[str, keras.callbacks.History],
             table: pd.DataFrame) -> list[tuple[str, str]]:
    val = {k: {m: h.history[m] for m in ("val_loss", "val_accuracy")}
           for k, h in histories.items()}
    train = {k: {"loss": h.history["loss"]} for k, h in histories.items()}
    timed = {k: {"val_loss": h.history["val_loss"], "epoch_time": h.history["epoch_time"]}
             for k, h in histories.items()}
    save_figure(learning_curves(val, title="Validation loss and accuracy per epoch"),
                run_dir / "val_curves.png")
    save_figure(learning_curves(train, metrics=("loss",), title="Training loss per epoch"),
                run_dir / "train_loss.png")
    save_figure(learning_curves(timed, metrics=("loss",), x="time",
                                title="Validation loss against training time"),
                run_dir / "val_loss_vs_time.png")
    save_figure(_summary_bars(table), run_dir / "summary.png")
    return [("Validation loss and accuracy of each optimizer", "val_curves.png"),
            ("Training loss (running mean over each epoch)", "train_loss.png"),
            ("Validation loss against cumulative training seconds", "val_loss_vs_time.png"),
            ("Validation accuracy after the last epoch and seconds per epoch", "summary.png")]


def _summary_bars(table: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    names = table["optimizer"].tolist()
    xs = np.arange(len(names))
    ax1.bar(xs, table["val_acc"], color="tab:blue")
    low = max(0.0, float(table["val_acc"].min()) - 0.02)
    ax1.set_ylim(low, min(1.0, float(table["val_acc"].max()) + 0.01))
    ax1.set_ylabel(f"validation accuracy after {int(table['epochs'].max())} epochs")
    ax2.bar(xs, table["s_per_epoch"], color="tab:orange")
    ax2.set_ylabel("seconds per epoch")
    for ax in (ax1, ax2):
        ax.set_xticks(xs, names, rotation=45, ha="right")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def _metrics(table: pd.DataFrame) -> dict:
    return {f"{r.optimizer}_{c}": getattr(r, c) for r in table.itertuples()
            for c in ("val_acc", "test_acc", "s_per_epoch")}


def _notes(table: pd.DataFrame, config: Config, load: tuple[float, float],
           n_val: int) -> list[str]:
    t = table.set_index("optimizer")
    epochs = int(t["epochs"].max())
    ranked = t.sort_values("val_acc", ascending=False)
    notes = [f"Ranking by validation accuracy after {epochs} epoch(s): " + ", ".join(
        f"{name} {row.val_acc:.4f}" for name, row in ranked.iterrows()) + "."]
    if "sgd" in t.index:
        sgd = t.loc["sgd"]
        p = float(sgd.val_acc)
        se = float(np.sqrt(2 * p * (1 - p) / n_val))  # std error of a difference
        for name in ("adam", "nadam"):
            if name not in t.index:
                continue
            r = t.loc[name]
            diff = r.val_acc - sgd.val_acc
            if abs(diff) <= 2 * se:
                verdict = "is within noise of"
            else:
                verdict = "beats" if diff > 0 else "does NOT beat"
            notes.append(
                f"{name} {verdict} plain SGD after the same {epochs} epoch(s): validation "
                f"{r.val_acc:.4f} vs {sgd.val_acc:.4f} (difference {diff:+.4f}; noise level, "
                f"twice the standard error of a difference on {n_val:,} images: {2 * se:.4f}), "
                "test "
                f"{r.test_acc:.4f} vs {sgd.test_acc:.4f}; final training loss "
                f"{r.train_loss:.4f} vs {sgd.train_loss:.4f} ({sgd.train_loss / r.train_loss:.1f}x "
                f"lower for {name}: how far each optimizer got on the training objective), "
                f"learning rates {r.learning_rate:g} vs {sgd.learning_rate:g}; validation "
                f"accuracy after the first epoch {r.val_acc_epoch1:.4f} vs "
                f"{sgd.val_acc_epoch1:.4f}.")
        twins = [o for o in ("momentum", "nesterov") if o in t.index]
        if twins and config.learning_rate is None:
            spread = max(abs(t.loc[o, "val_acc"] - sgd.val_acc) for o in twins)
            notes.append(
                f"Plain SGD at {sgd.learning_rate:g} and {'/'.join(twins)} at "
                f"{t.loc[twins[0], 'learning_rate']:g} with momentum 0.9 reach the same "
                f"terminal step (lr / (1 - 0.9) = {t.loc[twins[0], 'learning_rate'] / 0.1:g}): "
                f"their validation accuracies differ by at most {spread:.4f}.")
    if "adagrad" in t.index and len(t) > 2:
        rank = list(ranked.index).index("adagrad") + 1
        shows = "consistent with" if rank > len(t) / 2 else "NOT showing"
        notes.append(
            f"AdaGrad ranks {rank} of {len(t)} (validation accuracy "
            f"{t.loc['adagrad', 'val_acc']:.4f}), {shows} the book's warning that its "
            "accumulated squared gradients shrink the effective rate too early.")
    if {"adam", "adamw"} <= set(t.index):
        diff = abs(t.loc["adam", "val_acc"] - t.loc["adamw", "val_acc"])
        notes.append(
            f"AdamW vs Adam: validation accuracy differs by {diff:.4f}; with weight decay "
            "1e-5 the decoupled decay changes each weight by only lr x 1e-5 per step, so "
            "over a few epochs the two are expected to be close.")
    fastest, slowest = t["s_per_epoch"].idxmin(), t["s_per_epoch"].idxmax()
    notes.append(
        f"Time per epoch ranges from {t.loc[fastest, 's_per_epoch']:.1f} s ({fastest}) to "
        f"{t.loc[slowest, 's_per_epoch']:.1f} s ({slowest}), a "
        f"{t.loc[slowest, 's_per_epoch'] / t.loc[fastest, 's_per_epoch']:.2f}x spread "
        f"(1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end of the "
        "run: on a shared machine part of the spread is other work, not the optimizer).")
    gap = ranked.iloc[0]["val_acc"] - ranked.iloc[-1]["val_acc"]
    second = ranked.iloc[0]["val_acc"] - ranked.iloc[1]["val_acc"] if len(t) > 1 else 0.0
    notes.append(
        f"Best minus worst validation accuracy: {gap:.4f}; best minus runner-up: "
        f"{second:.4f}. One seed and one untuned learning rate per optimizer"
        + (": a lead this small (under 0.5 point) can change with the seed or a tuned rate."
           if second < 0.005 else "."))
    if config.quick:
        notes.append(quick_note())
    return notes


def _intro(config: Config, spec: MLPSpec) -> str:
    rates = ", ".join(f"{o} {_learning_rate(config, o):g}" for o in config.optimizers)
    return (
        f"MLP {' x '.join(map(str, spec.hidden_units))} {spec.activation} (He initialization "
        "through the recipes' 'auto' table), softmax output; each optimizer from "
        "recipes.optimizers.make_optimizer with the book's hyperparameters (momentum 0.9, "
        "rho 0.9, beta_1 0.9, beta_2 0.999, AdamW weight decay 1e-5); learning rates: "
        f"{rates}. Batch {config.batch_size}, {config.epochs} epoch(s), seed {config.seed} "
        f"re-applied before each optimizer, {mnist_text(config.quick)}. Training accuracy is "
        "measured on the final weights, on 5,000 training images.")


main = ex.make_main(Config, run, __doc__,
                    "python -m ch11.optimizers [--quick] [--epochs N] [--optimizers sgd adam ...]")


if __name__ == "__main__":
    raise SystemExit(main())
