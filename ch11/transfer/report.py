"""The transfer experiment's report: figures, notes, headline metrics and intro."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ch11._evidence import BookFigure, Evidence, compare, is_effect, seeds_note
from ch11._text import quick_note
from ch11.transfer.config import Config
from recipes.plots import learning_curves
from recipes.runs import save_figure

__all__ = ["BOOK", "BOOK_CHANGE", "HEADLINE_COLUMNS", "VARIANTS", "agreement", "evidence",
           "figures", "headline", "intro", "markdown", "metrics", "notes"]

VARIANTS = ("scratch", "frozen", "fine_tuned")  # the B models, the columns of the seed table
HEADLINE_COLUMNS = ("test_error",)
BOOK_CHANGE = (1 - 0.9385) / (1 - 0.9185) - 1  # the book's relative change of the error
BOOK = BookFigure(
    claim="reusing the layers of a model trained on a related task (A) beats training task B "
          "from scratch on few images",
    figure="test accuracy 91.85% from scratch vs 93.85% for B on A: the error drops by 24.5%",
    setting="Fashion-MNIST pullover vs T-shirt/top from 200 images, MLP 100-100-100, SGD at "
            "1e-3, 4 epochs frozen then 16 fine-tuned, one seed")


def headline(summary: pd.DataFrame, seeds: Sequence[int], why: str, config: Config) -> str:
    """B on A (fine-tuned) vs B from scratch: the test error over seeds.

    Args:
        summary: `ch11._evidence.seed_summary` per B model (``test_error``).
        seeds: the B models' seeds.
        why: why fewer than 3 seeds.
        config: the transfer experiment's settings.

    Returns:
        The sentence.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Transfer Learning with Keras".
    """
    s = summary.set_index("variant")
    change = s.loc["fine_tuned", "test_error_mean"] / s.loc["scratch", "test_error_mean"] - 1
    return (f"Task B ({config.classes_b[1]} vs {config.classes_b[0]}) from "
            f"{config.n_train_b} images, {seeds_note(seeds, why)}: test error "
            + compare(summary, "fine_tuned", "test_error", "scratch",
                      names=("B on A (fine-tuned)", "B from scratch"))
            + f", a {change:+.0%} change of the mean error.")


def agreement(summary: pd.DataFrame) -> str:
    """One line: our change of the mean error vs the book's -24.5%."""
    s = summary.set_index("variant")
    change = s.loc["fine_tuned", "test_error_mean"] / s.loc["scratch", "test_error_mean"] - 1
    verdict = is_effect(summary, "fine_tuned", "test_error", "scratch")
    where = f"{change:+.1%} here vs {BOOK_CHANGE:+.1%} in the book (one seed)"
    if change < 0 and verdict:
        return f"agrees: transfer lowers the error beyond the spread over seeds, {where}."
    if change < 0 and verdict is None:
        return f"agrees on one seed only: {where}."
    return (f"does not agree: {where}; "
            + ("within noise." if verdict is False else "transfer raises the error."))


def evidence(summary: pd.DataFrame, per_seed: pd.DataFrame, seeds: Sequence[int], why: str,
             config: Config) -> Evidence:
    """The headline with its spread over seeds and the book's figure."""
    return Evidence(headline(summary, seeds, why, config), tuple(seeds), summary,
                    HEADLINE_COLUMNS, BOOK, agreement(summary), why, per_seed)


def markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table for report.md.

    Args:
        frame: the per-seed test errors.

    Returns:
        The Markdown table (floats with 4 decimals).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Transfer Learning with Keras".
    """
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v)
                                       for v in row) + " |")
    return "\n".join(lines)


def figures(run_dir: Path, seeds: pd.DataFrame, histories: dict,
            config: Config) -> list[tuple[str, str]]:
    """Draw the test error per seed and the learning curves of B and of A.

    Args:
        run_dir: the run folder.
        seeds: the per-seed test errors.
        histories: per model (``A``, ``B_scratch_s<seed>``, ``B_on_A_s<seed>``), its history.
        config: the transfer experiment's settings.

    Returns:
        The report's (caption, file) pairs.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Transfer Learning with Keras".
    """
    save_figure(_seed_plot(seeds), run_dir / "error_per_seed.png")
    first = config.seed
    curves = {"B from scratch": histories[f"B_scratch_s{first}"],
              "B on A": histories[f"B_on_A_s{first}"]}
    save_figure(learning_curves(curves, title=f"Task B, seed {first} (B on A: the first "
                                f"{config.frozen_epochs} epochs frozen)"),
                run_dir / "b_learning_curves.png")
    save_figure(learning_curves({"A": histories["A"]}, title="Model A (8 digits)"),
                run_dir / "a_learning_curves.png")
    return [("Test error of each B variant per seed (lines join a seed; bar: mean +- std)",
             "error_per_seed.png"),
            ("Task B learning curves for the first seed", "b_learning_curves.png"),
            ("Model A learning curves", "a_learning_curves.png")]


def _seed_plot(seeds: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    xs = np.arange(len(VARIANTS))
    for _, row in seeds.iterrows():
        ax.plot(xs, [row[v] for v in VARIANTS], color="gray", alpha=0.35, marker=".")
    means = [seeds[v].mean() for v in VARIANTS]
    stds = [seeds[v].std(ddof=1) if len(seeds) > 1 else 0.0 for v in VARIANTS]
    ax.errorbar(xs, means, yerr=stds, fmt="o", color="tab:red", capsize=6, lw=2,
                label="mean +- std")
    ax.set_xticks(xs, ["B from scratch", "B on A, frozen", "B on A, fine-tuned"])
    ax.set_ylabel("test error rate")
    ax.set_title(f"Test error over {len(seeds)} seeds")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def metrics(seeds: pd.DataFrame, acc_a: float) -> dict:
    """The headline numbers of results.json.

    Args:
        seeds: the per-seed test errors.
        acc_a: model A's test accuracy.
        seeds: the B models' seeds. Defaults to `()` (``config.seed`` only).

    Returns:
        A JSON-ready dict: per B variant the mean and std of its test error, and every seed's.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Transfer Learning with Keras".
    """
    out = {"model_A_test_acc": acc_a}
    for v in VARIANTS:
        out[f"{v}_mean_error"] = seeds[v].mean()
        out[f"{v}_std_error"] = seeds[v].std(ddof=1) if len(seeds) > 1 else None
    out["per_seed"] = seeds.to_dict(orient="records")
    return out


def notes(seeds: pd.DataFrame, config: Config) -> list[str]:
    """What the run shows, in sentences: the mean gain, its noise, the lucky seed.

    Args:
        seeds: the per-seed test errors.
        config: the transfer experiment's settings.

    Returns:
        The notes.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Transfer Learning with Keras" (the
    warning on trying configurations until one looks good).
    """
    n = len(seeds)
    s, f, z = seeds["scratch"], seeds["fine_tuned"], seeds["frozen"]
    notes = []
    mean_drop = (s.mean() - f.mean()) / s.mean() if s.mean() > 0 else float("nan")
    direction = "lower" if f.mean() < s.mean() else "NOT lower"
    notes.append(
        f"Mean test error over {n} seed(s): {s.mean():.4f} from scratch vs {f.mean():.4f} "
        f"for B on A after fine-tuning ({direction}; relative change of the mean error "
        f"{-mean_drop:+.0%}), and {z.mean():.4f} after the frozen phase alone "
        f"({config.frozen_epochs} epochs).")
    diff = s - f
    wins = int((diff > 0).sum())
    if n > 1:
        se = diff.std(ddof=1) / np.sqrt(n)
        clear = abs(diff.mean()) > 2 * se
        notes.append(
            f"Paired by seed, scratch minus fine-tuned error is {diff.mean():+.4f} on average "
            f"(std {diff.std(ddof=1):.4f}, standard error {se:.4f}); B on A wins on {wins} of "
            f"{n} seeds. The mean difference is "
            + ("more than twice its standard error: the gain holds beyond seed noise."
               if clear else "within twice its standard error: not distinguishable from "
               "seed noise."))
    rel = (s - f) / s.where(s > 0)
    if rel.notna().any():
        lucky, unlucky = rel.idxmax(), rel.idxmin()

        def change(i: int) -> str:
            return (f"a {rel[i]:.0%} error reduction" if rel[i] >= 0
                    else f"a {-rel[i]:.0%} error increase") + f" ({s[i]:.4f} -> {f[i]:.4f})"

        notes.append(
            f"The lucky seed: seed {int(seeds.loc[lucky, 'seed'])} shows {change(lucky)}; the "
            f"least lucky, seed {int(seeds.loc[unlucky, 'seed'])}, shows {change(unlucky)}. "
            "Reporting one seed could claim anything in between: the book's warning.")
    if "scratch_train_acc" in seeds:
        acc_s, acc_f = seeds["scratch_train_acc"].mean(), seeds["fine_tuned_train_acc"].mean()
        steps = config.epochs_b * -(-config.n_train_b // config.batch_size)
        if acc_s < 0.95:
            notes.append(
                f"B from scratch is far from fitting its {config.n_train_b} images: training "
                f"accuracy {acc_s:.3f} in its last epoch (B on A: {acc_f:.3f}) after {steps} "
                f"steps of {config.optimizer} at {config.learning_rate:g}. At the book's "
                "settings part of the gain is A's layers starting where B's have not yet "
                "arrived; a higher --learning-rate trains both further.")
    if z.mean() > s.mean():
        notes.append(
            f"The frozen phase alone is worse than scratch ({z.mean():.4f} vs {s.mean():.4f}): "
            f"its {config.frozen_epochs * -(-config.n_train_b // config.batch_size)} steps "
            "train only the new output layer on features A learned for other digits; the "
            "gain comes with fine-tuning the reused layers.")
    notes.append(
        f"Both B models see only {config.n_train_b} training images at learning rate "
        f"{config.learning_rate:g} for {config.epochs_b} vs "
        f"{config.frozen_epochs + config.fine_tune_epochs} epochs: the gain of B on A is what "
        "A's features bring when B's own data are scarce.")
    if config.quick:
        notes.append(quick_note("a small slice and few epochs"))
    return notes


def intro(config: Config, data_a: dict, data_b: dict, acc_a: float,
          seeds: Sequence[int] = ()) -> str:
    """The report's first paragraph: the two tasks, the models and the seeds.

    Args:
        config: the transfer experiment's settings.
        data_a: task A's data.
        data_b: task B's data.
        acc_a: model A's test accuracy.
        seeds: the B models' seeds. Defaults to `()` (``config.seed`` only).

    Returns:
        The paragraph.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Transfer Learning with Keras".
    """
    a_digits = [c for c in range(10) if c not in config.classes_b]
    return (
        f"Model A: MLP {' x '.join(map(str, config.hidden_units))} ReLU (He init) + softmax "
        f"over the digits {', '.join(map(str, a_digits))} ({len(data_a['x_train']):,} "
        f"training images, {config.epochs_a} epochs; test accuracy {acc_a:.4f}). Task B: "
        f"digit {config.classes_b[1]} (label 1) vs {config.classes_b[0]} (label 0), "
        f"{len(data_b['x_train'])} training images, validation {len(data_b['x_valid']):,}, "
        f"test {len(data_b['x_test']):,} images. The pair is a confusable one, as the book's "
        "pullover vs T-shirt. B from scratch: the same architecture with a sigmoid output. B "
        "on A: a clone of A's hidden layers + a new sigmoid output, trained "
        f"{config.frozen_epochs} epochs with A's layers frozen, then "
        f"{config.fine_tune_epochs} epochs unfrozen at {config.fine_tune_lr_factor:g}x the "
        f"rate. Every model: {config.optimizer} at {config.learning_rate:g}, batch "
        f"{config.batch_size}. Model A is trained once (seed {config.seed}); each B model is "
        f"trained with seeds {', '.join(map(str, seeds or (config.seed,)))} (initial "
        "weights of B and of the new output layer, and the shuffling). Errors are on B's test "
        "images.")
