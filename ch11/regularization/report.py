"""The regularization experiment's report: figures, diagnostics, notes, metrics, intro."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ch11._evidence import BookFigure, Evidence, compare, is_effect, seeds_note, spread
from ch11._text import quick_note
from ch11.regularization.config import Config
from recipes.metrics import roc_auc_per_class, roc_curves
from recipes.plots import learning_curves, roc_plot, weight_histograms
from recipes.runs import save_figure

__all__ = ["BOOK", "HEADLINE_COLUMNS", "REGULARIZERS", "agreement", "diagnostics", "evidence",
           "figures", "headline", "intro", "metrics", "normalization_note", "notes"]

HEADLINE_COLUMNS = ("train_val_gap", "val_acc")
REGULARIZERS = (("l2", "none"), ("dropout", "none"), ("max_norm", "none"),
                ("alpha_dropout", "selu"))  # (regularized variant, its unregularized base)
BOOK = BookFigure(
    claim="l2, dropout and max-norm regularization shrink the gap between training and "
          "validation accuracy",
    figure="not quoted here: the notebook's printed outputs for the regularizers were not "
           "read for this report",
    setting="the notebook trains its Fashion-MNIST MLP with each regularizer")


def headline(summary: pd.DataFrame, seeds: Sequence[int], why: str, config: Config) -> str:
    """Each regularizer's train-validation gap vs its base, over seeds.

    Args:
        summary: `ch11._evidence.seed_summary` per variant (``train_val_gap``, ``val_acc``).
        seeds: the seeds.
        why: why fewer than 3 seeds.
        config: the regularization experiment's settings.

    Returns:
        The sentence.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Avoiding Overfitting Through
    Regularization".
    """
    names = set(summary["variant"])
    parts = [compare(summary, r, "train_val_gap", b, digits=4)
             for r, b in REGULARIZERS if {r, b} <= names]
    best = summary.loc[summary["val_acc_mean"].idxmax(), "variant"]
    return (f"{config.train_size:,} training images, {config.epochs} epochs, "
            f"{seeds_note(seeds, why)}: train-validation gap "
            + "; ".join(parts) + f"; best validation accuracy {best} "
            f"{spread(summary, best, 'val_acc', digits=4)}.")


def agreement(summary: pd.DataFrame) -> str:
    """One line: which regularizers shrink the gap beyond noise here."""
    names = set(summary["variant"])
    pairs = [(r, b) for r, b in REGULARIZERS if {r, b} <= names]
    s = summary.set_index("variant")
    shrink = [r for r, b in pairs if s.loc[r, "train_val_gap_mean"]
              < s.loc[b, "train_val_gap_mean"] and is_effect(summary, r, "train_val_gap", b)]
    if not pairs:
        return "not tested: no regularizer was run with its base."
    return (f"no book figure to compare with; here {len(shrink)} of {len(pairs)} regularizers "
            "shrink the gap beyond noise" + (f" ({', '.join(shrink)})" if shrink else "") + ".")


def evidence(summary: pd.DataFrame, per_seed: pd.DataFrame, seeds: Sequence[int], why: str,
             config: Config) -> Evidence:
    """The headline with its spread over seeds and the book's figure."""
    return Evidence(headline(summary, seeds, why, config), tuple(seeds), summary,
                    HEADLINE_COLUMNS, BOOK, agreement(summary), why, per_seed)


def figures(run_dir: Path, histories, table: pd.DataFrame, mc: dict) -> list[tuple[str, str]]:
    """Draw the learning curves, the gap bars and MC dropout's uncertainty.

    Args:
        run_dir: the run folder.
        histories: per variant, its Keras history.
        table: the results table, one row per variant, MC dropout included.
        mc: MC dropout's per-image test statistics (empty without a dropout variant).

    Returns:
        The report's (caption, file) pairs.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Avoiding Overfitting Through Regularization".
    """
    acc = {k: {m: h.history[m] for m in ("accuracy", "val_accuracy")}
           for k, h in histories.items()}
    save_figure(learning_curves(acc, metrics=("accuracy",),
                                title="Accuracy per epoch (dashed: training, solid: validation)"),
                run_dir / "accuracy_curves.png")
    fig = learning_curves(histories, metrics=("loss",), title="Loss per epoch")
    fig.axes[0].set_yscale("log")
    save_figure(fig, run_dir / "loss_curves.png")
    save_figure(_gap_bars(table), run_dir / "train_val_gap.png")
    figures = [("Training (dashed) and validation (solid) accuracy", "accuracy_curves.png"),
               ("Training (dashed) and validation (solid) loss; l2 adds its penalty to the "
                "training loss (log scale)", "loss_curves.png"),
               ("Accuracy on the final weights: training vs validation", "train_val_gap.png")]
    if mc:
        save_figure(_mc_hist(mc), run_dir / "mc_dropout_uncertainty.png")
        figures.append(("MC dropout: spread of the predicted class's probability, correct vs "
                        "wrong test predictions", "mc_dropout_uncertainty.png"))
    return figures


