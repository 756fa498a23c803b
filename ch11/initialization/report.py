"""The initialization experiment's report: figures, notes, headline metrics and intro."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ch11._evidence import BookFigure, Evidence, compare, is_effect, seeds_note
from ch11._text import inputs_text, mnist_text, quick_note
from ch11.initialization.config import Config
from recipes.plots import layer_profile, learning_curves
from recipes.runs import save_figure

__all__ = ["BOOK", "HEADLINE_COLUMNS", "agreement", "evidence", "figures", "headline",
           "headline_rows", "intro", "metrics", "notes"]

HEADLINE_COLUMNS = ("val_acc_epoch1", "val_acc")
BOOK = BookFigure(
    claim="the initialization matched to the activation (table 11-1: Glorot for tanh and "
          "sigmoid, He for the ReLU family, LeCun for SELU) trains a deep net better than a "
          "mismatched one",
    figure=None,
    setting="the chapter states it (table 11-1); its notebook trains no comparison")


def headline_rows(table: pd.DataFrame) -> list[dict]:
    """The headline's values from the full run, one dict per variant."""
    return [{"variant": r.variant, "activation": r.activation, "matched": bool(r.matched),
             "val_acc_epoch1": r.val_acc_epoch1, "val_acc": r.val_acc}
            for r in table.itertuples()]


def _pairs(summary: pd.DataFrame, per_seed: pd.DataFrame) -> list[tuple[str, str, str]]:
    """Per activation with both kinds: (activation, best matched, best mismatched) by mean."""
    kinds = per_seed.drop_duplicates("variant").set_index("variant")
    s = summary.assign(activation=summary["variant"].map(kinds["activation"]),
                       matched=summary["variant"].map(kinds["matched"]))
    out = []
    for activation, group in s.groupby("activation", sort=False):
        matched, other = group[group["matched"]], group[~group["matched"]]
        if len(matched) and len(other):
            out.append((activation, matched.loc[matched["val_acc_mean"].idxmax(), "variant"],
                        other.loc[other["val_acc_mean"].idxmax(), "variant"]))
    return out


def headline(summary: pd.DataFrame, per_seed: pd.DataFrame, seeds: Sequence[int], why: str,
             config: Config) -> str:
    """Per activation, the best matched vs the best mismatched initializer, over seeds.

    Args:
        summary: `ch11._evidence.seed_summary` of the variants.
        per_seed: one row per variant and seed (with ``activation`` and ``matched``).
        seeds: the seeds.
        why: why fewer than 3 seeds.
        config: the initialization experiment's settings.

    Returns:
        The sentence.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, Table 11-1.
    """
    parts = [f"{activation}: " + compare(summary, m, "val_acc", o, names=(
        f"matched {m.split(':')[1]}", f"mismatched {o.split(':')[1]}"))
        for activation, m, o in _pairs(summary, per_seed)]
    return (f"Validation accuracy after {config.epochs} epoch(s), the best matched vs the best "
            f"mismatched initializer per activation, {seeds_note(seeds, why)}: "
            + ("; ".join(parts) or "no activation was run with both kinds") + ".")


def agreement(summary: pd.DataFrame, per_seed: pd.DataFrame) -> str:
    """One line: is the matched initializer ahead, beyond noise, for every activation?"""
    pairs = _pairs(summary, per_seed)
    if not pairs:
        return "not tested: no activation was run with a matched and a mismatched initializer."
    ahead = [a for a, m, o in pairs if is_effect(summary, m, "val_acc", o) is not False
             and summary.set_index("variant").loc[m, "val_acc_mean"]
             > summary.set_index("variant").loc[o, "val_acc_mean"]]
    verdict = "agrees" if len(ahead) == len(pairs) else "partly agrees" if ahead else \
        "does not agree"
    return (f"{verdict}: the matched initializer is ahead (not within noise) for "
            f"{len(ahead)} of {len(pairs)} activations"
            + (f" ({', '.join(ahead)})" if ahead else "") + ".")


def evidence(summary: pd.DataFrame, per_seed: pd.DataFrame, seeds: Sequence[int], why: str,
             config: Config) -> Evidence:
    """The headline with its spread over seeds and the book's (absent) figure."""
    return Evidence(headline(summary, per_seed, seeds, why, config), tuple(seeds), summary,
                    HEADLINE_COLUMNS, BOOK, agreement(summary, per_seed), why, per_seed)


def figures(run_dir: Path, histories, table: pd.DataFrame,
            stats: pd.DataFrame) -> list[tuple[str, str]]:
    """Draw one figure of learning curves per activation and the activation std at init.

    Args:
        run_dir: the run folder.
        histories: per variant (``<activation>_<initializer>``), its Keras history.
        table: the results table, one row per variant (``matched`` tags the curves).
        stats: the hidden activations' statistics at initialization, per variant.

    Returns:
        The report's (caption, file) pairs.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Glorot and He Initialization".
    """
    figures = []
    for activation in dict.fromkeys(table["activation"]):
        group = {}
        for r in table[table["activation"] == activation].itertuples():
            tag = "matched" if r.matched else "mismatched"
            group[f"{r.initializer} ({tag})"] = histories[r.variant.replace(":", "_")]
        name = f"learning_curves_{activation}.png"
        save_figure(learning_curves(group, title=f"{activation}: one initializer per line"),
                    run_dir / name)
        figures.append((f"{activation}: learning curves per initializer (dashed: training, "
                        "solid: validation)", name))
    save_figure(layer_profile(stats, "std", log=True,
                              ylabel="activation std (1,000 training images)",
                              title="Hidden activations' std at initialization"),
                run_dir / "activation_std_init.png")
    figures.append(("Activation std per hidden layer at initialization",
                    "activation_std_init.png"))
    return figures


