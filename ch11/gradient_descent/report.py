"""The gradient-descent experiment's report: its figure, notes, headline metrics, intro."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ch11._evidence import BookFigure, Evidence, compare, is_effect, seeds_note
from ch11._text import mnist_text, quick_note
from ch11.gradient_descent.config import Config
from recipes.runs import save_figure

__all__ = ["BOOK", "HEADLINE_COLUMNS", "agreement", "evidence", "figures", "headline", "intro",
           "metrics", "notes"]

HEADLINE_COLUMNS = ("val_loss_at_common_time", "val_loss", "images_per_s")
BOOK = BookFigure(
    claim="mini-batch gradient descent gets further in the same time than batch GD (one "
          "step per pass) and stochastic GD (one image per step)",
    figure=None,
    setting="chapter 4 compares the three on a linear model's parameter paths; chapter 11's "
            "notebook times none of them")


def _is_mini(variant: str) -> bool:
    return variant.startswith("mini-batch")  # ch11.gradient_descent's variant names


def headline(summary: pd.DataFrame, seeds: Sequence[int], why: str, config: Config) -> str:
    """The race against the clock over seeds: the lowest validation loss at the common time.

    Args:
        summary: `ch11._evidence.seed_summary` per batch-size variant.
        seeds: the seeds.
        why: why fewer than 3 seeds.
        config: the gradient-descent experiment's settings.

    Returns:
        The sentence.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 4, "Mini-batch Gradient Descent".
    """
    ranked = list(summary.sort_values("val_loss_at_common_time_mean")["variant"])
    text = (f"After the same training time (each seed's shortest variant's total), "
            f"{seeds_note(seeds, why)}, the lowest validation loss first: " + ", ".join(ranked))
    if len(ranked) > 1:
        text += ("; best vs runner-up: "
                 + compare(summary, ranked[0], "val_loss_at_common_time", ranked[1]))
    fast = summary.loc[summary["images_per_s_mean"].idxmax(), "variant"]
    slow = summary.loc[summary["images_per_s_mean"].idxmin(), "variant"]
    s = summary.set_index("variant")
    return (text + f"; throughput {fast} {s.loc[fast, 'images_per_s_mean']:,.0f} vs {slow} "
            f"{s.loc[slow, 'images_per_s_mean']:,.0f} images/s.")


def agreement(summary: pd.DataFrame) -> str:
    """One line: does a mini-batch win the race beyond noise?"""
    ranked = list(summary.sort_values("val_loss_at_common_time_mean")["variant"])
    best = ranked[0]
    others = [v for v in ranked if not _is_mini(v)]
    if not others or not _is_mini(best):
        return (f"does not agree: {best} has the lowest validation loss at the common time."
                if not _is_mini(best) else "not tested: no batch GD or stochastic GD run.")
    verdict = is_effect(summary, best, "val_loss_at_common_time", others[0])
    word = ("agrees" if verdict else "agrees on one seed only" if verdict is None else
            "does not agree beyond noise")
    return (f"{word}: {best} has the lowest validation loss at the common time, ahead of "
            f"{others[0]}, the best non-mini-batch"
            + (" (within noise)." if verdict is False else "."))


def evidence(summary: pd.DataFrame, per_seed: pd.DataFrame, seeds: Sequence[int], why: str,
             config: Config) -> Evidence:
    """The headline with its spread over seeds and the book's (absent) figure."""
    return Evidence(headline(summary, seeds, why, config), tuple(seeds), summary,
                    HEADLINE_COLUMNS, BOOK, agreement(summary), why, per_seed)


