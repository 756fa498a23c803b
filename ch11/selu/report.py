"""The SELU experiment's report: figures, the headline over seeds, the investigation, notes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ch11._evidence import BookFigure, Evidence, compare, is_effect, seeds_note
from ch11._text import mnist_text, quick_note
from ch11.selu.config import Config
from recipes.plots import layer_profile, learning_curves
from recipes.runs import markdown_table, save_figure

__all__ = ["BOOK", "HEADLINE_COLUMNS", "INVESTIGATION", "LEARNS_AT", "TRAINS_AT", "agreement",
           "evidence", "figures", "headline", "intro", "investigation_section",
           "investigation_table", "metrics", "notes", "trace_figures"]

TRAINS_AT = 0.5  # validation accuracy that counts as "trains": five times chance (10 classes)
LEARNS_AT = 0.2  # after one short epoch of the investigation: twice chance
HEADLINE_COLUMNS = ("val_acc_epoch1", "val_acc")
# (label, optimizer, learning rate, inputs, AlphaDropout rate): one short SELU run each
INVESTIGATION = (
    ("plain SGD at 1e-3 (the book's cell)", "sgd", 1e-3, "per-pixel", 0.0),
    ("SGD momentum 0.9 at 1e-3", "momentum", 1e-3, "per-pixel", 0.0),
    ("SGD momentum 0.9 at 1e-4 (the book's step size)", "momentum", 1e-4, "per-pixel", 0.0),
    ("SGD momentum 0.9 at 1e-3, pixel std floored", "momentum", 1e-3, "floored", 0.0),
    ("SGD momentum 0.9 at 1e-3, AlphaDropout 0.1", "momentum", 1e-3, "per-pixel", 0.1),
)
BOOK = BookFigure(
    claim="a 100-layer SELU net (LeCun normal, standardized inputs) trains where the same "
          "ReLU net (He normal, no batch norm) struggles",
    figure="SELU 0.805 vs ReLU 0.705 validation accuracy after 5 epochs (0.644 vs 0.511 "
           "after epoch 1)",
    setting="100 x Dense(100), plain SGD(learning_rate=0.001) without momentum, batch 32, "
            "each pixel standardized, one seed")
BOOK_GAP = 0.805 - 0.705  # SELU minus ReLU after 5 epochs in the book's run


def figures(run_dir: Path, histories, stats: pd.DataFrame,
            config: Config) -> list[tuple[str, str]]:
    """Draw the per-layer std and mean and the learning curves.

    Args:
        run_dir: the run folder.
        histories: per net (``selu``, ``relu``), its Keras history.
        stats: per net, its per-layer statistics at initialization and after training.
        config: the SELU experiment's settings.

    Returns:
        The report's (caption, file) pairs.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "SELU".
    """
    save_figure(layer_profile(stats, "std", log=True, ylabel="activation std",
                              title=f"Activation std through {config.depth} layers "
                                    f"({config.probe_size} training images)"),
                run_dir / "layer_std.png")
    # Trained means reach the hundreds and would flatten the curves that matter here.
    at_init = stats[stats["variant"].str.endswith("initialization")]
    save_figure(layer_profile(at_init, "mean", log=False, ylabel="activation mean",
                              title=f"Activation mean through {config.depth} layers at "
                                    "initialization"),
                run_dir / "layer_mean.png")
    save_figure(learning_curves(histories, title=f"{config.depth}-layer nets: learning curves"),
                run_dir / "learning_curves.png")
    return [("Per-layer activation std, at initialization and after training (log scale)",
             "layer_std.png"),
            ("Per-layer activation mean at initialization", "layer_mean.png"),
            ("Learning curves (dashed: training, solid: validation)", "learning_curves.png")]


def trace_figures(run_dir: Path, trace: pd.DataFrame, config: Config) -> list[tuple[str, str]]:
    """Per condition of the investigation: the largest per-layer std and |mean| per step.

    Args:
        run_dir: the run folder.
        trace: `investigation_table`'s input trace (condition, step, depth, mean, std).
        config: the SELU experiment's settings.

    Returns:
        The report's (caption, file) pair.

    Reference: Klambauer et al., "Self-Normalizing Neural Networks" (2017).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for condition, group in trace.groupby("condition", sort=False):
        per_step = group.groupby("step").agg(std=("std", "max"),
                                             mean=("mean", lambda m: np.abs(m).max()))
        axes[0].plot(per_step.index, per_step["std"], marker=".", label=condition)
        axes[1].plot(per_step.index, per_step["mean"], marker=".", label=condition)
    for ax, what, band in ((axes[0], "largest per-layer std", (0.5, 2.0)),
                           (axes[1], "largest per-layer |mean|", (0.0, 0.5))):
        ax.axhspan(*band, color="green", alpha=0.08)
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{config.depth}-layer SELU net during its first "
                 f"{int(trace['step'].max())} steps (256 training images; green: "
                 "self-normalized)")
    fig.tight_layout()
    save_figure(fig, run_dir / "investigation_trace.png")
    return [("The SELU net's largest per-layer std and |mean| during training, per condition "
             "(log scale)", "investigation_trace.png")]


