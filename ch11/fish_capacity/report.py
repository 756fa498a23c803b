"""The capacity sweep's report: the gap per size, plotted and explained from the numbers.

Reference: Géron, Hands-On ML (3rd ed.), ch. 4 (learning curves) and ch. 11 (regularization).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ch11._evidence import BookFigure, Evidence, is_effect, seed_summary
from ch11._fish import PHOTOS, FishSplits
from recipes.plots import capacity_curves, learning_curves
from recipes.runs import markdown_table, save_figure

__all__ = ["BOOK", "agreement", "evidence", "figures", "headline", "intro", "metrics", "notes",
           "sections", "summary"]

BOOK = BookFigure(
    claim="the course's claim: more capacity took validation accuracy from 85% to 65% while "
          "training accuracy reached 98%",
    figure=None,
    setting="the claim is the course's; the book shows overfitting on learning curves "
            "(chapter 4) and fights it with chapter 11's regularization, without a capacity "
            "sweep",
    dataset=PHOTOS)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per width and regime: parameters, mean and std over seeds of the accuracies and gap."""
    grouped = table.groupby(["dense_units", "regime"], sort=False)
    out = grouped[["params"]].first()
    for col in ("train_acc", "val_acc", "gap", "best_val_acc"):
        out[f"{col}_mean"] = grouped[col].mean()
        out[f"{col}_std"] = grouped[col].std(ddof=0)
    out["seeds"] = grouped.size()
    return out.reset_index()


def figures(run_dir: Path, table: pd.DataFrame, histories: dict, config: Any) -> list:
    """The capacity curves and the learning curves of the smallest and largest heads."""
    save_figure(capacity_curves(table, title=f"{config.per_class} training photos per class: "
                                             "accuracy and gap against capacity"),
                run_dir / "capacity.png")
    out = [("Training and validation accuracy against the parameter count (left), and "
            "their gap (right)", "capacity.png")]
    seed = config.seeds[0]
    for units in (min(config.dense_units), max(config.dense_units)):
        picked = {regime: histories[f"dense{units}_{regime}_s{seed}"]
                  for regime in ("plain", "regularized")}
        name = f"curves_dense{units}.png"
        save_figure(learning_curves(picked, title=f"Dense head of {units} units, seed {seed}"),
                    run_dir / name)
        out.append((f"Learning curves, dense head of {units} units", name))
    return out


def metrics(summary: pd.DataFrame) -> dict[str, float]:
    """Each width and regime's mean accuracies and gap, for results.json."""
    return {f"dense{r.dense_units}_{r.regime}_{col}": float(getattr(r, f"{col}_mean"))
            for r in summary.itertuples() for col in ("train_acc", "val_acc", "gap")}


def intro(config: Any, data: FishSplits, n_train: int, policy: str) -> str:
    """The report's first paragraph."""
    return (f"{n_train} training photos ({config.per_class} per class, drawn with seed "
            f"{config.seed}), validated on {len(data.y['validation']):,} photos "
            f"({data.sources['validation']}), at {config.image_size}x{config.image_size}. "
            f"Conv blocks {config.filters} (stride-2 stem, BN), flattened into a dense head of "
            f"{', '.join(map(str, config.dense_units))} units; 'regularized' adds dropout "
            f"{config.dropout_rate:g}, L2 {config.l2:g} and flip/rotation/zoom augmentation. "
            f"{config.epochs} epochs each (1cycle, peak {config.learning_rate:g}), no early "
            f"stopping, seeds {', '.join(map(str, config.seeds))}; dtype policy {policy}.")