def diagnostics(run_dir: Path, table: pd.DataFrame, weights: dict[str, dict],
                mc: dict) -> tuple[list[tuple[str, str]], str, dict]:
    """The weight histograms and MC dropout's error-detection ROC, and what they show.

    Args:
        run_dir: the run folder.
        table: the results table, one row per variant, MC dropout included.
        weights: per variant, its `_hidden_kernels` (norms and arrays).
        mc: MC dropout's per-image test statistics.

    Returns:
        ``(figures, text, detection)``: the (caption, file) pairs, the report's sentences and
        the error-detection AUCs for results.json.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Monte Carlo (MC) Dropout".
    """
    arrays = {f"{v}: {n}": a for v, w in weights.items() for n, a in w["arrays"].items()}
    save_figure(weight_histograms(arrays, title="Hidden kernels after training"),
                run_dir / "weight_histograms.png")
    t = table.set_index("variant")
    ref = t.loc["none"] if "none" in t.index else None
    norms = ", ".join(f"{v} {t.loc[v, 'kernel_norm']:.3g}" + (
        f" ({t.loc[v, 'kernel_norm'] / ref['kernel_norm'] - 1:+.0%} vs none)"
        if ref is not None and v != "none" else "") for v in weights)
    units = ", ".join(f"{v} {t.loc[v, 'max_unit_norm']:.3g}" for v in weights)
    figures = [("Hidden kernels' weights per variant after training (log counts)",
                "weight_histograms.png")]
    text = [f"[weight_histograms.png](weight_histograms.png): the hidden kernels' L2 norm "
            f"after training: {norms}; the largest L2 norm of one unit's incoming weights: "
            f"{units}."]
    detection = {}
    if mc:
        scores = {"MC dropout: std of the predicted class": (mc["std"], mc["correct"]),
                  "MC dropout: 1 - mean confidence": (1 - mc["confidence"], mc["correct"]),
                  "one pass: 1 - confidence": (1 - mc["one_pass"], mc["one_pass_correct"])}
        names = ("correct", "wrong")
        if all(0 < ok.sum() < len(ok) for _, ok in scores.values()):
            curves = pd.concat(roc_curves((~ok).astype(int), score, class_names=names)
                               .query("`class` == 'wrong'").assign(**{"class": label})
                               for label, (score, ok) in scores.items())
            detection = {label: float(roc_auc_per_class((~ok).astype(int), score,
                                                        class_names=names)["auc"].iloc[1])
                         for label, (score, ok) in scores.items()}
            save_figure(roc_plot(curves, detection, title="Flagging wrong test predictions"),
                        run_dir / "mc_dropout_error_detection.png")
            figures.append(("ROC of each score as a detector of wrong test predictions",
                            "mc_dropout_error_detection.png"))
            text.append(
                "[mc_dropout_error_detection.png](mc_dropout_error_detection.png): how well "
                "each score ranks the wrong test predictions above the correct ones, AUC "
                + ", ".join(f"{k} {v:.3f}" for k, v in detection.items()) + " (0.5: chance).")
    keys = ("mc_std_error_auc", "mc_confidence_error_auc", "one_pass_confidence_error_auc")
    return figures, "\n\n".join(text), dict(zip(keys, detection.values()))


