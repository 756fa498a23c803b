"""The gradients experiment's report: figures, notes, headline metrics and intro."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ch11._evidence import BookFigure, Evidence, compare, seeds_note, spread
from ch11._text import inputs_text, mnist_text, quick_note
from ch11.gradients.config import Config
from recipes.plots import activation_histograms, gradient_flow, layer_profile
from recipes.runs import save_figure

__all__ = ["BOOK", "CLAIMS", "HEADLINE_COLUMNS", "SATURATED_NET", "agreement", "evidence",
           "figures", "gradient_verdict", "headline", "intro", "metrics", "notes", "seed_values"]

SATURATED_NET = "sigmoid:random_normal"  # the net whose activation histograms are drawn
HEADLINE_COLUMNS = ("grad_ratio_log10", "val_acc")
# The chapter's claims: the variant's gradients at initialization ...
CLAIMS = (("sigmoid:random_normal", "vanish toward the first layers"),
          ("relu:he_normal", "stay within an order of magnitude"))
BOOK = BookFigure(
    claim="with the sigmoid and weights drawn from a normal distribution of std 1, gradients "
          "vanish toward the first layers; Glorot and He initialization keep them level",
    figure=None,
    setting="the chapter states it and draws the sigmoid's saturation (figure 11-1); its "
            "notebook trains no such net")


def gradient_verdict(norms: Sequence[float], factor: float = 10.0) -> str:
    """Say whether per-layer gradient norms vanish, explode or stay level.

    The norms "stay within an order of magnitude" when the largest is at most
    `factor` times the smallest. Otherwise the median of the first third of the layers
    (input side) is compared with the median of the last third: smaller means the
    gradients vanish toward the first layers, larger that they explode toward them.

    Args:
        norms: one gradient norm per layer, input side first.
        factor: the spread that counts as level. Defaults to `10.0` (an order of magnitude).

    Returns:
        ``"stay within an order of magnitude"``, ``"vanish toward the first layers"`` or
        ``"explode toward the first layers"``.

    Raises:
        ValueError: if `norms` is empty or has a negative or non-finite value.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "The Vanishing/Exploding Gradients
    Problems".
    """
    norms = np.asarray(norms, dtype="float64")
    if norms.size == 0 or not np.all(np.isfinite(norms)) or np.any(norms < 0):
        raise ValueError(f"norms must be finite and >= 0, one per layer; got {norms.tolist()}.")
    if norms.min() > 0 and norms.max() <= factor * norms.min():
        return "stay within an order of magnitude"
    third = max(1, len(norms) // 3)
    first, last = np.median(norms[:third]), np.median(norms[-third:])
    return "vanish toward the first layers" if first < last else "explode toward the first layers"



def seed_values(variant: str, norms: np.ndarray, val_acc: float) -> dict:
    """One variant's headline values for one seed.

    Args:
        variant: ``"activation:initializer"``.
        norms: the hidden kernels' gradient norms at initialization, input side first.
        val_acc: its validation accuracy after training.

    Returns:
        ``variant``, ``grad_ratio_log10`` (log10 of the largest over the smallest positive
        norm: 1 is one order of magnitude), ``zero_grad_layers``, ``gradients``
        (`gradient_verdict`, exact zeros counted as vanished) and ``val_acc``.
    """
    norms = np.asarray(norms, dtype="float64")
    positive = norms[norms > 0]
    ratio = float(np.log10(positive.max() / positive.min())) if len(positive) else np.nan
    return {"variant": variant, "grad_ratio_log10": ratio,
            "zero_grad_layers": int(np.sum(norms == 0)),
            "gradients": gradient_verdict(norms), "val_acc": float(val_acc)}


def headline(summary: pd.DataFrame, per_seed: pd.DataFrame, seeds: Sequence[int], why: str,
             config: Config) -> str:
    """The gradients' spread at initialization and the accuracy after training, over seeds.

    Args:
        summary: `ch11._evidence.seed_summary` of the variants.
        per_seed: one row per variant and seed (with the ``gradients`` verdict).
        seeds: the seeds.
        why: why fewer than 3 seeds.
        config: the gradients experiment's settings.

    Returns:
        The sentence.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "The Vanishing/Exploding Gradients
    Problems".
    """
    spans = []
    for variant in summary["variant"]:
        got = per_seed.loc[per_seed["variant"] == variant, "gradients"]
        verdict = got.mode().iloc[0]
        spans.append(f"{variant} 10^{spread(summary, variant, 'grad_ratio_log10', digits=1)} "
                     f"({verdict} in {int((got == verdict).sum())}/{len(got)} seeds)")
    ranked = summary.sort_values("val_acc_mean", ascending=False)
    best, worst = ranked["variant"].iloc[0], ranked["variant"].iloc[-1]
    return (f"{config.depth} layers at initialization, {seeds_note(seeds, why)}: largest over "
            "smallest gradient norm across the hidden layers " + "; ".join(spans)
            + f". Validation accuracy after {config.epochs} epoch(s): best vs worst "
            + compare(summary, best, "val_acc", worst) + ".")


def agreement(per_seed: pd.DataFrame) -> str:
    """One line: do the chapter's claims (`CLAIMS`) hold in every seed?"""
    parts, holds = [], True
    for variant, expected in CLAIMS:
        got = per_seed.loc[per_seed["variant"] == variant, "gradients"]
        if got.empty:
            continue
        n = int((got == expected).sum())
        holds &= n == len(got)
        parts.append(f"{variant} gradients {expected} in {n}/{len(got)} seeds")
    if not parts:
        return "not tested: neither sigmoid:random_normal nor relu:he_normal was run."
    return f"{'agrees' if holds else 'does not agree'}: " + "; ".join(parts) + "."


