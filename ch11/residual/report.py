"""The skip-connection experiment's report: figures, notes, metrics and intro."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ch11._evidence import BookFigure, Evidence, compare, is_effect, seeds_note, spread
from ch11._text import mnist_text, quick_note
from ch11.residual.config import Config
from recipes.runs import save_figure

__all__ = ["BOOK", "HEADLINE_COLUMNS", "agreement", "evidence", "figures", "headline",
           "headline_plan", "intro", "metrics", "notes", "variant_name"]

HEADLINE_COLUMNS = ("test_acc", "diverged")
BOOK = BookFigure(
    claim="skip connections let the signal and the gradients cross a very deep net, which "
          "then trains where the plain stack does not",
    figure=None,
    setting="the book's residual networks are the CNNs of chapter 14; chapter 11's notebook "
            "trains no residual MLP")


def headline_plan(config: Config) -> list[tuple[str, bool, str]]:
    """The headline's variants ``(activation, residual, batch norm)``: per activation, plain
    and residual without BN, and residual with each other BN placement."""
    plan = []
    for activation in config.activations:
        if "none" in config.batch_norms:
            plan += [(activation, False, "none"), (activation, True, "none")]
        plan += [(activation, True, bn) for bn in config.batch_norms if bn != "none"]
    return plan

_HUGE = 1e3  # a gradient norm above this is called exploding


def variant_name(activation: str, residual: bool, bn: str) -> str:
    """A variant's name in the table, the notes and the figures' legends.

    Args:
        activation: the hidden activation.
        residual: with skip connections.
        bn: the batch-norm placement.

    Returns:
        E.g. ``"relu residual + BN before"``.
    """
    return (f"{activation} {'residual' if residual else 'plain'}"
            + ("" if bn == "none" else f" + BN {bn}"))


def headline(summary: pd.DataFrame, seeds: Sequence[int], why: str, config: Config) -> str:
    """Per activation, residual vs plain (no BN), and the residual nets with BN, over seeds.

    Args:
        summary: `ch11._evidence.seed_summary` of `headline_plan`'s variants.
        seeds: the seeds.
        why: why fewer than 3 seeds.
        config: the residual experiment's settings.

    Returns:
        The sentence.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 14, "ResNet".
    """
    names = set(summary["variant"])
    parts = []
    for activation in config.activations:
        plain = variant_name(activation, False, "none")
        res = variant_name(activation, True, "none")
        if {plain, res} <= names:
            parts.append(f"{activation}: " + compare(summary, res, "test_acc", plain,
                                                     names=("with skips", "without")))
        for bn in config.batch_norms:
            name = variant_name(activation, True, bn)
            if bn != "none" and name in names:
                parts.append(f"{name} {spread(summary, name, 'test_acc')}")
    diverged = [f"{v} in {int(round(r.diverged_mean * r.seeds))}/{int(r.seeds)}"
                for v, r in summary.set_index("variant").iterrows() if r.diverged_mean > 0]
    return (f"{config.depth} layers, test accuracy after {config.epochs} epoch(s), "
            f"{seeds_note(seeds, why)}: " + "; ".join(parts)
            + (f"; diverged: {', '.join(diverged)}" if diverged else "") + ".")


def agreement(summary: pd.DataFrame, config: Config) -> str:
    """One line: do skip connections beat the plain stack beyond noise?"""
    names, found, ahead = set(summary["variant"]), [], []
    s = summary.set_index("variant")
    for activation in config.activations:
        plain = variant_name(activation, False, "none")
        res = variant_name(activation, True, "none")
        if {plain, res} <= names:
            found.append(activation)
            if s.loc[res, "test_acc_mean"] > s.loc[plain, "test_acc_mean"] and \
                    is_effect(summary, res, "test_acc", plain) is not False:
                ahead.append(activation)
    if not found:
        return "not tested: no plain and residual pair without BN."
    verdict = "agrees" if len(ahead) == len(found) else "partly agrees" if ahead else \
        "does not agree"
    return (f"{verdict}: skip connections are ahead (not within noise) for {len(ahead)} of "
            f"{len(found)} activations" + (f" ({', '.join(ahead)})" if ahead else "") + ".")


def evidence(summary: pd.DataFrame, per_seed: pd.DataFrame, seeds: Sequence[int], why: str,
             config: Config) -> Evidence:
    """The headline with its spread over seeds and the book's (absent) figure."""
    return Evidence(headline(summary, seeds, why, config), tuple(seeds), summary,
                    HEADLINE_COLUMNS, BOOK, agreement(summary, config), why, per_seed)


def figures(run_dir, profile: pd.DataFrame, config: Config) -> list[tuple[str, str]]:
    """Draw, per activation, the gradient norm per hidden layer at initialization and after.

    Args:
        run_dir: the run folder.
        profile: layer_gradients.csv's rows (variant, activation, when, depth, grad_norm).
        config: the settings.

    Returns:
        The report's (caption, file) pairs.
    """
    import matplotlib.pyplot as plt

    out = []
    for activation in config.activations:
        part = profile[profile["activation"] == activation]
        fig, axes = plt.subplots(1, 2, figsize=(13, 4), sharey=True)
        for ax, when in zip(axes, ("initialization", "after training")):
            for name, rows in part[part["when"] == when].groupby("variant", sort=False):
                values = rows["grad_norm"].where(rows["grad_norm"] > 0)  # log axis: no 0/NaN
                ax.plot(rows["depth"], values, marker=".", label=name)
            ax.set_yscale("log")
            ax.set_xlabel("hidden layer (0 = next to the input)")
            ax.set_title(f"{when}" + (f" ({config.epochs} epoch(s))"
                                      if when == "after training" else ""))
            ax.grid(alpha=0.3, which="both")
        axes[0].set_ylabel("||dLoss / dKernel|| (probe batch)")
        axes[0].legend(fontsize=8)
        fig.suptitle(f"{activation}: gradient norm per hidden layer, {config.depth} layers")
        fig.tight_layout()
        file = f"gradients_{activation}.png"
        save_figure(fig, run_dir / file)
        out.append((f"{activation}: gradient norm per hidden kernel (log scale; a layer whose "
                    "gradient is 0 or not finite is not drawn)", file))
    return out


