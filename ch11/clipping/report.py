"""The clipping experiment's report: figures, notes, headline metrics and intro."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ch11._evidence import BookFigure, Evidence, compare, is_effect, seeds_note
from ch11._text import mnist_text, quick_note
from ch11.clipping.config import Config
from recipes.plots import learning_curves
from recipes.runs import save_figure

__all__ = ["BOOK", "HEADLINE_COLUMNS", "agreement", "evidence", "figures", "first_nonfinite",
           "headline", "intro", "metrics", "notes"]

HEADLINE_COLUMNS = ("val_acc", "diverged")
BOOK = BookFigure(
    claim="gradient clipping (clipvalue or clipnorm) keeps exploding gradients from "
          "derailing training",
    figure=None,
    setting="the notebook only compiles SGD(clipvalue=1.0) and SGD(clipnorm=1.0), with no "
            "training run")


def headline(summary: pd.DataFrame, seeds: Sequence[int], why: str, config: Config) -> str:
    """How often each choice diverged, and the best clipping vs none, over seeds.

    Args:
        summary: `ch11._evidence.seed_summary` per clipping choice (``val_acc``,
            ``diverged`` as 0/1).
        seeds: the seeds.
        why: why fewer than 3 seeds.
        config: the clipping experiment's settings.

    Returns:
        The sentence.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Gradient Clipping".
    """
    s = summary.set_index("clipping")
    fates = ", ".join(f"{c} {int(round(r.diverged_mean * r.seeds))}/{int(r.seeds)}"
                      for c, r in s.iterrows())
    text = (f"{config.depth}-layer {config.activation} MLP at {config.optimizer} "
            f"{config.learning_rate:g}, {config.epochs} epoch(s), {seeds_note(seeds, why)}: "
            f"runs that diverged (NaN): {fates}")
    clipped = s.drop("none", errors="ignore")
    if "none" in s.index and len(clipped):
        best = clipped["val_acc_mean"].idxmax()
        text += ("; validation accuracy, best clipping vs none: "
                 + compare(summary, best, "val_acc", "none"))
    return text + "."


def agreement(summary: pd.DataFrame) -> str:
    """One line: does a clipping choice rescue the run beyond noise?"""
    s = summary.set_index("clipping")
    if "none" not in s.index or len(s) < 2:
        return "not tested: no run without clipping to compare with."
    best = s.drop("none")["val_acc_mean"].idxmax()
    gain = s.loc[best, "val_acc_mean"] - s.loc["none", "val_acc_mean"]
    verdict = is_effect(summary, best, "val_acc", "none")
    diverged = s.loc["none", "diverged_mean"]
    if gain > 0 and verdict is not False:
        return (f"agrees: {best} is ahead of no clipping by {gain:+.4f}"
                + (" (one seed: no spread)" if verdict is None else " (an effect)")
                + f"; without clipping {diverged:.0%} of the runs diverged.")
    return (f"does not agree: the best clipping, {best}, is {gain:+.4f} from no clipping "
            f"({'within noise' if verdict is False else 'behind'}).")


def evidence(summary: pd.DataFrame, seeds: Sequence[int], why: str, config: Config,
             per_seed: pd.DataFrame) -> Evidence:
    """The headline with its spread over seeds and the book's (absent) figure."""
    return Evidence(headline(summary, seeds, why, config), tuple(seeds), summary,
                    HEADLINE_COLUMNS, BOOK, agreement(summary), why, per_seed)


def first_nonfinite(steps: Sequence[int], values: Sequence[float]) -> int | None:
    """The first step whose value is NaN or infinite (where a run diverged).

    Args:
        steps: the step numbers.
        values: the values measured at those steps.

    Returns:
        The step, or ``None`` when every value is finite.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Gradient Clipping".
    """
    bad = [s for s, v in zip(steps, values) if not np.isfinite(v)]
    return bad[0] if bad else None


def figures(run_dir: Path, steps: pd.DataFrame, histories, config: Config) -> list[tuple[str, str]]:
    """Draw the per-step gradient norm and loss, and the learning curves.

    Args:
        run_dir: the run folder.
        steps: the per-step gradient norms and losses (steps.csv).
        histories: per clipping choice, its Keras history.
        config: the clipping experiment's settings.

    Returns:
        The report's (caption, file) pairs.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Gradient Clipping".
    """
    for column, ylabel, name in (
            ("grad_norm", "global gradient norm (fixed batch, before clipping)", "grad_norm"),
            ("loss", "loss on the fixed batch", "loss_per_step")):
        save_figure(_per_step(steps, column, ylabel, config), run_dir / f"{name}.png")
    save_figure(learning_curves(histories, title="Per-epoch learning curves"),
                run_dir / "learning_curves.png")
    return [("Global gradient norm after every step (thin: raw, thick: rolling median; x: "
             "divergence)", "grad_norm.png"),
            ("Loss on the fixed batch after every step (y axis cut at 1.5x the highest "
             "rolling median; x: divergence)", "loss_per_step.png"),
            ("Per-epoch learning curves (training dashed, validation solid)",
             "learning_curves.png")]