def figures(run_dir: Path, curves: Mapping[str, Mapping[str, np.ndarray]]) -> list[tuple[str, str]]:
    """Draw validation loss against epochs, seconds and steps.

    Args:
        run_dir: the run folder.
        curves: per variant, its validation loss against epochs, seconds and steps.

    Returns:
        The report's (caption, file) pairs.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 4, "Mini-batch Gradient Descent".
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, c in curves.items():
        axes[0].plot(c["epoch"], c["val_loss"], marker=".", label=name)
        axes[1].plot(c["seconds"], c["val_loss"], marker=".", label=name)
        axes[2].plot(c["steps"][1:], c["val_loss"][1:], marker=".", label=name)
    for ax, xlabel in zip(axes, ("epoch", "training seconds", "gradient steps (log)")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation loss")
        ax.grid(alpha=0.3, which="both")
    axes[2].set_xscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle("Validation loss (epoch 0 = initialization)")
    fig.tight_layout()
    save_figure(fig, run_dir / "loss_curves.png")
    return [("Validation loss against epochs, training seconds and gradient steps",
             "loss_curves.png")]


def metrics(table: pd.DataFrame, common_t: float) -> dict:
    """The headline numbers of results.json.

    Args:
        table: the results table, one row per batch size.
        common_t: the shortest variant's training seconds.

    Returns:
        A JSON-ready dict: per batch size its loss at the common time, accuracy and throughput.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 4, "Mini-batch Gradient Descent".
    """
    out = {"common_time_s": common_t}
    for r in table.itertuples():
        for c in ("val_loss_at_common_time", "test_acc", "steps_per_s", "images_per_s"):
            out[f"b{r.batch_size}_{c}"] = getattr(r, c)
    return out


def notes(table: pd.DataFrame, common_t: float, config: Config) -> list[str]:
    """What the run shows, in sentences: the race against the clock first.

    Args:
        table: the results table, one row per batch size.
        common_t: the shortest variant's training seconds.
        config: the gradient-descent experiment's settings.

    Returns:
        The notes.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 4, "Mini-batch Gradient Descent".
    """
    t = table.set_index("variant")
    best_t = t["val_loss_at_common_time"].idxmin()
    is_mini = 1 < t.loc[best_t, "batch_size"] < t.loc[best_t, "train_images"]
    others = ", ".join(f"{v} {t.loc[v, 'val_loss_at_common_time']:.3f}"
                       for v in t.index if v != best_t)
    verdict = ("mini-batch wins the race against the clock, which is why it is the default"
               if is_mini else "mini-batch does NOT win the race against the clock here")
    notes = [f"Seed {config.seed}: after {common_t:.1f} training seconds (the shortest "
             "variant's total) the lowest "
             f"validation loss is {best_t}'s: {t.loc[best_t, 'val_loss_at_common_time']:.3f} "
             f"(others: {others}): {verdict}."]
    best_e1 = t["val_loss_epoch1"].idxmin()
    notes.append(f"Per epoch, {best_e1} learns most in its first epoch (validation loss "
                 f"{t.loc[best_e1, 'val_loss_epoch1']:.3f}): more steps per pass over the data. "
                 + "; ".join(f"{v}: {int(r['steps'] / r['epochs'])} step(s) per epoch"
                             for v, r in t.iterrows()) + ".")
    fastest = t["images_per_s"].idxmax()
    slowest = t["images_per_s"].idxmin()
    rates = "; ".join(f"{v} {r['images_per_s']:,.0f} images/s ({r['steps_per_s']:,.1f} steps/s)"
                      for v, r in t.iterrows())
    notes.append(f"Throughput: {rates}. The fastest, {fastest}, processes "
                 f"{t.loc[fastest, 'images_per_s'] / t.loc[slowest, 'images_per_s']:.0f}x as "
                 f"many images per second as {slowest}: a batch is one vectorized matrix "
                 "product instead of many small ones, while each step's fixed overhead is "
                 "paid once per batch.")
    full = table[table["batch_size"] >= table["train_images"]]
    if len(full):
        r = full.iloc[0]
        notes.append(f"{r['variant']}: {r['steps']} steps in {r['train_s']:.1f} s give a "
                     f"test accuracy of {r['test_acc']:.4f}; each step costs a full pass over "
                     "the training set.")
    best = table.loc[table["test_acc"].idxmax()]
    notes.append(f"Final test accuracy: best {best['test_acc']:.4f} ({best['variant']}), "
                 f"worst {table['test_acc'].min():.4f} "
                 f"({table.loc[table['test_acc'].idxmin(), 'variant']}); the variants ran "
                 "different numbers of epochs, so compare them at equal time (first note).")
    if config.quick:
        notes.append(quick_note("a small slice and few epochs"))
    return notes


def intro(config: Config, common_t: float) -> str:
    """The report's first paragraph: the net, the rate rule and the batch sizes.

    Args:
        config: the gradient-descent experiment's settings.
        common_t: the shortest variant's training seconds.

    Returns:
        The paragraph.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 4, "Mini-batch Gradient Descent".
    """
    rates = ", ".join(f"{b if b else 'all'}: {e} epoch(s)"
                      for b, e in zip(config.batch_sizes, config.epochs))
    return (
        f"MLP {'-'.join(map(str, config.hidden_units))} (ReLU, He init), optimizer "
        f"{config.optimizer}, learning rate {config.base_learning_rate:g} at batch 32 scaled "
        f"by the '{config.lr_scaling}' rule (base * (b / 32)^k), seed {config.seed} "
        f"re-applied before each variant, {mnist_text(config.quick)}; batch size 1 trains on "
        "the first "
        f"{config.sgd_train} training images. Epochs per batch size ({rates}). Training "
        f"seconds exclude the validation pass; the table's `val_loss_at_common_time` is each "
        f"variant's validation loss interpolated at {common_t:.1f} s. Seconds depend on the "
        "machine and its load.")
