"""The losses experiment's report: figures, the gradient table, notes, metrics and intro."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ch11._evidence import BookFigure, Evidence, compare, is_effect, seeds_note
from ch11._text import mnist_text, quick_note
from ch11.losses.config import Config
from recipes.plots import learning_curves
from recipes.runs import save_figure

__all__ = ["BOOK", "HEADLINE_COLUMNS", "agreement", "evidence", "figures", "grad_section",
           "headline", "intro", "metrics", "notes"]

HEADLINE_COLUMNS = ("val_acc_epoch1", "val_acc")
BOOK = BookFigure(
    claim="for classification, cross-entropy trains faster than the mean squared error: its "
          "gradient stays large on confidently wrong answers",
    figure=None,
    setting="the book states it (chapters 4 and 10); its chapter 11 notebook runs no "
            "comparison")


def headline(summary: pd.DataFrame, seeds: Sequence[int], why: str, config: Config) -> str:
    """Cross-entropy vs MSE: validation accuracy over seeds.

    Args:
        summary: `ch11._evidence.seed_summary` per loss (``crossentropy``, ``mse``).
        seeds: the seeds.
        why: why fewer than 3 seeds.
        config: the losses experiment's settings.

    Returns:
        The sentence (it starts "After N epoch(s) of <optimizer>").
    """
    return (f"After {config.epochs} epoch(s) of {config.optimizer} at {config.learning_rate:g}, "
            f"{seeds_note(seeds, why)}: validation accuracy "
            + compare(summary, "crossentropy", "val_acc", "mse",
                      names=("cross-entropy", "MSE"))
            + ("; after epoch 1: " + compare(summary, "crossentropy", "val_acc_epoch1", "mse",
                                             names=("cross-entropy", "MSE"))
               if config.epochs > 1 else "") + ".")


def agreement(summary: pd.DataFrame) -> str:
    """One line: is cross-entropy ahead of MSE beyond noise?"""
    s = summary.set_index("loss")
    gap = s.loc["crossentropy", "val_acc_mean"] - s.loc["mse", "val_acc_mean"]
    verdict = is_effect(summary, "crossentropy", "val_acc", "mse")
    if gap > 0 and verdict:
        return f"agrees: cross-entropy ahead of MSE by {gap:+.4f} (an effect)."
    if gap > 0 and verdict is None:
        return f"agrees on one seed only: cross-entropy ahead of MSE by {gap:+.4f}."
    return (f"does not agree: cross-entropy - MSE {gap:+.4f} "
            f"({'within noise' if verdict is False else 'MSE ahead'}).")


def evidence(summary: pd.DataFrame, per_seed: pd.DataFrame, seeds: Sequence[int], why: str,
             config: Config) -> Evidence:
    """The headline with its spread over seeds and the book's (absent) figure."""
    return Evidence(headline(summary, seeds, why, config), tuple(seeds), summary,
                    HEADLINE_COLUMNS, BOOK, agreement(summary), why, per_seed)


def figures(run_dir, histories: Mapping, grads: pd.DataFrame) -> list[tuple[str, str]]:
    """Draw the 10-class accuracy curves and the logit-gradient norms against the margin.

    Args:
        run_dir: the run folder.
        histories: per loss, its Keras history.
        grads: `logit_gradients`' table.

    Returns:
        The report's (caption, file) pairs.
    """
    import matplotlib.pyplot as plt

    ten = {f"{k} (10 classes)": v for k, v in histories.items() if k != "binary_crossentropy"}
    save_figure(learning_curves(ten, metrics=("accuracy",),
                                title="Same MLP, same seed: cross-entropy vs softmax MSE"),
                run_dir / "accuracy_curves.png")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(grads["margin"], grads["ce_grad_norm"], marker="o", label="cross-entropy")
    ax.plot(grads["margin"], grads["mse_grad_norm"], marker="s", label="MSE on softmax")
    ax.set_yscale("log")
    ax.set_xlabel("logit margin of the wrong class (confidence of the wrong answer)")
    ax.set_ylabel("||dLoss / dlogits||")
    ax.set_title("Gradient reaching the logits at a wrong answer")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, run_dir / "logit_gradients.png")
    return [("Validation (solid) and training (dashed) accuracy per epoch",
             "accuracy_curves.png"),
            ("Norm of the gradient with respect to the logits against the wrong answer's "
             "margin (log scale)", "logit_gradients.png")]


def grad_section(grads: pd.DataFrame) -> str:
    """The report's section on the gradient at a confidently wrong answer: text and table.

    Args:
        grads: `logit_gradients`' table.

    Returns:
        The section's markdown.
    """
    cols = ["margin", "p_wrong", "p_true", "ce_loss", "ce_grad_norm", "ce_grad_true",
            "mse_loss", "mse_grad_norm", "mse_grad_true", "ce_over_mse"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in grads[cols].itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.4g}" for v in r) + " |")
    return ("Ten logits: the margin on one wrong class, 0 elsewhere; the true class is "
            "another one. Gradients by `tf.GradientTape` with respect to the logits "
            "(`make_loss(..., from_logits=True)`); `*_grad_true` is the component on the true "
            "class's logit (negative = pushes it up). The MSE averages over the 10 classes, "
            "a constant factor 1/10; what matters is how each gradient changes with the "
            "margin.\n\n" + "\n".join(lines))