def _gap_bars(table: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    xs = np.arange(len(table))
    ax.bar(xs - 0.2, table["train_acc"], 0.4, label="training (final weights)")
    ax.bar(xs + 0.2, table["val_acc"], 0.4, label="validation")
    for x, gap, top in zip(xs, table["train_val_gap"], table["train_acc"]):
        ax.annotate(f"{gap:+.3f}", (x, top), ha="center", va="bottom", fontsize=8)
    low = float(min(table["train_acc"].min(), table["val_acc"].min()))
    ax.set_ylim(max(0.0, low - 0.03), 1.01)
    ax.set_xticks(xs, table["variant"], rotation=30, ha="right")
    ax.set_ylabel("accuracy (labels: train - val gap)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def _mc_hist(mc: dict):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0.0, max(0.05, float(mc["std"].max())), 40)
    for mask, label in ((mc["correct"], "correct"), (~mc["correct"], "wrong")):
        if mask.any():
            ax.hist(mc["std"][mask], bins=bins, density=True, alpha=0.5,
                    label=f"{label} ({int(mask.sum())})")
    ax.set_xlabel("std over MC passes of the predicted class's probability")
    ax.set_ylabel("density")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def metrics(table: pd.DataFrame) -> dict:
    """The headline numbers of results.json.

    Args:
        table: the results table, one row per variant, MC dropout included.

    Returns:
        A JSON-ready dict: per variant its train-validation gap and accuracies.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Avoiding Overfitting Through Regularization".
    """
    return {f"{r.variant}_{c}": getattr(r, c) for r in table.itertuples()
            for c in ("train_val_gap", "val_acc", "test_acc")}


def _noise(acc: float, n: int) -> float:
    """Twice the standard error of the difference of two accuracies near `acc` on n images."""
    return 2 * float(np.sqrt(2 * acc * (1 - acc) / n))


def _verdict(diff: float, noise: float) -> str:
    if abs(diff) <= noise:
        return "is unchanged within noise"
    return "rises" if diff > 0 else "falls"


def notes(table: pd.DataFrame, config: Config, n_val: int, n_test: int) -> list[str]:
    """What the run shows, in sentences, each change weighed against the noise level.

    Args:
        table: the results table, one row per variant, MC dropout included.
        config: the regularization experiment's settings.
        n_val: validation images.
        n_test: test images.

    Returns:
        The notes.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Avoiding Overfitting Through Regularization".
    """
    t = table.set_index("variant")
    none = t.loc["none"]
    notes = [
        f"Seed {config.seed}: without regularization the net reaches {none.train_acc:.4f} on "
        "training images and "
        f"{none.val_acc:.4f} on validation: a gap of {none.train_val_gap:+.4f}"
        + (", the overfitting the regularizers should shrink." if none.train_val_gap > 0.01
           else "; too small to call overfitting at these settings.")]
    p = float(none.val_acc)
    se = _noise(p, n_val)
    se_test = _noise(float(none.test_acc), n_test)
    for name, base in (("l2", "none"), ("dropout", "none"), ("max_norm", "none"),
                       ("alpha_dropout", "selu")):
        r, b = t.loc[name], t.loc[base]
        change = r.train_val_gap - b.train_val_gap
        shrinks = ("does NOT shrink" if change > 0 else "shrinks") if abs(change) > se else \
            "barely changes (within noise)"
        diff, diff_test = r.val_acc - b.val_acc, r.test_acc - b.test_acc
        notes.append(
            f"{name} {shrinks} the gap vs {base} ({r.train_val_gap:+.4f} vs "
            f"{b.train_val_gap:+.4f}); validation accuracy {_verdict(diff, se)} "
            f"({r.val_acc:.4f} vs {b.val_acc:.4f}, {diff:+.4f}, noise level {se:.4f}), test "
            f"accuracy {_verdict(diff_test, se_test)} ({r.test_acc:.4f} vs {b.test_acc:.4f}, "
            f"{diff_test:+.4f}, noise level {se_test:.4f}).")
    if none.best_epoch < config.epochs and none.best_val_acc - none.val_acc > se:
        notes.append(
            f"Unregularized validation accuracy peaked at epoch {int(none.best_epoch)} "
            f"({none.best_val_acc:.4f}) and ended at {none.val_acc:.4f}: early stopping would "
            "keep the peak.")
    d, mc = t.loc["dropout"], t.loc["mc_dropout"]
    notes.append(
        f"MC dropout ({config.mc_samples} passes) vs the same dropout model in one "
        f"deterministic pass: test accuracy {mc.test_acc:.4f} vs {d.test_acc:.4f}, test log "
        f"loss {mc.test_nll:.4f} vs {d.test_nll:.4f}, mean confidence on wrong predictions "
        f"{mc.conf_wrong:.3f} vs {d.conf_wrong:.3f} (lower: less overconfident).")
    if np.isfinite(mc.mc_std_wrong) and np.isfinite(mc.mc_std_correct):
        ratio = mc.mc_std_wrong / max(mc.mc_std_correct, 1e-12)
        notes.append(
            f"MC dropout's uncertainty: the predicted class's probability varies over passes "
            f"with mean std {mc.mc_std_wrong:.3f} on wrong test predictions vs "
            f"{mc.mc_std_correct:.3f} on correct ones ({ratio:.1f}x): "
            + ("the spread flags the predictions to distrust." if ratio > 1.5 else
               "too small a difference to flag wrong predictions."))
    best = t["val_acc"].idxmax()
    notes.append(f"Seed {config.seed}: best validation accuracy {best} "
                 f"({t.loc[best, 'val_acc']:.4f}), one untuned setting per regularizer. Noise "
                 "level above: twice the binomial "
                 "standard error of the difference of two accuracies (near the unregularized "
                 f"net's, on {n_val:,} validation or {n_test:,} test images).")
    if config.quick:
        notes.append(quick_note())
    return notes


def normalization_note(histories, data) -> list[str]:
    """Flag the SELU nets' Keras val_loss when unseen pixels blow up the standardization.

    Args:
        histories: per variant, its Keras history.
        data: the training, validation and test data.

    Returns:
        One note, or none when the SELU nets' val_loss stays within 10x of the others'.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "SELU" (standardized inputs).
    """
    flat = data["x_train"].reshape(len(data["x_train"]), -1)
    constant = flat.std(axis=0) == 0
    touched = {s: int((data[f"x_{s}"].reshape(len(data[f"x_{s}"]), -1)[:, constant] > 0)
                      .any(axis=1).sum()) for s in ("valid", "test")}
    worst = max(max(histories[k].history["val_loss"]) for k in ("selu", "alpha_dropout"))
    if worst < 10 * max(max(h.history["val_loss"]) for h in histories.values()
                        if h is not histories["selu"] and h is not histories["alpha_dropout"]):
        return []
    return [
        f"The SELU nets' Keras val_loss reaches {worst:.3g}: {int(constant.sum())} pixels are "
        "constant in the training subset, Keras's Normalization divides by max(std, 1e-7), "
        f"and the {touched['valid']} validation ({touched['test']} test) images with ink on "
        "such a pixel get inputs near 1e7 and a huge cross-entropy. They can cost at most "
        f"{touched['valid'] / len(data['x_valid']):.2%} of validation accuracy; test_nll "
        "clips probabilities at 1e-12, so each adds at most 27.6 / "
        f"{len(data['x_test']):,} to it. The loss figure uses a log scale."]


def intro(config: Config, n: int) -> str:
    """The report's first paragraph: the net, the subset and the variants.

    Args:
        config: the regularization experiment's settings.
        n: training images the training accuracy is measured on.

    Returns:
        The paragraph.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Avoiding Overfitting Through Regularization".
    """
    return (
        f"MLP {' x '.join(map(str, config.hidden_units))}, softmax output, trained on a "
        f"SUBSET of {config.train_size:,} MNIST training images (so that overfitting shows "
        f"within minutes) for {config.epochs} epoch(s) with {config.optimizer} at learning "
        f"rate {config.learning_rate:g}, batch {config.batch_size}, seed {config.seed} "
        "re-applied before each variant; validation: the usual 5,000 held-out images, test: "
        "the 10,000 test images. Training accuracy is measured on the final weights (dropout "
        f"off), on {n:,} training images. MC dropout reuses the trained dropout model "
        "(no retraining). The SELU nets standardize their inputs with a Normalization layer "
        "and use LeCun initialization; alpha dropout is compared with the plain SELU net.")
