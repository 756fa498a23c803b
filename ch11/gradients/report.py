"""The gradients experiment's report: figures, notes, headline metrics and intro."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ch11._text import inputs_text, mnist_text, quick_note
from ch11.gradients.config import Config
from recipes.plots import activation_histograms, gradient_flow, layer_profile
from recipes.runs import save_figure

__all__ = ["SATURATED_NET", "figures", "intro", "metrics", "notes"]

SATURATED_NET = "sigmoid:random_normal"  # the net whose activation histograms are drawn


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
    claims = [("sigmoid:random_normal", "vanish toward the first layers"),
              ("relu:he_normal", "stay within an order of magnitude")]
    for variant, expected in claims:
        if variant in by_variant.index:
            got = by_variant.loc[variant, "gradients"]
            holds = "holds" if got == expected else "does NOT hold"
            notes.append(f"The chapter's claim that the {variant} gradients {expected}: "
                         f"{holds} in this run (measured: {got}).")
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
    notes.insert(0, f"Gradient norms at initialization, largest/smallest over the "
                    f"{config.depth} hidden layers: {spread}.")
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
