"""The activations experiment's report: figures, notes, headline metrics and intro."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ch11._evidence import BookFigure, Evidence, compare, is_effect, seeds_note
from ch11._text import inputs_text, quick_note
from ch11.activations.config import Config
from recipes.plots import activation_histograms, layer_profile, learning_curves
from recipes.runs import save_figure

__all__ = ["BOOK", "HEADLINE_COLUMNS", "agreement", "evidence", "figures", "headline", "intro",
           "metrics", "notes"]

HEADLINE_COLUMNS = ("val_acc",)
BOOK = BookFigure(
    claim="the non-saturating activations (leaky ReLU, ELU, SELU, GELU, Swish, Mish) can beat "
          "ReLU in a deep net, and the leaky ones keep units from dying",
    figure=None,
    setting="the chapter compares them in words; its notebook trains no comparison")


def headline(summary: pd.DataFrame, seeds: Sequence[int], why: str, config: Config) -> str:
    """The comparison's best vs runner-up and vs worst, over seeds.

    Args:
        summary: `ch11._evidence.seed_summary` per activation.
        seeds: the seeds.
        why: why fewer than 3 seeds.
        config: the activations experiment's settings.

    Returns:
        The sentence.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Better Activation Functions".
    """
    ranked = list(summary.sort_values("val_acc_mean", ascending=False)["activation"])
    text = (f"Validation accuracy after {config.epochs} epoch(s) of the {config.depth}-layer "
            f"MLP, {seeds_note(seeds, why)}, best first: " + ", ".join(ranked))
    if len(ranked) > 1:
        text += ("; best vs runner-up: " + compare(summary, ranked[0], "val_acc", ranked[1])
                 + "; best vs worst: " + compare(summary, ranked[0], "val_acc", ranked[-1]))
    return text + "."


def agreement(summary: pd.DataFrame) -> str:
    """One line: is an alternative to ReLU ahead of it beyond noise?"""
    s = summary.set_index("activation")
    if "relu" not in s.index or len(s) < 2:
        return "not tested: ReLU and an alternative were not both run."
    best = s.drop("relu")["val_acc_mean"].idxmax()
    gap = s.loc[best, "val_acc_mean"] - s.loc["relu", "val_acc_mean"]
    verdict = is_effect(summary, best, "val_acc", "relu")
    if gap > 0 and verdict:
        return f"agrees: {best} is ahead of ReLU by {gap:+.4f} (an effect)."
    if gap > 0 and verdict is None:
        return f"agrees on one seed only: {best} ahead of ReLU by {gap:+.4f} (no spread)."
    return (f"does not agree: the best alternative, {best}, is {gap:+.4f} from ReLU "
            f"({'within noise' if verdict is False else 'behind'}).")


def evidence(summary: pd.DataFrame, per_seed: pd.DataFrame, seeds: Sequence[int], why: str,
             config: Config) -> Evidence:
    """The headline with its spread over seeds and the book's (absent) figure."""
    return Evidence(headline(summary, seeds, why, config), tuple(seeds), summary,
                    HEADLINE_COLUMNS, BOOK, agreement(summary), why, per_seed)


def _accuracy_vs_time(table: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.scatter(table["s_per_epoch"], table["val_acc"])
    for r in table.itertuples():
        ax.annotate(r.activation, (r.s_per_epoch, r.val_acc), textcoords="offset points",
                    xytext=(4, 3), fontsize=8)
    ax.set_xlabel("seconds per epoch")
    ax.set_ylabel("validation accuracy (last epoch)")
    ax.set_title("Accuracy vs cost per epoch, same net and seed")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _dying_plot(histories, table: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10.4, 3.8))
    for r in table.itertuples():
        h = histories[f"dying_relu_{r.activation}"].history
        epochs = np.arange(0, len(h["dead_fraction"]) + 1)
        axes[0].plot(epochs, [r.dead_init, *h["dead_fraction"]], marker=".", label=r.activation)
        axes[1].plot(epochs[1:], h["val_accuracy"], marker=".", label=r.activation)
    axes[0].set_ylabel("fraction of dead units")
    axes[0].set_xlabel("epoch (0 = initialization)")
    axes[1].set_ylabel("validation accuracy")
    axes[1].set_xlabel("epoch")
    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    lr = table["learning_rate"].iloc[0]
    fig.suptitle(f"Too high a learning rate ({table['optimizer'].iloc[0]} at {lr:g})")
    fig.tight_layout()
    return fig


