"""The class-imbalance experiment's report: figures, sections, notes, metrics, intro."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ch11._evidence import BookFigure, Evidence, effect, seeds_note, spread
from ch11._text import quick_note
from ch11.imbalance.config import Config
from recipes.runs import save_figure

__all__ = ["BOOK", "COURSE_AUC", "FISH", "HEADLINE_COLUMNS", "agreement", "evidence", "figures",
           "headline", "intro", "metrics", "notes", "sections"]

HEADLINE_COLUMNS = ("minority_recall", "minority_precision", "minority_auc", "test_acc")
COURSE_AUC = 0.55  # the course's claim: the rare class's AUC stays near it
FISH = ("`make recipe-fish-imbalance` (package `ch11/fish_imbalance`, reports in "
        "[runs/fish_imbalance/](../../fish_imbalance/))")
BOOK = BookFigure(
    claim="the course's claim: a rare class keeps an AUC near 0.55 while the other classes "
          "pass 0.85",
    figure=None,
    setting="the claim is the course's, not the book's; the book measures recall, precision "
            "and ROC AUC (chapter 3) but trains no rare-class net",
    dataset="the course's fish photos")


def headline(summary: pd.DataFrame, seeds: Sequence[int], why: str, config: Config) -> str:
    """The rare digit's AUC and recall with the plain loss, each treatment's change, over
    seeds.

    Args:
        summary: `ch11._evidence.seed_summary` per treatment.
        seeds: the training seeds (the rare images kept are those of ``config.seed``).
        why: why fewer than 3 seeds.
        config: the imbalance experiment's settings.

    Returns:
        The sentence.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3, "Performance Measures".
    """
    d = config.digit
    text = (f"Digit {d} cut to {config.keep_fraction:.0%} of its training images, "
            f"{seeds_note(seeds, why)}")
    names = list(summary["treatment"])
    if "plain" in names:
        text += (f": plain cross-entropy gives it a test AUC of "
                 f"{spread(summary, 'plain', 'minority_auc', digits=4)} and a recall of "
                 f"{spread(summary, 'plain', 'minority_recall')}")
        changes = [f"{t} {effect(summary, t, 'minority_recall', 'plain')}"
                   for t in names if t != "plain"]
        if changes:
            text += "; recall vs plain: " + ", ".join(changes)
    return text + "."


def agreement(summary: pd.DataFrame) -> str:
    """One line: is the rare digit's AUC near the course's 0.55? Where the claim is tested."""
    s = summary.set_index("treatment")
    if "plain" not in s.index:
        return f"not tested here (no plain run); the course's claim is tested by {FISH}."
    auc = s.loc["plain", "minority_auc_mean"]
    near = auc <= COURSE_AUC + 0.1
    return (f"{'agrees' if near else 'does not agree'}: the rare digit's AUC is {auc:.4f} "
            f"with the plain loss ({'near' if near else 'far from'} the course's "
            f"{COURSE_AUC}). MNIST's digits stay separable; the course's claim is tested on "
            f"its fish photos by {FISH}.")


def evidence(summary: pd.DataFrame, per_seed: pd.DataFrame, seeds: Sequence[int], why: str,
             config: Config) -> Evidence:
    """The headline with its spread over seeds, and where the course's claim is tested."""
    return Evidence(headline(summary, seeds, why, config), tuple(seeds), summary,
                    HEADLINE_COLUMNS, BOOK, agreement(summary), why, per_seed)