def metrics(table: pd.DataFrame) -> dict:
    """The headline numbers of results.json: per net its accuracies and last-layer std.

    Args:
        table: the results table, one row per net.

    Returns:
        A JSON-ready dict.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "SELU".
    """
    return {f"{r.net}_{c}": getattr(r, c) for r in table.itertuples()
            for c in ("val_acc", "test_acc", "init_std_last")}


def headline(summary: pd.DataFrame, seeds: Sequence[int], why: str, config: Config) -> str:
    """The chapter's claim, tested on the mean over seeds.

    Args:
        summary: `ch11._evidence.seed_summary` of the nets (``net``: ``selu``, ``relu``).
        seeds: the seeds.
        why: why fewer than 3 seeds.
        config: the SELU experiment's settings.

    Returns:
        The sentence: the claim's verdict, both means ± std and whether the gap is an effect.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "SELU".
    """
    s = summary.set_index("net")
    selu_ok, relu_ok = (bool(s.loc[n, "val_acc_mean"] >= TRAINS_AT) for n in ("selu", "relu"))
    verdict = {
        (True, False): "holds",
        (True, True): "does NOT hold: both nets train",
        (False, True): "does NOT hold: the other way round, the ReLU net trains and the SELU "
                       "net does not",
        (False, False): "does NOT hold: neither net trains",
    }[(selu_ok, relu_ok)]
    return (f"The chapter's claim that the {config.depth}-layer SELU net trains while the ReLU "
            f"net without BN does not (criterion: mean validation accuracy >= {TRAINS_AT}): "
            f"{verdict}. Validation accuracy after {config.epochs} epoch(s) of "
            f"{config.optimizer} at {config.learning_rate:g}, {seeds_note(seeds, why)}: "
            + compare(summary, "selu", "val_acc", "relu", names=("SELU", "ReLU")) + ".")


def agreement(summary: pd.DataFrame, config: Config) -> str:
    """One line: does our SELU-minus-ReLU gap agree with the book's?

    Args:
        summary: the nets' `seed_summary`.
        config: the SELU experiment's settings.

    Returns:
        ``"agrees: ..."`` or ``"does not agree: ..."`` with both gaps.
    """
    s = summary.set_index("net")
    gap = s.loc["selu", "val_acc_mean"] - s.loc["relu", "val_acc_mean"]
    verdict = is_effect(summary, "selu", "val_acc", "relu")
    setting = (f"after {config.epochs} epoch(s) of {config.optimizer} at "
               f"{config.learning_rate:g} here, {BOOK_GAP:+.3f} after 5 epochs in the book")
    if gap > 0 and verdict is not False:
        sure = " (one seed: no spread)" if verdict is None else ""
        return f"agrees: SELU ahead of ReLU by {gap:+.3f}{sure} {setting}."
    why = "within noise" if verdict is False else "ReLU ahead"
    return f"does not agree: SELU - ReLU {gap:+.3f} ({why}) {setting}."


def evidence(summary: pd.DataFrame, per_seed: pd.DataFrame, seeds: Sequence[int], why: str,
             config: Config) -> Evidence:
    """The headline with its spread over seeds and the book's figure.

    Args:
        summary: the nets' `seed_summary`.
        per_seed: one row per net and seed.
        seeds: the seeds.
        why: why fewer than 3 seeds.
        config: the SELU experiment's settings.

    Returns:
        The `Evidence`.
    """
    return Evidence(headline(summary, seeds, why, config), tuple(seeds), summary,
                    HEADLINE_COLUMNS, BOOK, agreement(summary, config), why, per_seed)


