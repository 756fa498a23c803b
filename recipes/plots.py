"""Plots: every figure a student needs, each function returning a matplotlib ``Figure``.

Nothing is shown or saved here. The training plots live here (`learning_curves`,
`layer_profile`, `schedule_curves`, `lr_finder_plot`, `spread_bars`, `capacity_curves`);
the diagnostic plots (`gradient_flow`, `activation_histograms`, `weight_histograms`,
`saliency_grid`, `image_rows`, `confusion_heatmap`, `roc_plot`) live in
`recipes.diagnosis.plots` and are re-exported, so ``from recipes.plots import ...``
reaches all thirteen. The README's "Plots for your own code" has an example of each but
`spread_bars` and `capacity_curves` (the fish studies draw those).

Experiments save the figures with `recipes.runs.save_figure`. The Agg backend is used
when no backend was chosen, so nothing ever opens a window.

Example:

```python
fig = learning_curves({"no BN": history_a, "BN": history_b})
save_figure(fig, run_dir / "learning_curves.png")
```
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from recipes.diagnosis.plots import (  # noqa: E402
    activation_histograms,
    confusion_heatmap,
    gradient_flow,
    image_rows,
    roc_plot,
    saliency_grid,
    weight_histograms,
)
from recipes.runs import read_history  # noqa: E402

__all__ = [
    "activation_histograms",
    "capacity_curves",
    "confusion_heatmap",
    "gradient_flow",
    "image_rows",
    "layer_profile",
    "learning_curves",
    "lr_finder_plot",
    "roc_plot",
    "saliency_grid",
    "schedule_curves",
    "spread_bars",
    "weight_histograms",
]


def learning_curves(
    histories: Mapping[str, Any],
    metrics: Sequence[str] = ("loss", "accuracy"),
    *,
    x: str = "epoch",
    title: str | None = None,
) -> Figure:
    """Training (dashed) and validation (solid) curves of several variants.

    Epochs are numbered from 1, as Keras prints them. A ``History`` keeps its own epoch
    numbers: a ``fit(..., initial_epoch=4)`` (phase 2 of `recipes.transfer.fine_tune`) is
    drawn from epoch 5 on, after phase 1, not on top of it.

    Example:

    ```python
    phases = fine_tune(model, (x, y), (xv, yv), base_layers=2)
    fig = learning_curves({"frozen": phases["phase1"], "fine-tuned": phases["phase2"]})
    ```

    Args:
        histories: variant name -> anything `recipes.runs.read_history` reads (a Keras
            ``History``, a dict of per-epoch lists, a history CSV as a DataFrame).
        metrics: one panel per metric; ``val_<metric>`` is drawn too when present.
        x: ``"epoch"`` or ``"time"`` (cumulative seconds from ``epoch_time``).
        title: the figure's title.

    Returns:
        The figure.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, history) in enumerate(histories.items()):
        data = read_history(history)
        color = colors[i % len(colors)]
        for ax, metric in zip(axes[0], metrics):
            for key, style in ((metric, "--"), (f"val_{metric}", "-")):
                if key not in data:
                    continue
                values = np.asarray(data[key], dtype=float)
                if x == "time" and "epoch_time" in data:
                    xs = np.cumsum(data["epoch_time"])
                elif len(data.get("epoch", ())) == len(values):
                    xs = np.asarray(data["epoch"])
                else:
                    xs = np.arange(1, len(values) + 1)
                label = f"{name} ({'val' if key.startswith('val_') else 'train'})"
                ax.plot(xs, values, style, color=color, marker=".", label=label)
    for ax, metric in zip(axes[0], metrics):
        ax.set_xlabel("seconds" if x == "time" else "epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def layer_profile(
    frame: pd.DataFrame,
    value: str,
    *,
    by: str = "variant",
    layer: str = "depth",
    log: bool = True,
    title: str | None = None,
    ylabel: str | None = None,
) -> Figure:
    """A per-layer quantity (gradient norm, activation std ...) against depth, per variant.

    Args:
        frame: long table with columns `by`, `layer` and `value`.
        value: the column to plot.
        by: the column naming the line (variant). Defaults to `"variant"`.
        layer: the x column. Defaults to `"depth"`.
        log: log-scale y axis (vanishing and exploding gradients span decades).
        title: the figure's title.
        ylabel: the y label. Defaults to `value`.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, part in frame.groupby(by, sort=False):
        values = np.abs(part[value].to_numpy(dtype=float)) if log else part[value]
        ax.plot(part[layer], values, marker=".", label=str(name))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(layer)
    ax.set_ylabel(ylabel or value)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def schedule_curves(
    schedules: Mapping[str, Callable[[int], Any]], steps: int, *, title: str | None = None
) -> Figure:
    """Learning rate against step for several schedules.

    Args:
        schedules: name -> a ``LearningRateSchedule`` (or any step -> rate callable).
        steps: how many steps to draw.
        title: the figure's title.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = np.arange(steps)
    for name, schedule in schedules.items():
        ax.plot(xs, [float(schedule(int(t))) for t in xs], label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def lr_finder_plot(table: pd.DataFrame, suggestion: float | None = None) -> Figure:
    """The LR range test: smoothed loss against learning rate (log scale).

    Args:
        table: columns ``learning_rate``, ``loss`` and ``smoothed_loss``.
        suggestion: a rate to mark with a vertical line.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(table["learning_rate"], table["loss"], alpha=0.3, label="per-batch loss")
    ax.plot(table["learning_rate"], table["smoothed_loss"], label="smoothed loss")
    if suggestion is not None:
        ax.axvline(suggestion, color="red", linestyle=":", label=f"suggested {suggestion:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    finite = table["smoothed_loss"][np.isfinite(table["smoothed_loss"])]
    if len(finite):
        ax.set_ylim(finite.min() * 0.9, min(finite.max(), finite.iloc[0] * 4) * 1.05)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def spread_bars(table: pd.DataFrame, by: str, columns: Sequence[str], *,
                title: str | None = None, ylabel: str | None = None) -> Figure:
    """Mean and spread over seeds per variant: one group of bars per column.

    Each bar is the mean of the column's values for one variant (e.g. one remedy over its
    seeds); its error bar spans the minimum to the maximum, and every seed's value is drawn
    as a dot, so a difference smaller than the spread is seen to be within noise.

    Args:
        table: one row per seed and variant.
        by: the column naming the variant.
        columns: the numeric columns to show (one group of bars each).
        title: the figure's title.
        ylabel: the y label. Defaults to `None`.

    Returns:
        The figure.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 2 (the spread of a measurement, e.g.
    cross-validation scores' mean and standard deviation).
    """
    variants = list(dict.fromkeys(table[by]))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(columns) * len(variants) / 2), 4))
    width = 0.8 / max(1, len(variants))
    for j, variant in enumerate(variants):
        rows = table[table[by] == variant]
        for i, column in enumerate(columns):
            values = rows[column].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            if not len(values):
                continue
            x = i + (j - (len(variants) - 1) / 2) * width
            mean = float(values.mean())
            ax.bar(x, mean, width * 0.9, color=f"C{j}", alpha=0.6,
                   label=str(variant) if i == 0 else None)
            ax.errorbar(x, mean, yerr=[[mean - values.min()], [values.max() - mean]],
                        color="black", capsize=3, lw=1)
            ax.plot(np.full(len(values), x), values, ".", color="black", ms=4)
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(columns)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, title=by)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def capacity_curves(table: pd.DataFrame, *, x: str = "params", by: str = "regime",
                    train: str = "train_acc", val: str = "val_acc",
                    title: str | None = None) -> Figure:
    """Training and validation accuracy against capacity, and their gap, per regime.

    Left: training (dashed) and validation (solid) accuracy against `x` on a log scale,
    one colour per value of `by` (e.g. plain vs regularized); the mean over the rows that
    share `x` and `by` (seeds), each row a dot. Right: the gap, training minus validation.

    Args:
        table: one row per model (and seed).
        x: the capacity column (parameters, width ...). Defaults to `"params"`.
        by: the column naming the regime. Defaults to `"regime"`.
        train: the training accuracy column. Defaults to `"train_acc"`.
        val: the validation accuracy column. Defaults to `"val_acc"`.
        title: the figure's title.

    Returns:
        The figure.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 4 ("Learning Curves": the gap between
    training and validation is the overfitting) and ch. 11 (regularization).
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for j, (regime, rows) in enumerate(table.groupby(by, sort=False)):
        means = rows.groupby(x)[[train, val]].mean().sort_index()
        gap = (rows[train] - rows[val]).groupby(rows[x]).mean().sort_index()
        colour = f"C{j}"
        left.plot(means.index, means[train], "--", color=colour, marker="o",
                  label=f"{regime}: training")
        left.plot(means.index, means[val], "-", color=colour, marker="o",
                  label=f"{regime}: validation")
        left.plot(rows[x], rows[val], ".", color=colour, alpha=0.5)
        right.plot(gap.index, gap.to_numpy(), "-", color=colour, marker="o", label=str(regime))
        right.plot(rows[x], rows[train] - rows[val], ".", color=colour, alpha=0.5)
    for ax, label in ((left, "accuracy"), (right, "training - validation accuracy")):
        ax.set_xscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