def evidence(summary: pd.DataFrame, per_seed: pd.DataFrame, seeds: Sequence[int], why: str,
             config: Config) -> Evidence:
    """The headline with its spread over seeds and the book's (absent) figure."""
    return Evidence(headline(summary, per_seed, seeds, why, config), tuple(seeds), summary,
                    HEADLINE_COLUMNS, BOOK, agreement(per_seed), why, per_seed)


def figures(run_dir: Path, flows: dict[str, pd.DataFrame], layers: pd.DataFrame,
            outputs: dict[str, np.ndarray], config: Config) -> tuple[list, str]:
    """Draw the activation std and the gradient flow at initialization, and the saturation.

    Args:
        run_dir: the run folder.
        flows: per variant, its `recipes.diagnosis.measures.gradient_norms` table at initialization.
        layers: the per-layer profiles (layer_profiles.csv).
        outputs: the `SATURATED_NET`'s hidden outputs at initialization (may be empty).
        config: the gradients experiment's settings.

    Returns:
        ``(figures, text)``: the report's (caption, file) pairs and its sentences on what
        the diagnostics' figures show.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, figure 11-1.
    """
    save_figure(layer_profile(layers, "std", log=True, ylabel="activation std (probe batch)",
                              title=f"Hidden activations' std at initialization "
                                    f"({config.depth} layers)"),
                run_dir / "activation_std.png")
    save_figure(gradient_flow(flows, title=f"Gradient flow at initialization "
                                           f"({config.probe_size} training images)"),
                run_dir / "gradient_norm.png")
    spans = "; ".join(f"{v}: {f['grad_norm'].iloc[0]:.3g} -> {f['grad_norm'].iloc[-1]:.3g}"
                      for v, f in flows.items())
    figures = [("Activation std per hidden layer at initialization (depth 0 = next to the "
                "input)", "activation_std.png"),
               ("Gradient flow at initialization: gradient norm per kernel, input to output "
                "(log scale; a gradient of exactly 0 is not drawn)", "gradient_norm.png")]
    text = [f"[gradient_norm.png](gradient_norm.png): the loss gradient's norm per kernel at "
            f"initialization, hidden_0 -> output: {spans}."]
    if outputs:
        sat = layers[layers["variant"] == SATURATED_NET].set_index("layer")["saturated"]
        picks = np.unique(np.linspace(0, len(outputs) - 1, min(len(outputs), 8)).round())
        names = [list(outputs)[int(i)] for i in picks]
        save_figure(activation_histograms(
            {f"{n} ({sat[n]:.0%} saturated)": outputs[n] for n in names},
            title=f"{SATURATED_NET}: hidden sigmoid outputs at initialization"),
            run_dir / "saturation_histograms.png")
        figures.append((f"{SATURATED_NET}: histograms of hidden sigmoid outputs at "
                        "initialization (log counts)", "saturation_histograms.png"))
        text.append(
            f"[saturation_histograms.png](saturation_histograms.png): with RandomNormal(1) "
            f"weights the sigmoid outputs pile up near 0 and 1: {sat.iloc[0]:.0%} of "
            f"{sat.index[0]}'s outputs and {sat.iloc[-1]:.0%} of {sat.index[-1]}'s sit where "
            f"the derivative is under a tenth of its maximum (mean over the hidden layers: "
            f"{sat.mean():.0%}).")
    return figures, "\n\n".join(text)