def _verdict(row: pd.Series) -> str:
    ratio, zeros, top = (row["first_over_last_init"], row["zero_grad_layers_init"],
                         row["grad_max_init"])
    if not np.isfinite(top):
        return "are not finite"
    if top > _HUGE:
        return f"explode, norms up to {top:.3g},"
    if zeros > 0 or ratio < 0.1:
        return "vanish toward the input" + (f", {zeros} layers getting exactly 0," if zeros else "")
    if ratio > 10:
        return "grow toward the input"
    return "stay within 10x end to end"


def notes(table: pd.DataFrame, config: Config) -> list[str]:
    """What the run shows, in sentences: plain vs residual per activation and BN placement.

    Args:
        table: the results table, one row per variant.
        config: the settings.

    Returns:
        The notes.
    """
    notes = []
    t = table.set_index("variant")
    last = f"hidden_{config.depth - 1}"
    for activation in config.activations:
        for bn in config.batch_norms:
            plain, res = variant_name(activation, False, bn), variant_name(activation, True, bn)
            p, r = t.loc[plain], t.loc[res]
            exploding_bn = bn != "none" and _verdict(p).startswith("explode")
            notes.append(
                f"Seed {config.seed}, {activation}, {'no BN' if bn == 'none' else 'BN ' + bn}: "
                "at initialization "
                f"the plain net's gradients {_verdict(p)} (hidden_0 / {last} = "
                f"{p['first_over_last_init']:.3g}); with skip connections they {_verdict(r)} "
                f"({r['first_over_last_init']:.3g}). Test accuracy after {config.epochs} "
                f"epoch(s): {p['test_acc']:.4f} plain vs {r['test_acc']:.4f} residual"
                + (" (the residual net diverged)" if r["diverged"] else "")
                + (" (the plain net diverged)" if p["diverged"] else "")
                + ("; a deep stack of BN layers makes gradients explode at initialization "
                   "(Yang et al., 2019)" if exploding_bn else "") + ".")
            if r["init_loss"] > 10 * max(p["init_loss"], 1e-12):
                notes.append(
                    f"{res} starts with a loss of {r['init_loss']:.3g} ({plain}: "
                    f"{p['init_loss']:.3g}): each block adds its output to its input, so the "
                    "signal's scale grows with depth and the logits blow up"
                    + ("; ResNets put BN in every block (or scale the branches down at "
                       "initialization) to stop it." if bn == "none" else
                       "; here BN normalizes each branch but not the sum, which still grows."))
    for activation in config.activations:
        part = table[table["activation"] == activation].set_index("variant")["test_acc"]
        notes.append(f"{activation}, test accuracy after {config.epochs} epoch(s): "
                     + ", ".join(f"{v} {a:.4f}" for v, a in part.items())
                     + f"; best: {part.idxmax()}.")
    diverged = table.loc[table["diverged"], "variant"].tolist()
    if diverged:
        notes.append(f"Diverged (loss or gradients not finite): {', '.join(diverged)}.")
    if config.quick:
        notes.append(quick_note("a shallow net, a small slice and one epoch"))
    return notes


def metrics(table: pd.DataFrame) -> dict:
    """The headline numbers of results.json: per variant, hidden_0 / last ratio and accuracy.

    Args:
        table: the results table, one row per variant.

    Returns:
        A JSON-ready dict.
    """
    key = {r.variant: r.variant.replace(" + ", "_").replace(" ", "_")
           for r in table.itertuples()}
    return {f"{key[r.variant]}_{c}": getattr(r, c) for r in table.itertuples()
            for c in ("first_over_last_init", "test_acc")}


def intro(config: Config) -> str:
    """The report's first paragraph: the net, the variants and how gradients are measured.

    Args:
        config: the settings.

    Returns:
        The paragraph.
    """
    return (
        f"MLP: {config.depth} hidden layers x {config.units} units; 'residual' adds the "
        "layer's input to its output (Dense -> [BN] -> activation -> Add) for every hidden "
        "layer after the first (`MLPSpec(residual=True)`); 'BN before' = Dense without bias "
        "-> BN -> activation. Initializers from the recipes' 'auto' table. Gradient norms "
        f"of the cross-entropy on {config.probe_size} training images (training mode), at "
        f"initialization and after {config.epochs} epoch(s) of {config.optimizer} at "
        f"{config.learning_rate:g}, batch {config.batch_size}, seed {config.seed} re-applied "
        f"before each variant, {mnist_text(config.quick, ' (pixels in [0, 1])')}. A run that "
        "produces a NaN loss stops there (TerminateOnNaN).")