def _fmt(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def sections(summary: pd.DataFrame) -> list[tuple[str, str]]:
    """The table of means over seeds."""
    shown = pd.DataFrame({
        "dense_units": summary["dense_units"], "regime": summary["regime"],
        "params": summary["params"], "seeds": summary["seeds"],
        **{col: [_fmt(m, s) for m, s in zip(summary[f"{col}_mean"], summary[f"{col}_std"])]
           for col in ("train_acc", "val_acc", "gap", "best_val_acc")},
    })
    return [("Mean ± std over seeds", markdown_table(shown))]


def notes(summary: pd.DataFrame, config: Any) -> list[str]:
    """Why more capacity can lower validation accuracy, from the numbers."""
    out = []
    by = {regime: rows.sort_values("params") for regime, rows in summary.groupby("regime")}
    plain = by.get("plain")
    if plain is not None and len(plain) >= 2:
        small, big = plain.iloc[0], plain.iloc[-1]
        out.append(
            f"Plain: from {int(small.params):,} to {int(big.params):,} parameters the "
            f"training accuracy goes {small.train_acc_mean:.3f} -> {big.train_acc_mean:.3f} "
            f"and the validation accuracy {small.val_acc_mean:.3f} -> {big.val_acc_mean:.3f}: "
            f"the gap goes from {small.gap_mean:+.3f} to {big.gap_mean:+.3f}.")
        best = plain.loc[plain["val_acc_mean"].idxmax()]
        text = (f"Plain: the best validation accuracy ({best.val_acc_mean:.3f}) is at "
                f"{int(best.params):,} parameters.")
        if best.params < big.params and big.val_acc_mean < best.val_acc_mean \
                and big.train_acc_mean >= best.train_acc_mean:
            text += (f" Past it, with {config.per_class} photos per class, a bigger head fits "
                     "the training photos as well or better while validating worse: it has "
                     "more ways to fit the photos exactly (their backgrounds, their lighting) "
                     "than so few photos can pin down, so it memorizes instead of generalizing "
                     "(the course's 85% -> 65%).")
        else:
            text += " Validation accuracy did not fall with size in this run."
        out.append(text)
    reg = by.get("regularized")
    if plain is not None and reg is not None:
        gaps = ", ".join(f"{int(u)} units: {p:+.3f} -> {r:+.3f}" for u, p, r in zip(
            plain["dense_units"], plain["gap_mean"], reg.set_index("dense_units")
            .loc[plain["dense_units"], "gap_mean"]))
        out.append(f"Regularization (dropout, L2, augmentation) changes the gap per width: "
                   f"{gaps}.")
        spread = float(np.nanmax(pd.concat([plain["val_acc_std"], reg["val_acc_std"]])))
        out.append(f"The largest spread of a validation accuracy over seeds is {spread:.3f}: "
                   "differences smaller than that are within noise"
                   + (" (one seed: no spread measured)." if len(config.seeds) < 2 else "."))
    return out


def _variants(table: pd.DataFrame) -> pd.DataFrame:
    """The table with one variant name per width and regime, e.g. ``"1024 units, plain"``."""
    return table.assign(variant=[f"{u} units, {r}" for u, r in
                                 zip(table["dense_units"], table["regime"])])


def headline(table: pd.DataFrame, config: Any) -> str:
    """The plain sweep's validation accuracy from the smallest to the largest head, with its
    spread, and what regularization does to the gap.

    Args:
        table: one row per width, regime and seed.
        config: the sweep's settings.

    Returns:
        One sentence with mean ± std over seeds.
    """
    from ch11._evidence import compare, effect, spread

    s = seed_summary(_variants(table), "variant", ("train_acc", "val_acc", "gap"))
    small, big = (f"{min(config.dense_units)} units", f"{max(config.dense_units)} units")
    text = (f"{config.per_class} photos per class, plain: validation accuracy "
            f"{compare(s, f'{big}, plain', 'val_acc', f'{small}, plain', names=(big, small))}"
            f" (training {spread(s, f'{small}, plain', 'train_acc')} -> "
            f"{spread(s, f'{big}, plain', 'train_acc')})")
    regularized, plain = f"{small}, regularized", f"{small}, plain"
    if regularized in set(s["variant"]):
        text += (f"; regularization at {small}: gap {spread(s, regularized, 'gap')} vs plain "
                 f"{spread(s, plain, 'gap')}: {effect(s, regularized, 'gap', plain)}")
    return text + "."


def agreement(table: pd.DataFrame) -> str:
    """One line: does validation accuracy fall with capacity, as the course saw (85% -> 65%)?"""
    s = seed_summary(_variants(table), "variant", ("val_acc",))
    plain = table[table["regime"] == "plain"]
    if plain["dense_units"].nunique() < 2:
        return "one width only: no capacity sweep to compare."
    units = sorted(plain["dense_units"].unique())
    means = {u: s.set_index("variant").loc[f"{u} units, plain", "val_acc_mean"] for u in units}
    best = max(units, key=lambda u: means[u])
    if best == units[-1]:
        return (f"does not agree: validation accuracy did not fall with width "
                f"({means[units[0]]:.3f} at {units[0]} units -> {means[units[-1]]:.3f} at "
                f"{units[-1]}); the gap is set by how few photos there are.")
    fall = is_effect(s, f"{units[-1]} units, plain", "val_acc", f"{best} units, plain")
    where = (f"validation accuracy peaks at {best} units ({means[best]:.3f}) and is "
             f"{means[units[-1]]:.3f} at {units[-1]}")
    return (f"agrees: {where}, a fall beyond the spread over seeds." if fall else
            f"does not agree beyond noise: {where}, within the spread over seeds.")


def evidence(table: pd.DataFrame, config: Any) -> Evidence:
    """The headline with its spread over seeds and the course's claim beside it.

    Args:
        table: one row per width, regime and seed.
        config: the sweep's settings.

    Returns:
        The `Evidence` (results.json's ``evidence`` entry, the README table's row).
    """
    columns = ("train_acc", "val_acc", "gap")
    named = _variants(table)
    return Evidence(headline(table, config), tuple(config.seeds),
                    seed_summary(named, "variant", columns), columns, BOOK, agreement(table),
                    "one or two seeds were asked for (--seeds)" if len(config.seeds) < 3 else "",
                    named[["variant", "seed", *columns]], data=PHOTOS)
