"""The CNN-hyperparameter experiment's report: figures, metrics, notes and intro."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ch11._evidence import BookFigure, Evidence, compare, is_effect, seeds_note
from ch11._text import quick_note
from ch11.cnn_hparams.config import Config
from recipes.names import DEFAULT_LEARNING_RATES
from recipes.runs import save_figure

__all__ = ["BOOK", "HEADLINE_COLUMNS", "agreement", "best_per_optimizer", "evidence", "figures",
           "headline", "intro", "metrics", "notes", "variant_name"]

HEADLINE_COLUMNS = ("val_acc",)
BOOK = BookFigure(
    claim="adaptive optimizers (RMSProp, Adam) converge faster than plain SGD at their usual "
          "rates",
    figure=None,
    setting="chapter 11 runs no CNN grid (this grid is the course's); its optimizer "
            "comparison is on an MLP, see the optimizers recipe")


def best_per_optimizer(table: pd.DataFrame) -> pd.DataFrame:
    """Each optimizer's configuration with the best validation accuracy in the grid."""
    return table.loc[table.groupby("optimizer", sort=False)["val_acc"].idxmax()]


def variant_name(row: pd.Series) -> str:
    """``"rmsprop: kernel 7, avg pooling"``."""
    return f"{row['optimizer']}: kernel {int(row['kernel_size'])}, {row['pooling']} pooling"


def headline(summary: pd.DataFrame, seeds: Sequence[int], why: str, config: Config) -> str:
    """Each optimizer's best configuration, rerun over seeds: ranked, best vs the others.

    Args:
        summary: `ch11._evidence.seed_summary` per optimizer's best configuration.
        seeds: the seeds.
        why: why fewer than 3 seeds.
        config: the CNN-hyperparameter experiment's settings.

    Returns:
        The sentence.
    """
    ranked = list(summary.sort_values("val_acc_mean", ascending=False)["variant"])
    text = (f"Each optimizer's best grid configuration (chosen with seed {config.seed}, on "
            f"{config.train_size:,} images, at most {config.max_epochs} epochs), "
            f"{seeds_note(seeds, why)}, validation accuracy, best first: " + "; ".join(ranked))
    if len(ranked) > 1:
        text += "; best vs runner-up: " + compare(summary, ranked[0], "val_acc", ranked[1])
        if len(ranked) > 2:
            text += "; best vs worst: " + compare(summary, ranked[0], "val_acc", ranked[-1])
    return text + "."


def agreement(summary: pd.DataFrame) -> str:
    """One line: is the best adaptive optimizer ahead of plain SGD beyond noise?"""
    s = summary.assign(opt=summary["variant"].str.split(":").str[0]).set_index("opt")
    adaptive = [o for o in ("rmsprop", "adam", "nadam", "adamax", "adamw") if o in s.index]
    if "sgd" not in s.index or not adaptive:
        return "not tested: plain SGD and an adaptive optimizer were not both run."
    best = max(adaptive, key=lambda o: s.loc[o, "val_acc_mean"])
    gap = s.loc[best, "val_acc_mean"] - s.loc["sgd", "val_acc_mean"]
    verdict = is_effect(summary, s.loc[best, "variant"], "val_acc", s.loc["sgd", "variant"])
    word = ("an effect" if verdict else "one seed" if verdict is None else "within noise")
    return (f"{'agrees' if gap > 0 and verdict is not False else 'does not agree'}: {best} "
            f"{gap:+.4f} over plain SGD ({word}), each at its best configuration.")


def evidence(summary: pd.DataFrame, per_seed: pd.DataFrame, seeds: Sequence[int], why: str,
             config: Config) -> Evidence:
    """The headline with its spread over seeds and the book's (absent) figure."""
    return Evidence(headline(summary, seeds, why, config), tuple(seeds), summary,
                    HEADLINE_COLUMNS, BOOK, agreement(summary), why, per_seed)


def figures(run_dir, table: pd.DataFrame, histories, config: Config) -> list[tuple[str, str]]:
    """Draw the loss curves and the validation-accuracy grid.

    Args:
        run_dir: the run folder.
        table: the results table, one row per configuration.
        histories: per configuration (``k<kernel>_<pooling>_<optimizer>``), its history.
        config: the settings.

    Returns:
        The report's (caption, file) pairs.
    """
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


def metrics(table: pd.DataFrame) -> dict:
    """The headline numbers of results.json: the best configuration and each optimizer's mean.

    Args:
        table: the results table, one row per configuration.

    Returns:
        A JSON-ready dict.
    """
    best = table.loc[table["val_acc"].idxmax()]
    return {"best_config": f"kernel {best['kernel_size']}, {best['pooling']} pooling, "
                           f"{best['optimizer']}",
            "best_val_acc": best["val_acc"], "best_test_acc": best["test_acc"],
            **{f"mean_val_acc_{o}": v
               for o, v in table.groupby("optimizer", sort=False)["val_acc"].mean().items()}}


def notes(table: pd.DataFrame, config: Config) -> list[str]:
    """What the run shows, in sentences: the best configuration first.

    Args:
        table: the results table, one row per configuration.
        config: the settings.

    Returns:
        The notes.
    """
    best = table.loc[table["val_acc"].idxmax()]
    notes = [f"Seed {config.seed}: best configuration on validation: kernel "
             f"{best['kernel_size']}, {best['pooling']} pooling, {best['optimizer']} (validation "
             f"{best['val_acc']:.4f}, test "
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
    notes.append(f"The grid is one seed ({config.seed}) on {config.train_size:,} training "
                 "images per run: gaps of a few tenths of a point between configurations are "
                 "not conclusive; the headline reruns each optimizer's best configuration over "
                 "seeds (picked at this seed, so its score here is the luckiest).")
    if config.quick:
        notes.append(quick_note())
    return notes


def intro(config: Config, data, n_runs: int) -> str:
    """The report's first paragraph: the CNN, the subset, early stopping and the optimizers.

    Args:
        config: the settings.
        data: the training, validation and test data.
        n_runs: the number of configurations.

    Returns:
        The paragraph.
    """
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