def investigation_table(runs: pd.DataFrame, trace: pd.DataFrame,
                        mean_tol: float = 0.5,
                        std_range: tuple[float, float] = (0.5, 2.0)) -> pd.DataFrame:
    """Per condition: how far the per-layer statistics strayed, and what the net learned.

    Args:
        runs: one row per condition (``condition``, ``loss``, ``val_acc``, ``steps``).
        trace: per condition, step and layer: ``mean`` and ``std`` of the activations.
        mean_tol: the largest |mean| that counts as self-normalized. Defaults to `0.5`.
        std_range: the std that counts as self-normalized. Defaults to `(0.5, 2.0)`.

    Returns:
        ``runs`` with ``max_std``, ``max_abs_mean`` (over layers and steps),
        ``broke_at_step`` (the first traced step with a layer outside the bounds, -1 if
        none), ``diverged`` and ``verdict``.

    Reference: Klambauer et al., "Self-Normalizing Neural Networks" (2017).
    """
    out = []
    for _, run in runs.iterrows():
        t = trace[trace["condition"] == run["condition"]]
        finite = np.isfinite(t["std"]) & np.isfinite(t["mean"])
        outside = ~finite | (t["mean"].abs() > mean_tol) | (t["std"] < std_range[0]) \
            | (t["std"] > std_range[1])
        broke = int(t.loc[outside, "step"].min()) if outside.any() else -1
        diverged = not np.isfinite(run["loss"]) or not finite.all()
        learns = bool(np.isfinite(run["val_acc"]) and run["val_acc"] >= LEARNS_AT)
        if diverged:
            verdict = "diverges (NaN)"
        elif broke < 0:
            verdict = "keeps self-normalizing and learns" if learns else \
                "keeps self-normalizing but has not learned yet"
        else:
            verdict = (f"learns, though self-normalization breaks at step {broke}" if learns
                       else f"breaks self-normalization at step {broke} and does not learn")
        out.append({**run.to_dict(), "max_std": float(t["std"].max()),
                    "max_abs_mean": float(t["mean"].abs().max()), "broke_at_step": broke,
                    "diverged": diverged, "verdict": verdict})
    return pd.DataFrame(out)


def investigation_section(runs: pd.DataFrame, trace: pd.DataFrame, profile: dict,
                          config: Config) -> str:
    """The answer to "why did the claim not reproduce, and when does a deep SELU net train".

    Args:
        runs: one row per condition of the investigation.
        trace: the per-layer statistics during each run.
        profile: `ch11.selu.experiment.input_profile` of the training images.
        config: the SELU experiment's settings.

    Returns:
        Markdown: the table per condition and the conclusions drawn from it.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "SELU"; Klambauer et al. (2017).
    """
    table = investigation_table(runs, trace)
    shown = table[["condition", "steps", "loss", "val_acc", "max_std", "max_abs_mean",
                   "broke_at_step", "verdict"]]
    trains = [r.condition for r in table.itertuples() if "learns" in r.verdict
              and "not learn" not in r.verdict]
    fails = [f"{r.condition} ({r.verdict})" for r in table.itertuples()
             if r.condition not in trains]
    lines = [
        f"The SELU net ({config.depth} x {config.units}, LeCun normal) trained for one epoch "
        f"on {config.investigate_train:,} training images under each condition, seed "
        f"{config.seed}; its hidden activations' mean and std measured every "
        f"{config.trace_every} steps on 256 training images (self-normalized: every layer's "
        f"|mean| <= 0.5 and std in [0.5, 2]); 'learns': validation accuracy >= {LEARNS_AT} "
        "(twice chance) after that epoch.", "", markdown_table(shown), "",
        "- A deep SELU net trains here under: " + ("; ".join(trains) or "none of these") + ".",
        "- It does not under: " + ("; ".join(fails) or "none of these") + ".",
        "- The book's cell uses plain SGD at 1e-3 (no momentum). SGD with momentum 0.9 at the "
        "same rate takes steps up to 1 / (1 - 0.9) = 10x larger; at 1e-4 with momentum the "
        "terminal step equals the book's.",
        f"- Inputs: {profile['constant_pixels']} of {profile['pixels']} MNIST pixels are "
        f"constant over the {profile['images']:,} training images and "
        f"{profile['tiny_std_pixels']} have a std below 0.01, so standardizing each pixel "
        f"gives values up to {profile['max_z']:.0f} std: {profile['images_beyond']:,} "
        f"training images have a pixel beyond {profile['limit']:g} std, far from the "
        f"standard normal inputs self-normalization assumes. Flooring each pixel's std at the "
        f"global std ({profile['global_std']:.2f}) bounds them to "
        f"{profile['max_z_floored']:.1f}. Fashion-MNIST's inputs are not measured here (no "
        "Fashion-MNIST offline).",
    ]
    return "\n".join(lines)