def metrics(table: pd.DataFrame) -> dict:
    """The headline numbers of results.json: per variant its accuracies.

    Args:
        table: the results table, one row per 'activation:initializer' variant.

    Returns:
        A JSON-ready dict.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Glorot and He Initialization".
    """
    return {f"{r.variant.replace(':', '_')}_{c}": getattr(r, c)
            for r in table.itertuples() for c in ("val_acc_epoch1", "val_acc", "test_acc")}


def notes(table: pd.DataFrame, config: Config) -> list[str]:
    """What the run shows, in sentences, the headline first.

    Args:
        table: the results table, one row per 'activation:initializer' variant.
        config: the initialization experiment's settings.

    Returns:
        The notes.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, Table 11-1.
    """
    notes = []
    for activation, group in table.groupby("activation", sort=False):
        if len(group) < 2:
            continue
        parts = []
        checkpoints = [("val_acc_epoch1", "after epoch 1")]
        if config.epochs > 1:
            checkpoints.append(("val_acc", f"after epoch {config.epochs}"))
        for column, when in checkpoints:
            ranked = group.sort_values(column, ascending=False)
            best = ranked.iloc[0]
            ranking = ", ".join(f"{r.initializer} {getattr(r, column):.4f}"
                                for r in ranked.itertuples())
            tag = "matched" if best["matched"] else "MISMATCHED"
            parts.append(f"{when}: {ranking} (best: the {tag} {best['initializer']})")
        notes.append(f"{activation}, validation accuracy {'; '.join(parts)}.")
    pairs = table[table["matched"]].merge(table[~table["matched"]], on="initializer",
                                          suffixes=("_m", "_x"))
    wins = int((pairs["val_acc_m"] > pairs["val_acc_x"]).sum())
    if len(pairs):
        detail = "; ".join(f"{r.initializer}: {r.activation_m} {r.val_acc_m:.4f} vs "
                           f"{r.activation_x} {r.val_acc_x:.4f}" for r in pairs.itertuples())
        notes.append(f"Per initializer, its matched activation beats the mismatched one in "
                     f"{wins} of {len(pairs)} pairs ({detail}). This compares activations as "
                     "well as initializers; the per-activation lines above hold the "
                     "activation fixed.")
    faded = table[table["init_std_last_layer"] < 0.1]
    if len(faded):
        notes.append("At initialization the last hidden layer's activation std is below 0.1 "
                     "for " + ", ".join(f"{r.variant} ({r.init_std_last_layer:.2g})"
                                        for r in faded.itertuples())
                     + ": the signal fades through the depth when the variance rule does not "
                       "fit the activation.")
    blown = table[table["init_std_last_layer"] > 10]
    if len(blown):
        notes.append("At initialization the last hidden layer's activation std is above 10 for "
                     + ", ".join(f"{r.variant} ({r.init_std_last_layer:.3g})"
                                 for r in blown.itertuples()) + ": the signal grows with depth.")
    he = table[(table["activation"] == "relu")
               & table["initializer"].isin(["he_normal", "he_avg_uniform"])].set_index(
        "initializer")
    if len(he) == 2:
        gap = he.loc["he_avg_uniform", "val_acc"] - he.loc["he_normal", "val_acc"]
        notes.append(f"ReLU with the book's fan_avg He vs plain He (fan_in), seed {config.seed}: "
                     f"validation accuracy {gap:+.4f}. With equal-width hidden layers fan_avg = "
                     "fan_in, so only the first layer's weights differ; the spread over seeds "
                     "below says whether such a gap is more than noise.")
    if config.quick:
        notes.append(quick_note("a shallow net, a small slice and one epoch"))
    headline = []
    for activation, group in table.groupby("activation", sort=False):
        matched, other = group[group["matched"]], group[~group["matched"]]
        if len(matched) and len(other):
            m = matched.loc[matched["val_acc"].idxmax()]
            o = other.loc[other["val_acc"].idxmax()]
            headline.append(f"{activation} {m['initializer']} {m['val_acc_epoch1']:.3f}->"
                            f"{m['val_acc']:.3f} vs {o['initializer']} "
                            f"{o['val_acc_epoch1']:.3f}->{o['val_acc']:.3f}")
    if headline:
        notes.insert(0, f"Seed {config.seed}: matched vs mismatched initializer, validation "
                        "accuracy after epoch 1 "
                        f"-> epoch {config.epochs}: " + "; ".join(headline) + ".")
    return notes


def intro(config: Config) -> str:
    """The report's first paragraph: the net, the variants and the training.

    Args:
        config: the initialization experiment's settings.

    Returns:
        The paragraph.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Glorot and He Initialization".
    """
    return (
        f"MLP: {config.depth} hidden layers x {config.units} units; variants "
        f"(activation:initializer): {', '.join(config.variants)}. 'matched' = the initializer "
        "is of the family Table 11-1 gives for the activation (Glorot for tanh/sigmoid, He for "
        "the ReLU family, LeCun for SELU; he_avg_uniform is the book's fan_avg He). Inputs "
        f"{inputs_text(config.input_norm)}. Every variant: {config.optimizer} (learning rate "
        f"{config.learning_rate:g}), "
        f"batch {config.batch_size}, {config.epochs} epoch(s), seed {config.seed} re-applied "
        f"before each variant, {mnist_text(config.quick)}.")
