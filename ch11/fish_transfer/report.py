"""The transfer experiment's report: B's figures per variant over seeds, in words.

Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Transfer Learning with Keras".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ch11._evidence import Evidence, is_effect, seed_summary
from ch11._fish import PHOTOS, FishSplits
from recipes.plots import learning_curves, spread_bars
from recipes.runs import markdown_table, save_figure

__all__ = ["agreement", "evidence", "figures", "intro", "metrics", "notes", "sections",
           "summary"]

_COLUMNS = ("auc", "balanced_accuracy", "rare_recall", "accuracy")


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per variant: mean, std, min and max over seeds."""
    grouped = table.groupby("variant", sort=False)
    out = pd.DataFrame({"seeds": grouped.size()})
    for col in _COLUMNS:
        for stat in ("mean", "std", "min", "max"):
            out[f"{col}_{stat}"] = grouped[col].agg(stat if stat != "std" else
                                                    (lambda v: float(np.std(v))))
    wins = table.pivot(index="seed", columns="variant", values="auc")
    if "scratch" in wins:
        for variant in wins.columns:
            out.loc[variant, "beats_scratch"] = int(np.sum(wins[variant] > wins["scratch"]))
    return out.reset_index()


def figures(run_dir: Path, table: pd.DataFrame, histories: dict, config: Any) -> list:
    """B's figures per variant (every seed a dot) and the first seed's learning curves."""
    save_figure(spread_bars(table, "variant", list(_COLUMNS),
                            title="Task B on the validation photos: mean, min-max, each seed"),
                run_dir / "transfer.png")
    seed = config.seeds[0]
    curves = {v: histories[f"b_{v}_s{seed}"] for v in table["variant"].unique()}
    save_figure(learning_curves(curves, title=f"Task B learning curves, seed {seed}"),
                run_dir / "b_curves.png")
    save_figure(learning_curves({"model A": histories["model_a"]},
                                title="Model A (task A) learning curves"),
                run_dir / "a_curves.png")
    return [("Task B per variant", "transfer.png"), ("Task B learning curves", "b_curves.png"),
            ("Model A learning curves", "a_curves.png")]


def metrics(summary: pd.DataFrame) -> dict[str, float]:
    """Each variant's mean and std, for results.json."""
    return {f"{r['variant']}_{col}_{stat}": float(r[f"{col}_{stat}"])
            for _, r in summary.iterrows() for col in _COLUMNS for stat in ("mean", "std")}


def intro(config: Any, data: FishSplits, data_a: FishSplits, a_acc: float, policy: str) -> str:
    """The report's first paragraph."""
    weights = ("no ImageNet weights (--weights none: every model here is trained on these "
               "photos only)" if config.weights.lower() == "none"
               else f"MobileNetV2 weights: {config.weights}")
    return (f"Model A: {len(data_a.class_names)} classes, {len(data_a.y['train']):,} training "
            f"photos, validation accuracy {a_acc:.4f}. Task B: {', '.join(config.b_classes)}, "
            f"{config.b_per_class} training photos per class (drawn per seed), evaluated on the "
            f"validation folder's {' and '.join(config.b_classes)} photos. {weights}. "
            f"{config.image_size}x{config.image_size}, seeds "
            f"{', '.join(map(str, config.seeds))}; dtype policy {policy}.")


def _fmt(row: pd.Series, col: str) -> str:
    return f"{row[f'{col}_mean']:.3f} ± {row[f'{col}_std']:.3f}"


def sections(summary: pd.DataFrame, config: Any) -> list[tuple[str, str]]:
    """The table of means over seeds."""
    shown = pd.DataFrame({"variant": summary["variant"], "seeds": summary["seeds"],
                          **{c: [_fmt(r, c) for _, r in summary.iterrows()] for c in _COLUMNS}})
    if "beats_scratch" in summary:
        shown["AUC above scratch (seeds)"] = summary["beats_scratch"].fillna(0).astype(int)
    return [("Task B, mean ± std over seeds", markdown_table(shown) +
             "\n\n`auc`: the rare class against the other; `balanced_accuracy`: the mean of "
             "the two recalls (the plain accuracy mostly counts the common class).")]


