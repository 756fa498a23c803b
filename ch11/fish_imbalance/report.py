"""The imbalance study's report: the spread over seeds, the gradients, the answer in words.

Reference: Géron, Hands-On ML (3rd ed.), ch. 3 (ROC AUC, precision and recall) and ch. 11.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ch11._evidence import Evidence, effect, seed_summary
from ch11._fish import PHOTOS, FishSplits
from recipes.plots import spread_bars
from recipes.runs import markdown_table, save_figure

__all__ = ["agreement", "effect", "evidence", "figures", "intro", "metrics", "notes", "sections",
           "summary"]

_COLUMNS = ("rare_auc", "rare_recall", "rare_precision", "rare_train_recall", "test_acc",
            "macro_auc")


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per remedy: mean, std, min and max over seeds of every figure."""
    rows = []
    for remedy, group in table.groupby("remedy", sort=False):
        row: dict[str, Any] = {"remedy": remedy, "seeds": len(group)}
        for col in _COLUMNS:
            values = group[col].to_numpy(dtype=float)
            row[f"{col}_mean"] = float(np.nanmean(values)) if np.isfinite(values).any() \
                else np.nan
            row[f"{col}_std"] = float(np.nanstd(values)) if np.isfinite(values).any() \
                else np.nan
            row[f"{col}_min"] = float(np.nanmin(values)) if np.isfinite(values).any() \
                else np.nan
            row[f"{col}_max"] = float(np.nanmax(values)) if np.isfinite(values).any() \
                else np.nan
        row["mistaken_for"] = ", ".join(dict.fromkeys(group["mistaken_for"]))
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(row: pd.Series, col: str) -> str:
    mean, std = row[f"{col}_mean"], row[f"{col}_std"]
    return "nan" if not np.isfinite(mean) else f"{mean:.3f} ± {std:.3f}"


def _summary_markdown(summary: pd.DataFrame) -> str:
    shown = pd.DataFrame({
        "remedy": summary["remedy"], "seeds": summary["seeds"],
        **{col: [_cell(r, col) for _, r in summary.iterrows()] for col in _COLUMNS},
        "mistaken for (count)": summary["mistaken_for"],
    })
    return markdown_table(shown)


def figures(run_dir: Path, table: pd.DataFrame, rare_name: str) -> list[tuple[str, str]]:
    """The rare class's AUC, recall and precision per remedy, every seed shown."""
    fig = spread_bars(table, "remedy", ["rare_auc", "rare_recall", "rare_precision"],
                      title=f"'{rare_name}' on the test split: mean, min-max and each seed")
    save_figure(fig, run_dir / "rare_class.png")
    fig = spread_bars(table, "remedy", ["test_acc", "macro_auc"],
                      title="All classes: test accuracy and macro AUC per remedy")
    save_figure(fig, run_dir / "overall.png")
    return [(f"The rare class '{rare_name}' per remedy", "rare_class.png"),
            ("Overall accuracy and macro AUC per remedy", "overall.png")]


def metrics(summary: pd.DataFrame) -> dict[str, float]:
    """Each remedy's means and standard deviations, for results.json."""
    return {f"{r['remedy']}_{col}_{stat}": float(r[f"{col}_{stat}"])
            for _, r in summary.iterrows() for col in _COLUMNS for stat in ("mean", "std")}


def intro(config: Any, data: FishSplits, rare: int, policy: str) -> str:
    """The report's first paragraph."""
    name = data.class_names[rare]
    return (f"The rare class is **{name}**: {int(np.sum(data.y['train'] == rare))} of "
            f"{len(data.y['train']):,} training photos, {int(np.sum(data.y['test'] == rare))} "
            f"test photos. The same CNN from scratch (ch11._fish.recipe_spec) at "
            f"{config.image_size}x{config.image_size}, 1cycle peak {config.learning_rate:g}, "
            f"up to {config.epochs} epochs with early stopping, seeds "
            f"{', '.join(map(str, config.seeds))} (the splits are fixed by --seed "
            f"{config.seed}); dtype policy {policy}. Test split: {data.sources['test']}.")


def sections(summary: pd.DataFrame, shares: pd.DataFrame, data: FishSplits,
             rare: int) -> list[tuple[str, str]]:
    """The summary over seeds and the gradient shares."""
    shares = shares.copy()
    return [
        ("Mean ± std over seeds", _summary_markdown(summary) +
         "\n\n`rare_train_recall`: the rare class's recall on its own training photos (how "
         "well the model fits the photos it learned from)."),
        (f"The rare class's share of the gradient ({data.class_names[rare]})",
         markdown_table(shares) + "\n\n`rare_weight_share`: its share of the loss's total "
         "weight (count x class weight); `rare_gradient_share`: the norm of its photos' "
         "gradient over the norm of the whole training loss's gradient "
         "(`recipes.diagnosis.measures.class_gradient_shares`); above 1 when the other "
         "classes' gradients cancel out (they are fitted) while the rare photos' do not."),
    ]