def metrics(table: pd.DataFrame, flows: dict[str, pd.DataFrame]) -> dict:
    """The headline numbers of results.json: per variant its gradient spread and accuracies.

    Args:
        table: the results table, one row per 'activation:initializer' variant.
        flows: per variant, its gradient norms at initialization.

    Returns:
        A JSON-ready dict.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "The Vanishing/Exploding Gradients
    Problems".
    """
    metrics = {f"{r.variant.replace(':', '_')}_{c}": getattr(r, c) for r in table.itertuples()
               for c in ("grad_max_over_min", "val_acc", "test_acc")}
    return metrics | {f"{v.replace(':', '_')}_grad_output": float(f["grad_norm"].iloc[-1])
                      for v, f in flows.items()}


def notes(table: pd.DataFrame, config: Config) -> list[str]:
    """What the run shows, in sentences, the headline first (checked against the chapter).

    Args:
        table: the results table, one row per 'activation:initializer' variant.
        config: the gradients experiment's settings.

    Returns:
        The notes.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "The Vanishing/Exploding Gradients
    Problems".
    """
    notes = []
    for _, row in table.iterrows():
        zero = (f"; {row['zero_grad_layers']} layer(s) got a gradient of exactly 0 "
                "(float32 underflow)" if row["zero_grad_layers"] else "")
        notes.append(
            f"{row['activation']} + {row['initializer']}: the gradient norms "
            f"{row['gradients']} (hidden_0: {row['grad_first']:.3g}, "
            f"hidden_{config.depth - 1}: {row['grad_last']:.3g}, largest/smallest over the "
            f"layers: {row['grad_max_over_min']:.3g}{zero}); activation std "
            f"{row['act_std_first']:.3g} in the first hidden layer, {row['act_std_last']:.3g} "
            f"in the last; validation accuracy after {config.epochs} epoch(s): "
            f"{row['val_acc']:.4f}.")
    by_variant = table.set_index("variant")
    for variant, expected in CLAIMS:
        if variant in by_variant.index:
            got = by_variant.loc[variant, "gradients"]
            holds = "holds" if got == expected else "does NOT hold"
            notes.append(f"The chapter's claim that the {variant} gradients {expected}: "
                         f"{holds} with seed {config.seed} (measured: {got}).")
    for _, row in table[table["activation"] == "sigmoid"].iterrows():
        notes.append(
            f"{row['variant']}: {row['saturated']:.1%} of the hidden sigmoid outputs sit on "
            "the flat tails (derivative under a tenth of its maximum 1/4), where a unit "
            "passes almost no gradient back.")
    if "sigmoid:glorot_uniform" in by_variant.index:
        row = by_variant.loc["sigmoid:glorot_uniform"]
        notes.append(
            f"Sigmoid + Glorot: gradients {row['gradients']} (largest/smallest "
            f"{row['grad_max_over_min']:.3g}). Glorot keeps the variance of a unit whose "
            "derivative is about 1 (tanh near 0); the sigmoid's derivative is at most 1/4, so "
            "with this many layers the backward signal still shrinks layer after layer.")
    best, worst = table.loc[table["val_acc"].idxmax()], table.loc[table["val_acc"].idxmin()]
    notes.append(f"After {config.epochs} epoch(s) the best validation accuracy is "
                 f"{best['val_acc']:.4f} ({best['variant']}), the worst {worst['val_acc']:.4f} "
                 f"({worst['variant']}).")
    if config.quick:
        notes.append(quick_note("a shallow net, a small slice and one epoch"))
    spread = "; ".join(f"{r.variant} {r.grad_max_over_min:.3g} ({r.gradients})"
                       for r in table.itertuples())
    notes.insert(0, f"Seed {config.seed}: gradient norms at initialization, largest/smallest "
                    f"over the {config.depth} hidden layers: {spread}.")
    return notes


def intro(config: Config) -> str:
    """The report's first paragraph: the nets, the measurement and the training.

    Args:
        config: the gradients experiment's settings.

    Returns:
        The paragraph.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Glorot and He Initialization".
    """
    return (
        f"MLP: {config.depth} hidden layers x {config.units} units, one variant per "
        f"'activation:initializer' pair ({', '.join(config.variants)}); inputs "
        f"{inputs_text(config.input_norm)}. "
        f"At initialization each net's activations and the gradient of the cross-entropy with "
        f"respect to every hidden kernel are measured on {config.probe_size} training images; "
        f"then it trains {config.epochs} epoch(s) with {config.optimizer} (learning rate "
        f"{config.learning_rate:g}), batch {config.batch_size}, seed {config.seed} re-applied "
        f"before each variant, on {mnist_text(config.quick)}.")