def figures(run_dir: Path, histories, table: pd.DataFrame, layers: pd.DataFrame,
            outputs: dict[str, np.ndarray], config: Config) -> tuple[list, str]:
    """Draw the learning curves, accuracy vs time, the dying ReLUs and the dead units per layer.

    Args:
        run_dir: the run folder.
        histories: per variant (``<part>_<activation>``), its Keras history.
        table: the results table, one row per part (comparison, demonstration) and activation.
        layers: the dead units per layer (dead_units_per_layer.csv).
        outputs: the demonstration's hidden outputs to draw as histograms.
        config: the activations experiment's settings.

    Returns:
        ``(figures, text)``: the report's (caption, file) pairs and its sentences on what
        the diagnostics' figures show.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Better Activation Functions".
    """
    compare = table[table["part"] == "compare"]
    demo = table[table["part"] == "dying_relu"]
    save_figure(learning_curves({a: histories[f"compare_{a}"] for a in compare["activation"]},
                                title=f"{config.depth}-layer MLP: one activation per line"),
                run_dir / "learning_curves.png")
    save_figure(_accuracy_vs_time(compare), run_dir / "accuracy_vs_time.png")
    save_figure(_dying_plot(histories, demo), run_dir / "dying_relu.png")
    figures = [("Learning curves per activation (dashed: training, solid: validation)",
                "learning_curves.png"),
               ("Validation accuracy against seconds per epoch", "accuracy_vs_time.png"),
               ("Dying ReLUs: dead units and validation accuracy per epoch at a too-high "
                "learning rate", "dying_relu.png")]
    text = []
    dying = layers[layers["part"] == "dying_relu"]
    if len(dying):
        where = f"after {config.demo_epochs} epochs at {config.demo_optimizer} " \
                f"{config.demo_learning_rate:g}"
        fig = layer_profile(dying, "dead_fraction", by="activation", log=False,
                            ylabel=f"dead units ({config.probe_size} validation images)",
                            title=f"Dead units per hidden layer {where}")
        fig.axes[0].xaxis.get_major_locator().set_params(integer=True)
        save_figure(fig, run_dir / "dead_units_per_layer.png")
        save_figure(activation_histograms(outputs, title=f"Hidden activations {where}"),
                    run_dir / "dying_relu_histograms.png")
        figures += [("Fraction of dead units per hidden layer (depth 0 = next to the input) "
                     "after the too-high learning rate", "dead_units_per_layer.png"),
                    ("Hidden activations' histograms (log counts) after the too-high "
                     "learning rate", "dying_relu_histograms.png")]
        worst = [f"{a}: diverged (outputs not finite)" if p["dead_fraction"].isna().any()
                 else f"{a}: {p['dead_fraction'].max():.0%} of "
                 f"{p.loc[p['dead_fraction'].idxmax(), 'layer']}'s units dead"
                 if p["dead_fraction"].max() > 0 else f"{a}: no dead unit in any layer"
                 for a, p in dying.groupby("activation", sort=False)]
        text += [f"[dead_units_per_layer.png](dead_units_per_layer.png): the dead fraction "
                 f"per layer {where}, worst layer per activation: {'; '.join(worst)}.",
                 "[dying_relu_histograms.png](dying_relu_histograms.png): the same nets' "
                 "outputs on the validation batch; a dead unit adds only exact zeros (the "
                 "spike at 0). Share of exact zeros in the last hidden layer: "
                 + ", ".join(f"{r.activation} {r.frac_zero:.0%}" for r in dying[
                     dying["depth"] == dying["depth"].max()].itertuples()) + "."]
    return figures, "\n\n".join(text)


def metrics(table: pd.DataFrame) -> dict:
    """The headline numbers of results.json.

    Args:
        table: the results table, one row per part (comparison, demonstration) and activation.

    Returns:
        A JSON-ready dict: per part and activation, its accuracies and dead units.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Better Activation Functions".
    """
    return {f"{r.part}_{r.activation}_{c}": getattr(r, c)
            for r in table.itertuples() for c in ("val_acc", "test_acc", "dead_final")}