def _epochs_to_reach(history, target: float) -> int | None:
    for epoch, acc in enumerate(history.history["val_accuracy"], 1):
        if acc >= target:
            return epoch
    return None


def notes(table: pd.DataFrame, grads: pd.DataFrame, histories: Mapping,
           config: Config) -> list[str]:
    """What the run shows, in sentences: MSE's slower learning, why, and the binary task.

    Args:
        table: the results table, one row per loss.
        grads: `logit_gradients`' table.
        histories: per loss, its Keras history.
        config: the settings.

    Returns:
        The notes.
    """
    t = table.set_index("loss")
    ce, mse = t.loc["crossentropy"], t.loc["mse"]
    slower = mse["val_acc"] < ce["val_acc"]
    target = ce["val_acc_epoch1"]
    reach = _epochs_to_reach(histories["mse"], target)
    reach_text = (f"MSE needed {reach} epoch(s) to reach the validation accuracy that "
                  f"cross-entropy had after one ({target:.4f})" if reach is not None else
                  f"MSE never reached, in {config.epochs} epoch(s), the validation accuracy "
                  f"that cross-entropy had after one ({target:.4f})")
    notes = [f"Seed {config.seed}, after {config.epochs} epoch(s) of {config.optimizer} at "
             f"{config.learning_rate:g}, MSE on the softmax outputs reaches "
             f"{mse['val_acc']:.4f} validation accuracy vs "
             f"{ce['val_acc']:.4f} for cross-entropy: MSE "
             f"{'converges more slowly' if slower else 'does NOT converge more slowly'} "
             f"here. {reach_text}."]
    lo, hi = grads.iloc[0], grads.iloc[-1]
    notes.append(
        f"At a wrong answer with margin {hi['margin']:g} (p_wrong = {hi['p_wrong']:.4f}), the "
        f"cross-entropy's gradient on the logits has norm {hi['ce_grad_norm']:.3g}, MSE's "
        f"{hi['mse_grad_norm']:.3g} ({hi['ce_over_mse']:.3g}x smaller; at margin "
        f"{lo['margin']:g} the ratio is {lo['ce_over_mse']:.3g}). The softmax Jacobian "
        "multiplies MSE's error by p(1-p) terms that vanish as the wrong answer grows "
        "confident, so the examples that most need correcting get the weakest push; the "
        "cross-entropy's log cancels the softmax's exponential and its gradient p - y keeps a "
        f"norm between {grads['ce_grad_norm'].min():.3g} and {grads['ce_grad_norm'].max():.3g} "
        "over these margins.")
    b = t.loc["binary_crossentropy"]
    notes.append(
        f"Binary cross-entropy, {b['task']}: test accuracy {b['test_acc']:.4f} against "
        f"{b['majority_acc']:.4f} for always answering 'not {config.positive_digit}'; AUC "
        f"{b['test_auc']:.4f}, precision {b['test_precision']:.4f}, recall "
        f"{b['test_recall']:.4f}"
        + (" (precision NaN: no image predicted positive)" if np.isnan(b["test_precision"])
           else "") + ". On a 1-in-10 task, accuracy alone says little: read the "
        "AUC, precision and recall.")
    if config.quick:
        notes.append(quick_note())
    return notes


def metrics(table: pd.DataFrame, grads: pd.DataFrame) -> dict:
    """The headline numbers of results.json.

    Args:
        table: the results table, one row per loss.
        grads: `logit_gradients`' table.

    Returns:
        A JSON-ready dict: accuracies, the binary AUC and the largest margin's ratio.
    """
    out = {f"{r.loss}_{c}": getattr(r, c) for r in table.itertuples()
           for c in ("val_acc", "test_acc")}
    out["binary_test_auc"] = float(table["test_auc"].iloc[-1])
    out["max_margin_ce_over_mse"] = float(grads["ce_over_mse"].iloc[-1])
    return out


def intro(config: Config) -> str:
    """The report's first paragraph: the net, the losses and the training settings.

    Args:
        config: the settings.

    Returns:
        The paragraph.
    """
    return (
        f"MLP {'-'.join(map(str, config.hidden_units))} (ReLU, He init), softmax output of 10 "
        f"units for cross-entropy and MSE (`make_loss('crossentropy')`, `make_loss('mse')`), "
        f"one sigmoid unit for the binary task ({config.positive_digit} vs the other digits, "
        f"`make_loss('binary_crossentropy')`). Every variant: optimizer {config.optimizer}, "
        f"learning rate {config.learning_rate:g}, batch {config.batch_size}, "
        f"{config.epochs} epoch(s), seed {config.seed} re-applied before each, "
        f"{mnist_text(config.quick)}.")