def notes(summary: pd.DataFrame, shares: pd.DataFrame, data: FishSplits, rare: int,
          config: Any) -> list[str]:
    """The answer in plain words, computed from the numbers."""
    name = data.class_names[rare]
    s = summary.set_index("remedy")
    out = []
    if "none" in s.index:
        auc = s.loc["none", "rare_auc_mean"]
        others = s.loc["none", "macro_auc_mean"]
        recall = s.loc["none", "rare_recall_mean"]
        where = "sits near" if auc < 0.65 else "does NOT sit near"
        text = (f"With the plain loss, '{name}' {where} the course's AUC 0.55: its test AUC "
                f"is {_cell(s.loc['none'], 'rare_auc')} "
                f"(macro AUC over all classes {others:.3f}), its recall "
                f"{_cell(s.loc['none'], 'rare_recall')}.")
        if auc >= 0.8 and recall < 0.5:
            text += (" A high AUC with a low recall: the model ranks most rare photos above "
                     "most others, but rarely high enough to win the argmax.")
        out.append(text)
        for remedy in [r for r in s.index if r != "none"]:
            out.append(f"{remedy} vs plain: rare AUC {effect(summary, remedy, 'rare_auc')}, "
                       f"rare recall {effect(summary, remedy, 'rare_recall')}, rare precision "
                       f"{effect(summary, remedy, 'rare_precision')}, test accuracy "
                       f"{effect(summary, remedy, 'test_acc')}.")
    if {"none", "class_weight"} <= set(s.index) and len(shares):
        init = shares[shares["when"] == "at initialization"].set_index("class_weights")
        after = shares[shares["when"].str.contains("after")]
        text = (f"Why class weights alone do what they do: at initialization the rare photos "
                f"carry {init.loc['no', 'rare_weight_share']:.1%} of the loss's weight and "
                f"their gradient is {init.loc['no', 'rare_gradient_share']:.2f}x the norm of "
                f"the whole loss's; class weights (x{init.loc['yes', 'rare_weight']:.1f} on "
                f"each rare photo) raise that to {init.loc['yes', 'rare_weight_share']:.1%} "
                f"and {init.loc['yes', 'rare_gradient_share']:.2f}x.")
        trained = after[after["class_weights"] == "no"].set_index("when")
        plain_after = trained.filter(like="(none)", axis=0)
        weighted_after = trained.filter(like="(class_weight)", axis=0)
        if len(plain_after) and len(weighted_after):
            text += (f" After training without weights, the rare photos' (unweighted) gradient "
                     f"is {plain_after['rare_gradient_share'].iloc[0]:.2f}x the whole loss's: "
                     "the common classes are fitted and their gradients cancel, the rare "
                     "photos still pull; after training with weights it is "
                     f"{weighted_after['rare_gradient_share'].iloc[0]:.2f}x: they are fitted "
                     "too.")
        cw = s.loc["class_weight"]
        fits = cw["rare_train_recall_mean"] >= 0.9
        text += (f" The weighted model {'fits' if fits else 'does not fit'} its "
                 f"{int(np.sum(data.y['train'] == rare))} rare training photos (recall "
                 f"{_cell(cw, 'rare_train_recall')} on them, plain "
                 f"{_cell(s.loc['none'], 'rare_train_recall')}) and its test recall is "
                 f"{_cell(cw, 'rare_recall')}")
        text += (": weights make the few photos count, they cannot add the variety that more "
                 "photos would bring, so the features that separate the rare species from its "
                 "look-alike stay weak." if fits and cw["rare_recall_mean"] < 0.9 else ".")
        out.append(text)
        out.append(f"What the rare photos are mistaken for (plain model, per seed): "
                   f"{s.loc['none', 'mistaken_for']}.")
    if "threshold" in s.index:
        out.append("Threshold moving changes only the decision, not the ranking: its AUC is "
                   f"{_cell(s.loc['threshold'], 'rare_auc')} (plain: "
                   f"{_cell(s.loc['none'], 'rare_auc')}) while its recall is "
                   f"{_cell(s.loc['threshold'], 'rare_recall')}.")
    n_test = int(np.sum(data.y["test"] == rare))
    out.append(f"The rare class has {n_test} test photos: one photo moves its recall by "
               f"{1 / max(n_test, 1):.2f}, hence the spread over seeds; a difference is called "
               "an effect above only when it exceeds that spread.")
    if len(config.seeds) < 2:
        out.append("One seed only: no spread, no effect can be told from noise.")
    return out


def agreement(summary: pd.DataFrame, rare_name: str) -> str:
    """One line: the plain model's rare-class AUC against the course's 0.55."""
    from ch11.imbalance.report import COURSE_AUC

    s = summary.set_index("remedy")
    if "none" not in s.index:
        return "no plain-loss model in this run: nothing to set beside the course's figure."
    auc, recall = s.loc["none", "rare_auc_mean"], s.loc["none", "rare_recall_mean"]
    if auc <= COURSE_AUC + 0.1:
        return (f"agrees with the course: '{rare_name}' has a test AUC of {auc:.3f} with the "
                f"plain loss (the course's {COURSE_AUC}).")
    return (f"does not agree with the course's AUC {COURSE_AUC}: '{rare_name}' has a test AUC "
            f"of {auc:.3f} with the plain loss; what stays low is its recall ({recall:.2f}).")


def evidence(table: pd.DataFrame, summary: pd.DataFrame, headline: str, rare_name: str,
             config: Any) -> Evidence:
    """The headline with its spread over seeds and the course's figure beside it.

    Args:
        table: one row per remedy and seed.
        summary: `summary(table)`.
        headline: the report's first note.
        rare_name: the rare class.
        config: the study's settings.

    Returns:
        The `Evidence` (results.json's ``evidence`` entry, the README table's row).
    """
    from ch11.imbalance.report import BOOK

    columns = ("rare_auc", "rare_recall")
    return Evidence(headline, tuple(config.seeds), seed_summary(table, "remedy", columns),
                    columns, BOOK, agreement(summary, rare_name),
                    "one seed was asked for (--seeds)" if len(config.seeds) < 3 else "",
                    table[["remedy", "seed", *columns]], data=PHOTOS)