def figures(run_dir: Path, classes: pd.DataFrame, confusions: Mapping[str, pd.DataFrame],
            config: Config) -> list[tuple[str, str]]:
    """Draw per-class recall/AUC bars and the confusion matrices.

    Args:
        run_dir: the run folder.
        classes: the per-class test numbers (per_class.csv).
        confusions: per treatment, its test confusion matrix.
        config: the imbalance experiment's settings.

    Returns:
        The report's (caption, file) pairs.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3, "Performance Measures"; ch. 10
    (``class_weight``).
    """
    import matplotlib.pyplot as plt

    treatments = list(confusions)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    width = 0.8 / len(treatments)
    for i, t in enumerate(treatments):
        part = classes[classes["treatment"] == t]
        for ax, col in zip(axes, ("recall", "auc")):
            ax.bar(part["index"] + (i - (len(treatments) - 1) / 2) * width, part[col],
                   width, label=t)
    for ax, col in zip(axes, ("recall", "one-vs-rest AUC")):
        ax.set_xticks(range(10))
        ax.set_xlabel(f"digit (digit {config.digit} is the rare one)")
        ax.set_ylabel(f"test {col}")
        ax.grid(alpha=0.3, axis="y")
    lows = classes["auc"].min()
    axes[1].set_ylim(min(0.5, lows - 0.01), 1.0)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(treatments), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    save_figure(fig, run_dir / "per_class.png")

    fig, axes = plt.subplots(1, len(treatments), figsize=(4.2 * len(treatments), 4),
                             squeeze=False)
    for ax, t in zip(axes[0], treatments):
        m = confusions[t].to_numpy()
        rates = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(m):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black")
        ax.set_title(t)
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    fig.suptitle("Test confusion matrices (colour: fraction of the true row)")
    fig.tight_layout()
    save_figure(fig, run_dir / "confusion.png")
    return [("Per-class test recall and one-vs-rest AUC, per treatment", "per_class.png"),
            ("Test confusion matrices (counts; colour = share of the true class)",
             "confusion.png")]


def sections(counts: pd.DataFrame, confusions: Mapping[str, pd.DataFrame],
             findings: Mapping[str, list], config: Config) -> list[tuple[str, str]]:
    """The report's extra sections: counts, the rare digit's row, diagnose's findings.

    Args:
        counts: the class counts before and after.
        confusions: per treatment, its test confusion matrix.
        findings: per treatment, what `recipes.diagnosis.doctor.diagnose` found.
        config: the imbalance experiment's settings.

    Returns:
        (title, Markdown) pairs.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3, "Performance Measures"; ch. 10
    (``class_weight``).
    """
    lines = ["| digit | train (before) | train | valid | test |", "|---|---|---|---|---|"]
    lines += [f"| {r.digit} | {r.train_before} | {r.train} | {r.valid} | {r.test} |"
              for r in counts.itertuples()]
    rows = ["| treatment | " + " | ".join(f"pred {j}" for j in range(10)) + " |",
            "|---|" + "---|" * 10]
    for t, m in confusions.items():
        rows.append(f"| {t} | " + " | ".join(str(v) for v in m.iloc[config.digit]) + " |")
    diag = [f"- **{t}**: " + (" ".join(f"[{f.severity}] {f.kind}: {f.message}" for f in found)
                              or "nothing found.") for t, found in findings.items()]
    fish = (f"The course's claim (a rare class stuck near AUC {COURSE_AUC} while the others "
            f"pass 0.85) does not show on MNIST, whose digits stay separable even when one is "
            f"rare. It is tested on the course's own data, the fish photos, by {FISH}: the same "
            "remedies (class weights, focal loss, oversampling, threshold moving) over seeds, "
            "with the rare species' AUC, recall and precision and its share of the gradient.")
    return [("Where the course's claim is tested", fish), ("Class counts", "\n".join(lines)),
            (f"Where the test images of digit {config.digit} go", "\n".join(rows)),
            ("What `recipes.diagnosis.doctor.diagnose` finds (validation set)", "\n".join(diag))]