def notes(table: pd.DataFrame, config: Config, load: tuple[float, float]) -> list[str]:
    """What the run shows, in sentences, the headline first.

    Args:
        table: the results table, one row per part (comparison, demonstration) and activation.
        config: the activations experiment's settings.
        load: the 1-minute load average at the start and at the end of the run.

    Returns:
        The notes.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Better Activation Functions". (dying ReLUs)
    """
    notes = []
    compare = table[table["part"] == "compare"].sort_values("val_acc", ascending=False)
    ranking = ", ".join(f"{r.activation} {r.val_acc:.4f}" for r in compare.itertuples())
    notes.append(f"Seed {config.seed}: validation accuracy after {config.epochs} epoch(s), best "
                 f"first: {ranking}; best - worst "
                 f"{compare['val_acc'].max() - compare['val_acc'].min():.4f} (the spread over "
                 "seeds is in the headline).")
    fast, slow = compare.loc[compare["s_per_epoch"].idxmin()], compare.loc[
        compare["s_per_epoch"].idxmax()]
    notes.append(f"Time per epoch: from {fast['s_per_epoch']:.1f} s ({fast['activation']}) to "
                 f"{slow['s_per_epoch']:.1f} s ({slow['activation']}), "
                 f"{slow['s_per_epoch'] / fast['s_per_epoch']:.2f}x. These are wall-clock "
                 f"times: the 1-minute load average was {load[0]:.1f} at the start and "
                 f"{load[1]:.1f} at the end on {os.cpu_count()} CPU(s), so with a load above "
                 "the CPU count part of any gap is other processes, not the activation.")
    dead = compare[compare["dead_final"] > 0]
    notes.append("Dead units after training (0 on every one of "
                 f"{config.probe_size} validation images): "
                 + (", ".join(f"{r.activation} {r.dead_final:.1%}" for r in dead.itertuples())
                    if len(dead) else "none in any net")
                 + "; the other activations have none.")
    demo = table[table["part"] == "dying_relu"].set_index("activation")
    if "relu" in demo.index:
        r = demo.loc["relu"]
        stalled = (f"its validation accuracy peaked at epoch {r['best_epoch']} "
                   f"({r['best_val_acc']:.4f}) and ended at {r['val_acc']:.4f}"
                   if r["best_epoch"] < r["epochs"] else
                   f"its validation accuracy still rose to the last epoch ({r['val_acc']:.4f})")
        notes.append(
            f"Dying ReLUs ({r['optimizer']} at {r['learning_rate']:g}, {r['epochs']} epochs on "
            f"{config.demo_train} images): the dead fraction went from {r['dead_init']:.1%} at "
            f"initialization to {r['dead_final']:.1%}; {stalled}.")
        for other in demo.index.drop("relu"):
            o = demo.loc[other]
            notes.append(
                f"{other} at the same rate: {o['dead_final']:.1%} dead units, validation "
                f"accuracy best {o['best_val_acc']:.4f} (epoch {o['best_epoch']}), last "
                f"{o['val_acc']:.4f}.")
        alive = [a for a in demo.index.drop("relu") if demo.loc[a, "dead_final"] == 0]
        if r["dead_final"] > 0.1 and alive:
            notes.append(
                f"Why a ReLU net stops improving: {r['dead_final']:.0%} of its units output 0 "
                "for every input and so get no gradient; the capacity left shrinks as more "
                f"die. {', '.join(alive)} keep every unit alive (a non-zero slope or value "
                "for negative inputs) - which does not by itself make them train well at a "
                "rate this high: compare their accuracies above.")
        elif r["dead_final"] <= 0.1:
            notes.append(f"At this rate only {r['dead_final']:.1%} of the ReLU units died, so "
                         "this run does not show the dying-ReLU effect; try a higher "
                         "--demo-learning-rate.")
    if config.quick:
        notes.append(quick_note("a shallow net, a small slice and one or two epochs"))
    best, worst = compare.iloc[0], compare.iloc[-1]
    headline = (f"Seed {config.seed}, after {config.epochs} epoch(s): best {best['activation']} "
                f"{best['val_acc']:.4f}, worst {worst['activation']} {worst['val_acc']:.4f} "
                "(validation accuracy)")
    if len(demo):
        dead = ", ".join(f"{a} {demo.loc[a, 'dead_final']:.0%}" for a in demo.index)
        headline += (f"; dead units after {config.demo_epochs} epochs at "
                     f"{config.demo_optimizer} {config.demo_learning_rate:g}: {dead}")
    notes.insert(0, headline + ".")
    return notes


def intro(config: Config) -> str:
    """The report's first paragraph: the net, the comparison and the demonstration.

    Args:
        config: the activations experiment's settings.

    Returns:
        The paragraph.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Better Activation Functions".
    """
    return (
        f"MLP: {config.depth} hidden layers x {config.units} units, each activation with the "
        "initializer of Table 11-1 (He for the ReLU family, GELU, Swish and Mish; LeCun for "
        f"SELU); inputs {inputs_text(config.input_norm)}. Comparison: {config.optimizer} at "
        f"{config.learning_rate:g}, "
        f"batch {config.batch_size}, {config.epochs} epoch(s) on "
        f"{'a slice of ' if config.quick else 'the 55,000 training images of '}MNIST. Dying-ReLU "
        f"demonstration: {config.demo_optimizer} at {config.demo_learning_rate:g}, "
        f"{config.demo_epochs} epochs on {config.demo_train} training images. Dead unit: "
        f"outputs 0 on every one of {config.probe_size} validation images. Seed {config.seed} "
        "re-applied before each variant; 5,000 training images held out for validation.")