def _per_step(steps: pd.DataFrame, column: str, ylabel: str, config: Config):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    log = column == "grad_norm"
    tops, marks = [], []
    for i, (clip, part) in enumerate(steps.groupby("variant", sort=False)):
        color = colors[i % len(colors)]
        values = part[column].to_numpy(dtype=float)
        shown = np.where(np.isfinite(values), values, np.nan)
        ax.plot(part["step"], shown, color=color, alpha=0.25, lw=0.6)
        window = max(1, min(50, len(part) // 20))
        smooth = pd.Series(shown).rolling(window, min_periods=1).median()
        ax.plot(part["step"], smooth, color=color, lw=1.8, label=clip)
        tops.append(np.nanmax(smooth) if np.isfinite(smooth).any() else 1.0)
        bad = first_nonfinite(part["step"].tolist(), part["loss"].tolist())
        if bad is not None:
            last = shown[np.isfinite(shown)]
            marks.append((bad, last[-1] if len(last) else np.nan, color))
    if log:
        ax.axhline(config.global_clipnorm, color="gray", ls=":", lw=1,
                   label=f"global_clipnorm = {config.global_clipnorm:g}")
        ax.set_yscale("log")
    else:  # the diverging loss reaches 1e30 and more: show the range of the smoothed curves
        top = 1.5 * max(tops)
        ax.set_ylim(0, top)
    ymax = ax.get_ylim()[1]
    for step, value, color in marks:  # x where the loss became NaN, at the last finite value
        y = value if np.isfinite(value) else ymax
        ax.plot([step], [y if log else min(y, 0.95 * ymax)], "x", color=color, ms=12, mew=3)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def metrics(table: pd.DataFrame) -> dict:
    """The headline numbers of results.json.

    Args:
        table: the results table, one row per clipping choice.

    Returns:
        A JSON-ready dict: per clipping choice, its accuracies, divergence step and largest
        gradient norm.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Gradient Clipping".
    """
    return {f"{r.clipping}_{c}": getattr(r, c) for r in table.itertuples()
            for c in ("val_acc", "test_acc", "diverged_at_step", "grad_norm_max")}


def notes(table: pd.DataFrame, config: Config) -> list[str]:
    """What the run shows, in sentences.

    Args:
        table: the results table, one row per clipping choice.
        config: the clipping experiment's settings.

    Returns:
        The notes.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Gradient Clipping".
    """
    t = table.set_index("clipping")
    notes = []
    none = t.loc["none"]
    if none.diverged_at_step > 0:
        notes.append(
            f"Seed {config.seed}: without clipping the loss became NaN at step "
            f"{int(none.diverged_at_step)}; the "
            f"gradient norm had grown from {none.grad_norm_init:.3g} at initialization (median "
            f"{none.grad_norm_median:.3g}) to {none.grad_norm_max:.3g} just before: the "
            "gradients exploded and training stopped (TerminateOnNaN); its accuracies are "
            "those of the NaN weights.")
    else:
        notes.append(
            f"Seed {config.seed}: without clipping this run did NOT diverge (largest gradient norm "
            f"{none.grad_norm_max:.3g}, {none.grad_norm_max / none.grad_norm_median:.1f}x its "
            f"median; validation accuracy {none.val_acc:.4f}): the setup was not explosive "
            "enough at this seed and rate to need clipping.")
    for clip in t.index.drop("none"):
        r = t.loc[clip]
        fate = (f"diverged at step {int(r.diverged_at_step)}" if r.diverged_at_step > 0
                else f"no NaN through all {int(r.steps)} steps")
        if r.diverged_at_step < 0 and abs(r.final_loss - np.log(10)) < 0.05:
            fate += (f", but it is stuck: its final loss {r.final_loss:.3f} is ln 10 = 2.303, "
                     "the loss of a uniform guess over 10 digits; its gradient norm's median "
                     f"over the last tenth of the steps is {r.grad_norm_end:.3g} vs "
                     f"{r.grad_norm_init:.3g} at initialization")
        notes.append(
            f"{clip}={r.threshold:g}: {fate}; validation accuracy {r.val_acc:.4f}, test "
            f"{r.test_acc:.4f}; gradient norm median {r.grad_norm_median:.3g}, 99th "
            f"percentile {r.grad_norm_p99:.3g}, max {r.grad_norm_max:.3g}.")
    stable = t[t["diverged_at_step"] < 0]
    if len(stable):
        best = stable["val_acc"].idxmax()
        notes.append(
            f"Best of the runs that did not diverge: {best} (validation accuracy "
            f"{stable.loc[best, 'val_acc']:.4f}). clipvalue clips each component and can "
            "turn the gradient; clipnorm rescales each tensor separately; global_clipnorm "
            "rescales all of them together and keeps the direction.")
    notes.append(
        "Clipping bounds the step, not the gradient: the norms above are the raw gradients "
        "the optimizer received before clipping, measured on the same fixed batch.")
    if config.quick:
        notes.append(quick_note(f"a small slice, {config.depth} layers and one epoch"))
    return notes


def intro(config: Config) -> str:
    """The report's first paragraph: the exploding setup, the variants and the monitor.

    Args:
        config: the clipping experiment's settings.

    Returns:
        The paragraph.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Gradient Clipping".
    """
    return (
        f"Deep MLP: {config.depth} hidden layers x {config.units} units, {config.activation} "
        f"(He initialization), no batch norm; optimizer {config.optimizer} at learning rate "
        f"{config.learning_rate:g} (deliberately too high: the exploding setup), batch "
        f"{config.batch_size}, {config.epochs} epoch(s), seed {config.seed} re-applied before "
        f"each variant, {mnist_text(config.quick)}. Variants: no clipping, clipvalue, clipnorm and "
        "global_clipnorm through make_optimizer; TerminateOnNaN stops a diverged run. "
        f"Monitor: a callback computes, every {config.monitor_every} step(s), the loss and the "
        f"global gradient norm on the same {config.monitor_batch} training images (inference "
        "mode, before clipping); all per-step values are in steps.csv.")
