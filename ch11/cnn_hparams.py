"""CNN hyperparameters: kernel size x pooling x optimizer, each with early stopping.

Hands-On ML, chapter 11 coursework on MNIST ("Faster Optimizers", "Early Stopping"; the
CNN blocks of chapter 14). A small CNN is trained for every combination of kernel size
(3, 5, 7), pooling (max, average) and optimizer (SGD, RMSprop, Adam at the book's default
rates), each from the same seed with `keras.callbacks.EarlyStopping(restore_best_weights=
True)`, on a 10,000-image subset of the training set so the 18 runs fit in minutes. The
run reports a table, the loss curves, a validation-accuracy grid per optimizer and the
best configuration (chosen on validation accuracy; its test accuracy is reported).

Run: ``python -m ch11.cnn_hparams`` (``make recipe-cnn``), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11._text import quick_note
from recipes.builders import build_cnn, count_params
from recipes.optimizers import DEFAULT_LEARNING_RATES, OPTIMIZER_NAMES
from recipes.runs import save_figure
from recipes.specs import POOLING_CHOICES, CNNSpec

__all__ = ["Config", "main", "run"]

NAME = "cnn_hparams"


@dataclass(frozen=True)
class Config(ex.ExperimentConfig):
    """The experiment's settings; the defaults are the coursework's grid."""

    quick: bool = ex.option(
        False, "small slice, one epoch, kernels 3 and 5, the first two optimizers (tests)")
    kernel_sizes: tuple[int, ...] = ex.option((3, 5, 7), "square kernel sizes")
    poolings: tuple[str, ...] = ex.option(("max", "avg"), "pooling after each conv block",
                                          POOLING_CHOICES)
    optimizers: tuple[str, ...] = ex.option(
        ("sgd", "rmsprop", "adam"), "optimizers, each at the book's default rate",
        OPTIMIZER_NAMES)
    filters: tuple[int, ...] = ex.option((16, 32), "filters per block")
    dense_units: int = ex.option(64, "units of the hidden Dense layer")
    train_size: int = ex.option(10_000, "training images per run (a subset, for time)")
    max_epochs: int = ex.option(6, "epoch cap per run (6 keeps the 18 runs near 5 min on 2 cores)")
    patience: int = ex.option(2, "early-stopping patience (val_loss)")
    batch_size: int = ex.option(64, "mini-batch size")
    out_dir: str = ex.out_dir_option()

    def __post_init__(self) -> None:
        self._at_least(1, "dense_units", "train_size", "max_epochs", "patience", "batch_size")
        for name in ("kernel_sizes", "filters"):
            values = getattr(self, name)
            if not values or min(values) < 1:
                raise ValueError(f"{name} must be positive integers, got {values!r}.")
        for name, valid in (("poolings", POOLING_CHOICES), ("optimizers", OPTIMIZER_NAMES)):
            values = getattr(self, name)
            if not values or any(v not in valid for v in values):
                raise ValueError(f"{name} must be among {', '.join(valid)}; got {values!r}.")


def _spec(config: Config, kernel: int, pooling: str) -> CNNSpec:
    return CNNSpec(filters=config.filters, kernel_size=kernel, pooling=pooling,
                   dense_units=(config.dense_units,))


def run(config: Config) -> ex.Results:
    """Train every (kernel, pooling, optimizer) configuration and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per configuration).
    """
    if config.quick:
        config = dataclasses.replace(config, kernel_sizes=config.kernel_sizes[:2],
                                     optimizers=config.optimizers[:2], max_epochs=1,
                                     train_size=min(config.train_size, 1000))
    run_dir, started = ex.start(NAME, config)
    data = ex.train_subset(ex.mnist_splits(config.quick), config.train_size)
    grid = list(itertools.product(config.optimizers, config.kernel_sizes, config.poolings))
    rows, histories = [], {}
    for k, (opt, kernel, pooling) in enumerate(grid, 1):
        spec = _spec(config, kernel, pooling)
        stopper = keras.callbacks.EarlyStopping(patience=config.patience,
                                                restore_best_weights=True)
        model, history = ex.train_variant(
            lambda s=spec: build_cnn(s, (28, 28), 10),
            ex.classifier_compile(opt, loss="sparse_categorical_crossentropy"), data,
            seed=config.seed, epochs=config.max_epochs, batch_size=config.batch_size,
            callbacks=[stopper],
            label=f"variant {k}/{len(grid)}: kernel {kernel}, {pooling} pooling, {opt}")
        h = history.history
        val_loss, val_acc = model.evaluate(data["x_valid"], data["y_valid"], verbose=0)
        _, test_acc = model.evaluate(data["x_test"], data["y_test"], verbose=0)
        rows.append({
            "kernel_size": kernel, "pooling": pooling, "optimizer": opt,
            "learning_rate": DEFAULT_LEARNING_RATES[opt], "params": count_params(model)["total"],
            "epochs_run": len(h["loss"]), "best_epoch": stopper.best_epoch + 1,
            "stopped_early": stopper.stopped_epoch > 0, "val_loss": val_loss,
            "val_acc": val_acc, "test_acc": test_acc,
            "s_per_epoch": sum(h["epoch_time"]) / len(h["epoch_time"])})
        histories[f"k{kernel}_{pooling}_{opt}"] = history
    table = pd.DataFrame(rows)
    figures = _figures(run_dir, table, histories, config)
    best = table.loc[table["val_acc"].idxmax()]
    metrics = {"best_config": f"kernel {best['kernel_size']}, {best['pooling']} pooling, "
                              f"{best['optimizer']}",
               "best_val_acc": best["val_acc"], "best_test_acc": best["test_acc"],
               **{f"mean_val_acc_{o}": v
                  for o, v in table.groupby("optimizer", sort=False)["val_acc"].mean().items()}}
    return ex.finish(NAME, config, run_dir, started, table,
                     title="CNN hyperparameters: kernel x pooling x optimizer",
                     intro=_intro(config, data, len(grid)),
                     histories=histories, figures=figures, notes=_notes(table, config),
                     metrics=metrics)


def _figures(run_dir, table: pd.DataFrame, histories, config: Config) -> list[tuple[str, str]]:
    save_figure(_loss_curves(histories, config), run_dir / "loss_curves.png")
    save_figure(_accuracy_grid(table, config), run_dir / "val_accuracy_grid.png")
    return [("Loss per epoch for each configuration (solid: validation, dashed: training; "
             "star: the epoch whose weights were kept)", "loss_curves.png"),
            ("Validation accuracy per (kernel, pooling), one panel per optimizer (colour scale "
             "per panel)", "val_accuracy_grid.png")]


def _loss_curves(histories, config: Config):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    n = len(config.optimizers)
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 3.8), squeeze=False, sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, opt in zip(axes[0], config.optimizers):
        for i, (kernel, pooling) in enumerate(itertools.product(config.kernel_sizes,
                                                                config.poolings)):
            h = histories[f"k{kernel}_{pooling}_{opt}"].history
            epochs = np.arange(1, len(h["loss"]) + 1)
            color = colors[i % len(colors)]
            ax.plot(epochs, h["val_loss"], "-", color=color, marker=".",
                    label=f"k{kernel} {pooling}")
            ax.plot(epochs, h["loss"], "--", color=color, alpha=0.5)
            best = int(np.argmin(h["val_loss"]))
            ax.plot(best + 1, h["val_loss"][best], "*", color=color, markersize=11)
        ax.set_title(f"{opt} (lr {DEFAULT_LEARNING_RATES[opt]:g})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("loss (log scale)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _accuracy_grid(table: pd.DataFrame, config: Config):
    import matplotlib.pyplot as plt

    n = len(config.optimizers)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.4), squeeze=False)
    for ax, opt in zip(axes[0], config.optimizers):
        part = table[table["optimizer"] == opt].pivot(index="kernel_size", columns="pooling",
                                                      values="val_acc")
        part = part.loc[list(config.kernel_sizes), list(config.poolings)]
        image = ax.imshow(part.to_numpy(), cmap="viridis", aspect="auto")
        for (r, c), v in np.ndenumerate(part.to_numpy()):
            ax.text(c, r, f"{v:.4f}", ha="center", va="center", fontsize=9,
                    color="white" if v < np.nanmean(part.to_numpy()) else "black")
        ax.set_xticks(range(len(part.columns)), part.columns)
        ax.set_yticks(range(len(part.index)), [f"{k}x{k}" for k in part.index])
        ax.set_xlabel("pooling")
        ax.set_ylabel("kernel")
        ax.set_title(f"{opt}: validation accuracy")
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def _notes(table: pd.DataFrame, config: Config) -> list[str]:
    best = table.loc[table["val_acc"].idxmax()]
    notes = [f"Best configuration on validation: kernel {best['kernel_size']}, {best['pooling']} "
             f"pooling, {best['optimizer']} (validation {best['val_acc']:.4f}, test "
             f"{best['test_acc']:.4f}, best epoch {best['best_epoch']} of {best['epochs_run']})."]
    means = table.groupby("optimizer", sort=False)["val_acc"].mean().sort_values(ascending=False)
    notes.append("Mean validation accuracy per optimizer: " + ", ".join(
        f"{o} {v:.4f}" for o, v in means.items()) + ".")
    by_kernel = table.groupby("kernel_size")[["val_acc", "params", "s_per_epoch"]].mean()
    notes.append("Per kernel size (mean over poolings and optimizers): " + "; ".join(
        f"{k}x{k}: validation {r.val_acc:.4f}, {int(r.params):,} parameters, "
        f"{r.s_per_epoch:.1f} s/epoch" for k, r in by_kernel.iterrows()) + ".")
    if {"max", "avg"} <= set(config.poolings):
        wide = table.pivot_table(index=["kernel_size", "optimizer"], columns="pooling",
                                 values="val_acc")
        gap = wide["max"] - wide["avg"]
        per_opt = gap.groupby(level="optimizer", sort=False).mean()
        notes.append(f"Max pooling beats average pooling in {int((gap > 0).sum())} of {len(gap)} "
                     f"(kernel, optimizer) pairs; mean validation gap (max - avg) per optimizer: "
                     + ", ".join(f"{o} {v:+.4f}" for o, v in per_opt.items()) + ".")
    stopped = int(table["stopped_early"].sum())
    capped = table[~table["stopped_early"] & (table["best_epoch"] == table["epochs_run"])]
    notes.append(f"Early stopping (patience {config.patience} on val_loss) ended {stopped} of "
                 f"{len(table)} runs before the {config.max_epochs}-epoch cap; {len(capped)} runs "
                 "were still improving at the cap"
                 + (f" ({', '.join(sorted(capped['optimizer'].unique()))}), so their ranking "
                    "reflects the budget, not their ceiling." if len(capped) else "."))
    notes.append(f"One seed and {config.train_size:,} training images per run: gaps of a "
                 "few tenths of a point between configurations are not conclusive.")
    if config.quick:
        notes.append(quick_note())
    return notes


def _intro(config: Config, data, n_runs: int) -> str:
    n_train, n_valid, n_test = (len(data[k]) for k in ("x_train", "x_valid", "x_test"))
    return (
        f"{n_runs} runs. Small CNN: conv {' -> conv '.join(map(str, config.filters))} "
        f"(kernel k x k, 'same' padding, ReLU, He init), each followed by 2x2 max or average "
        f"pooling, then Dense {config.dense_units} and softmax. Each run trains on a subset of "
        f"{n_train:,} MNIST training images (the first ones; not the full 55,000, so the "
        f"runs fit in about 5 minutes on 2 cores), batch {config.batch_size}, at most "
        f"{config.max_epochs} epochs with EarlyStopping(monitor='val_loss', patience="
        f"{config.patience}, restore_best_weights=True) on the {n_valid:,}-image validation set; "
        "optimizers at the book's default rates (SGD 0.01, RMSprop and Adam 0.001). Seed "
        f"{config.seed} re-applied before each run; the test set ({n_test:,} images) is only "
        "evaluated, never used for selection.")


main = ex.make_main(Config, run, __doc__,
                    "python -m ch11.cnn_hparams [--quick] [--kernel-sizes 3 5] ...")


if __name__ == "__main__":
    raise SystemExit(main())