def notes(summary: pd.DataFrame, config: Any) -> list[str]:
    """What transfer did for task B, with its spread."""
    s = summary.set_index("variant")
    out = []
    if "scratch" in s.index:
        for variant in [v for v in s.index if v != "scratch"]:
            delta = s.loc[variant, "auc_mean"] - s.loc["scratch", "auc_mean"]
            spread = max(s.loc[variant, "auc_max"] - s.loc[variant, "auc_min"],
                         s.loc["scratch", "auc_max"] - s.loc["scratch", "auc_min"])
            verdict = ("one seed: no spread to compare with" if s.loc[variant, "seeds"] < 2 else
                       "an effect" if abs(delta) > spread else "within noise")
            wins = int(s.loc[variant].get("beats_scratch", 0) or 0)
            out.append(f"{variant} vs scratch: AUC {s.loc['scratch', 'auc_mean']:.3f} -> "
                       f"{s.loc[variant, 'auc_mean']:.3f} ({delta:+.3f}, {verdict}); higher on "
                       f"{wins}/{int(s.loc[variant, 'seeds'])} seeds; balanced accuracy "
                       f"{s.loc['scratch', 'balanced_accuracy_mean']:.3f} -> "
                       f"{s.loc[variant, 'balanced_accuracy_mean']:.3f}.")
    out.append("The book's transfer (MNIST digits -> other digits) reuses features learned on "
               "the same kind of images; here model A learned seafood lying on a tray, task B "
               "is fish photographed underwater or held by anglers: how much of A's features "
               "carry over is what the table measures.")
    if config.weights.lower() == "none":
        out.append("No ImageNet weights were used (offline): pass --weights imagenet where "
                   "Keras can download them (or a weights file) to add a MobileNetV2 B.")
    return out


def agreement(summary: pd.DataFrame) -> str:
    """One line: B on A's layers against B from scratch, beside the book's -24.5% error."""
    from ch11.transfer.report import BOOK_CHANGE

    s = summary.set_index("variant")
    reused = [v for v in ("fine_tuned", "frozen") if v in s.index]
    if "scratch" not in s.index or not reused:
        return "no B-from-scratch and B-on-A pair in this run: nothing to compare."
    best = max(reused, key=lambda v: s.loc[v, "auc_mean"])
    delta = s.loc[best, "auc_mean"] - s.loc["scratch", "auc_mean"]
    verdict = is_effect(summary, best, "auc", "scratch")
    where = (f"the better reuse ({best}) has a bass-vs-other AUC of {s.loc[best, 'auc_mean']:.3f} "
             f"vs {s.loc['scratch', 'auc_mean']:.3f} from scratch ({delta:+.3f}); the book's "
             f"error change is {BOOK_CHANGE:+.1%}")
    if delta > 0 and verdict:
        return f"agrees: {where}, and ours exceeds the spread over seeds."
    if verdict is None:
        return f"one seed, no spread: {where}."
    if delta > 0:
        return f"does not agree beyond noise: {where}, within the spread over seeds."
    return (f"does not agree: {where}; layers learned on seafood lying on a tray do not help "
            "task B (fish underwater or held by anglers): "
            + ("lower, beyond the spread over seeds." if verdict else
               "lower on average, within the spread over seeds."))


def evidence(table: pd.DataFrame, summary: pd.DataFrame, headline: str,
             config: Any) -> Evidence:
    """The headline with its spread over seeds and the book's transfer figure beside it.

    Args:
        table: one row per seed and B variant.
        summary: `summary(table)`.
        headline: the report's first note.
        config: the experiment's settings.

    Returns:
        The `Evidence` (results.json's ``evidence`` entry, the README table's row).
    """
    from ch11.transfer.report import BOOK

    columns = ("auc", "balanced_accuracy")
    return Evidence(headline, tuple(config.seeds), seed_summary(table, "variant", columns),
                    columns, BOOK, agreement(summary),
                    "one seed was asked for (--seeds)" if len(config.seeds) < 3 else "",
                    table[["variant", "seed", *columns]], data=PHOTOS)