def notes(table: pd.DataFrame, config: Config, outliers: tuple[int, float, int],
          profile: dict | None = None) -> list[str]:
    """What the full run (at ``config.seed``) shows, net by net.

    Args:
        table: the results table, one row per net.
        config: the SELU experiment's settings.
        outliers: (validation images with a standardized pixel beyond 10 std, the largest
            such value, validation images).
        profile: `ch11.selu.experiment.input_profile` of the training images. Defaults to
            `None` (not described).

    Returns:
        The notes.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "SELU".
    """
    notes = []
    nets = table.set_index("net")
    for name, r in nets.iterrows():
        kept = ("within" if r["init_self_normalized"] else "NOT within")
        notes.append(
            f"{name} at initialization: per-layer std from {r['init_std_min']:.3g} to "
            f"{r['init_std_max']:.3g}, mean from {r['init_mean_min']:.3g} to "
            f"{r['init_mean_max']:.3g} ({kept} |mean| <= 0.5 and std in [0.5, 2] in every "
            f"layer); gradient norm {r['grad_first']:.3g} at hidden_0 vs {r['grad_last']:.3g} "
            f"at hidden_{config.depth - 1} (largest/smallest {r['grad_max_over_min']:.3g}). "
            f"After training: std from {r['trained_std_min']:.3g} to {r['trained_std_max']:.3g}.")
        last = config.epochs > 1
        later_acc = f", {r['val_acc']:.4f} after epoch {config.epochs}" if last else ""
        later_loss = f", {r['loss_last_epoch']:.3f} in epoch {config.epochs}" if last else ""
        verdict = "trains" if r["trains"] else "does NOT train"
        notes.append(
            f"{name}, seed {config.seed}: validation accuracy {r['val_acc_epoch1']:.4f} after "
            f"epoch 1{later_acc}; training loss (epoch mean) {r['loss_first_epoch']:.3f} in "
            f"epoch 1{later_loss}: it {verdict} (criterion: validation accuracy >= "
            f"{TRAINS_AT}, five times chance).")
    if "selu" in nets.index:
        r = nets.loc["selu"]
        if r["grad_max_over_min"] > 10 and r["grad_first"] > r["grad_last"]:
            notes.append(
                f"SELU's forward signal is normalized at initialization, but its gradients "
                f"are not: the kernel gradient at hidden_0 is "
                f"{r['grad_first'] / r['grad_last']:.3g}x the one at hidden_{config.depth - 1}, "
                "so they grow toward the input and the first layers take the largest steps. "
                f"After training the per-layer std spans {r['trained_std_min']:.3g} to "
                f"{r['trained_std_max']:.3g}.")
    n, top, total = outliers
    notes.append(f"Inputs: {n} of {total} validation images have a standardized pixel beyond "
                 f"10 std (largest {top:.3g}): MNIST has border pixels that are (almost) "
                 "constant in the training set, and standardizing divides them by a tiny std.")
    if profile:
        notes.append(f"In training: {profile['images_beyond']:,} of {profile['images']:,} "
                     f"images have a pixel beyond {profile['limit']:g} std (largest "
                     f"{profile['max_z']:.0f}); {profile['constant_pixels']} pixels are "
                     "constant. See the investigation for whether this is what stops SELU.")
    if config.quick:
        notes.append(quick_note("10 layers, a small slice and one epoch"))
    return notes


def intro(config: Config) -> str:
    """The report's first paragraph: the two nets and the training.

    Args:
        config: the SELU experiment's settings.

    Returns:
        The paragraph.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "SELU".
    """
    return (
        f"Two plain MLPs of {config.depth} hidden layers x {config.units} units, no batch "
        "norm, inputs standardized by a Normalization layer adapted on the training set: "
        "SELU + LeCun normal (recipes.selu.build_selu_mlp) and ReLU + He normal. Both: "
        f"{config.optimizer} at {config.learning_rate:g} (the book's cell: plain SGD at 1e-3, "
        f"no momentum), batch {config.batch_size}, {config.epochs} epoch(s) (the book trains "
        f"5), seed {config.seed} re-applied before each net for the full run (figures, "
        f"statistics), both nets again for every other seed of the headline, "
        f"{mnist_text(config.quick)}. Per-layer statistics on {config.probe_size} training "
        "images.")