def notes(table: pd.DataFrame, config: Config) -> list[str]:
    """What the run shows, in sentences: the rare digit's recall and AUC per treatment.

    Args:
        table: the results table, one row per treatment.
        config: the imbalance experiment's settings.

    Returns:
        The notes.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3, "Performance Measures"; ch. 10
    (``class_weight``); Lin et al., "Focal Loss for Dense Object Detection" (2017).
    """
    t = table.set_index("treatment")
    d = config.digit
    notes = []
    if "plain" in t.index:
        p = t.loc["plain"]
        gap = p["others_median_auc"] - p["minority_auc"]
        if p["minority_auc"] <= 0.6 and p["others_median_auc"] >= 0.85:
            verdict = ("reproduces the course's 'one class stuck near chance AUC while the "
                       "others pass 0.85'")
        elif gap >= 0.15:
            verdict = (f"shows a clearly lagging class ({gap:.2f} below the others' median), "
                       "though not stuck at chance like the course's 0.55")
        else:
            verdict = ("does NOT reproduce an AUC stuck near 0.55: the net still ranks the "
                       "rare digit's images high (AUC is about ranking) but puts another digit "
                       f"first for {1 - p['minority_recall']:.0%} of them (recall is where the "
                       "imbalance shows)")
        notes.append(
            f"Seed {config.seed}, plain cross-entropy with {p['minority_train']} training images "
            f"of digit {d}: "
            f"its test recall is {p['minority_recall']:.3f} (lowest other digit: "
            f"{p['others_min_recall']:.3f}) and its AUC {p['minority_auc']:.4f} (median of the "
            f"others {p['others_median_auc']:.4f}); this {verdict}. "
            + (f"diagnose() flags as lagging: {p['lagging_found']}." if p["lagging_found"] != "none"
               else f"diagnose() flags no lagging class: it compares AUCs (a class 0.15 or more "
                    f"below the others' median), and digit {d}'s is only {gap:.3f} below; the "
                    f"lowest recall, though, is digit {p['lowest_recall_class']}'s."))
    for name in t.index.drop("plain", errors="ignore"):
        r = t.loc[name]
        base = t.loc["plain"] if "plain" in t.index else None
        change = (f" ({r['minority_recall'] - base['minority_recall']:+.3f} vs plain; test "
                  f"accuracy {r['test_acc'] - base['test_acc']:+.4f})" if base is not None else "")
        notes.append(f"{name}: digit {d}'s recall {r['minority_recall']:.3f}{change}, precision "
                     f"{r['minority_precision']:.3f}, AUC {r['minority_auc']:.4f}; lagging "
                     f"class found: {r['lagging_found']}.")
    best = t["minority_recall"].idxmax()
    plain_precision = (f" (plain: {t.loc['plain', 'minority_precision']:.3f})"
                       if "plain" in t.index else "")
    cost = ""
    if "plain" in t.index and np.isfinite(t.loc["plain", "minority_precision"]):
        drop = t.loc["plain", "minority_precision"] - t.loc[best, "minority_precision"]
        cost = (f": the recall was bought with {drop:.3f} of precision, as the model predicts "
                f"digit {d} more often" if drop > 0.02 else
                ": at almost no cost in precision here")
    notes.append(f"Best treatment for the rare digit's recall here: {best} "
                 f"({t.loc[best, 'minority_recall']:.3f}); its precision on digit {d} is "
                 f"{t.loc[best, 'minority_precision']:.3f}{plain_precision}{cost}.")
    if config.quick:
        notes.append(quick_note())
    return notes


def metrics(table: pd.DataFrame, counts: pd.DataFrame, config: Config) -> dict:
    """The headline numbers of results.json.

    Args:
        table: the results table, one row per treatment.
        counts: the class counts.
        config: the imbalance experiment's settings.

    Returns:
        A JSON-ready dict: per treatment the rare digit's recall and AUC, and the counts.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3, "Performance Measures"; ch. 10
    (``class_weight``).
    """
    out = {f"{r.treatment}_{c}": getattr(r, c) for r in table.itertuples()
           for c in ("minority_recall", "minority_auc", "test_acc")}
    out["train_counts"] = counts["train"].tolist()
    out["test_counts"] = counts["test"].tolist()
    return out


def intro(config: Config, counts: pd.DataFrame) -> str:
    """The report's first paragraph: the imbalance and the treatments.

    Args:
        config: the imbalance experiment's settings.
        counts: the class counts.

    Returns:
        The paragraph.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3, "Performance Measures"; ch. 10
    (``class_weight``).
    """
    c = counts.set_index("digit").loc[config.digit]
    return (
        f"Digit {config.digit} keeps {config.keep_fraction:g} of its training images "
        f"({c['train']} of {c['train_before']}); every other digit, the validation set and the "
        f"test set are untouched. MLP {'-'.join(map(str, config.hidden_units))} (ReLU, He "
        f"init), optimizer {config.optimizer} at {config.learning_rate:g}, batch "
        f"{config.batch_size}, {config.epochs} epoch(s), seed {config.seed} re-applied before "
        f"each treatment. class_weights: `class_weights(y_train)` in `fit(class_weight=...)`; "
        f"focal: `make_loss('focal', gamma={config.focal_gamma:g})`; oversampling: the rare "
        "digit's images repeated up to the median count of the other digits. Per-class "
        "numbers from `recipes.metrics.class_report` on the test set.")
