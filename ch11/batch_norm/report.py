"""The batch-norm experiment's report: figures, metrics and what the run shows."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ch11._evidence import BookFigure, Evidence, compare, seeds_note
from ch11._text import mnist_text, quick_note
from ch11.batch_norm.config import Config
from recipes.plots import gradient_flow, layer_profile, learning_curves
from recipes.runs import save_figure
from recipes.specs import BATCH_NORM_CHOICES

__all__ = ["BOOK", "HEADLINE_COLUMNS", "agreement", "evidence", "figures", "flow_figures",
           "headline", "headline_plan", "headline_rows", "intro", "metrics", "notes"]

HEADLINE_COLUMNS = ("val_acc_epoch1",)
BOOK = BookFigure(
    claim="batch normalization lets a network train well, placed after or before the "
          "activation",
    figure="BN after the activation 0.8650, BN before it (no bias) 0.8646 validation accuracy "
           "after 2 epochs; the book shows no run without BN",
    setting="MLP 300-100 with ReLU and He normal, BN also on the inputs, SGD at Keras's "
            "default 0.01, batch 32, one seed")


def headline_plan(config: Config) -> list[tuple[str, str, str, float]]:
    """The headline's variants: ``(name, family, placement, learning rate)``, BN none and
    before, for the MLP at each rate, the CNN, and the MLP at the small batch size."""
    lr0 = config.learning_rates[0]
    plan = [(f"mlp lr{lr:g} BN {p}", "mlp", p, lr) for lr in config.learning_rates
            for p in ("none", "before")]
    plan += [(f"cnn lr{lr0:g} BN {p}", "cnn", p, lr0) for p in ("none", "before")]
    plan += [(f"batch {config.small_batch_size} BN {p}", "small", p, lr0)
             for p in ("none", "before")]
    return plan


def headline_rows(table: pd.DataFrame, config: Config) -> list[dict]:
    """The headline's values from the full run (its seed), one dict per variant."""
    family = {"mlp": "mlp", "cnn": "cnn", "small": "mlp (small batch)"}
    rows = []
    for variant, fam, placement, lr in headline_plan(config):
        rows.append({"variant": variant, "val_acc_epoch1": _lookup(
            table, family[fam], placement, "val_acc_epoch1", None if fam == "small" else lr)})
    return rows


def headline(summary: pd.DataFrame, seeds: Sequence[int], why: str, config: Config) -> str:
    """BN before the activation vs none: validation accuracy after epoch 1, over seeds.

    Args:
        summary: `ch11._evidence.seed_summary` of `headline_plan`'s variants.
        seeds: the seeds.
        why: why fewer than 3 seeds.
        config: the batch-norm experiment's settings.

    Returns:
        The sentence, one comparison per setting, each an effect or within noise.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Batch Normalization".
    """
    parts = []
    for name, prefix in [*((f"MLP at rate {lr:g}", f"mlp lr{lr:g}")
                           for lr in config.learning_rates),
                         (f"CNN at rate {config.learning_rates[0]:g}",
                          f"cnn lr{config.learning_rates[0]:g}"),
                         (f"MLP at batch size {config.small_batch_size}",
                          f"batch {config.small_batch_size}")]:
        parts.append(f"{name}: " + compare(summary, f"{prefix} BN before", "val_acc_epoch1",
                                           f"{prefix} BN none",
                                           names=("BN before", "without")))
    return (f"Validation accuracy after epoch 1, {seeds_note(seeds, why)}; " + "; ".join(parts)
            + ".")


def agreement(table: pd.DataFrame, config: Config) -> str:
    """One line: the book's two placements vs ours (the full run's MLP at the first rate)."""
    lr = config.learning_rates[0]
    before = _lookup(table, "mlp", "before", "val_acc_epoch1", lr)
    after = _lookup(table, "mlp", "after", "val_acc_epoch1", lr)
    gap = before - after
    close = abs(gap) <= 0.01
    return (f"{'agrees' if close else 'differs'}: the book's placements differ by 0.0004 "
            f"(before - after); here, seed {config.seed}, the {config.mlp_depth}-layer MLP at "
            f"{lr:g}: BN before {before:.4f} vs after {after:.4f} after epoch 1 "
            f"({gap:+.4f}). The book runs no net without BN, so its figure says nothing on "
            "BN's gain.")


def evidence(summary: pd.DataFrame, per_seed: pd.DataFrame, table: pd.DataFrame,
             seeds: Sequence[int], why: str, config: Config) -> Evidence:
    """The headline with its spread over seeds and the book's figure."""
    return Evidence(headline(summary, seeds, why, config), tuple(seeds), summary,
                    HEADLINE_COLUMNS, BOOK, agreement(table, config), why, per_seed)


def figures(run_dir, histories, stats: pd.DataFrame, config: Config) -> list[tuple[str, str]]:
    figures = []
    for lr in config.learning_rates:
        prefix = f"mlp_lr{lr:g}_"
        mlp = {k.replace(prefix, ""): v for k, v in histories.items() if k.startswith(prefix)}
        name = f"mlp_learning_curves_lr{lr:g}.png"
        save_figure(learning_curves(mlp, title=f"Deep MLP, learning rate {lr:g}"),
                    run_dir / name)
        figures.append((f"Deep MLP at learning rate {lr:g} (dashed: training, solid: "
                        "validation)", name))
    cnn = {k.replace("cnn_", ""): v for k, v in histories.items() if k.startswith("cnn_")}
    save_figure(learning_curves(cnn, title="Small CNN: learning curves"),
                run_dir / "cnn_learning_curves.png")
    fig = layer_profile(stats, "std", log=True, ylabel="activation std (512 validation images)",
                        title="Hidden activations' spread through depth, after training")
    fig.axes[0].xaxis.get_major_locator().set_params(integer=True)
    save_figure(fig, run_dir / "mlp_activation_std.png")
    return figures + [
        ("Small CNN learning curves", "cnn_learning_curves.png"),
        ("Activation std per hidden layer of the trained MLPs", "mlp_activation_std.png")]


def flow_figures(run_dir, flows: dict[float, dict[str, pd.DataFrame]], table: pd.DataFrame,
                  stats: pd.DataFrame, config: Config) -> tuple[list[tuple[str, str]], str]:
    """One gradient-flow figure per learning rate, and what they and the std figure show."""
    figures, text = [], []
    for lr, frames in flows.items():
        name = f"mlp_gradient_flow_lr{lr:g}.png"
        save_figure(gradient_flow(frames, title=f"Trained MLPs' gradient flow, learning rate "
                                                f"{lr:g} (512 validation images)"),
                    run_dir / name)
        figures.append((f"Gradient norm per kernel of the MLPs trained at {lr:g} (log scale)",
                        name))
        rows = table[(table["model"] == "mlp") & (table["learning_rate"] == lr)]
        rows = rows.set_index("batch_norm")
        text.append(
            f"[{name}]({name}): after {config.mlp_epochs} epoch(s) at {lr:g}, hidden_0's "
            "gradient norm / the last hidden layer's: " + ", ".join(
                f"BN {p} {rows.loc[p, 'grad_first_over_last']:.3g} (hidden_0: "
                f"{frames[f'BN {p}']['grad_norm'].iloc[0]:.3g})" for p in BATCH_NORM_CHOICES)
            + "; the validation accuracy after epoch 1: " + ", ".join(
                f"BN {p} {rows.loc[p, 'val_acc_epoch1']:.4f}" for p in BATCH_NORM_CHOICES) + ".")
    spread = stats.groupby("variant", sort=False)["std"]
    text.append(
        "[mlp_activation_std.png](mlp_activation_std.png): the hidden activations' std on 512 "
        "validation images, first -> last hidden layer: " + "; ".join(
            f"{v} {s.iloc[0]:.3g} -> {s.iloc[-1]:.3g}" for v, s in spread) + ".")
    return figures, "\n\n".join(text)


def _lookup(table: pd.DataFrame, model: str, placement: str, column: str,
            lr: float | None = None) -> float:
    match = table[(table["model"] == model) & (table["batch_norm"] == placement)]
    if lr is not None:
        match = match[match["learning_rate"] == lr]
    return float(match[column].iloc[0])


def metrics(table: pd.DataFrame) -> dict:
    return {f"{r.model}_lr{r.learning_rate:g}_bn_{r.batch_norm}_{c}": getattr(r, c)
            for r in table.itertuples() for c in ("val_acc_epoch1", "test_acc")}


def notes(table: pd.DataFrame, config: Config) -> list[str]:
    notes = []
    settings = [("mlp", lr) for lr in config.learning_rates] + [("cnn", config.learning_rates[0])]
    for family, lr in settings:
        def acc(p: str, family: str = family, lr: float = lr) -> float:
            return _lookup(table, family, p, "val_acc_epoch1", lr)

        best = max(BATCH_NORM_CHOICES[1:], key=acc)
        verdict = "learns faster per epoch" if acc(best) > acc("none") else \
            "does NOT learn faster per epoch"
        notes.append(
            f"{family.upper()} at learning rate {lr:g}, seed {config.seed}: with BN {best} the "
            "activation the net "
            f"{verdict} (validation accuracy after epoch 1: {acc(best):.4f} vs "
            f"{acc('none'):.4f} without BN).")
    for family in ("mlp", "cnn"):
        lr = config.learning_rates[0]
        ratio = (_lookup(table, family, "before", "s_per_epoch", lr)
                 / _lookup(table, family, "none", "s_per_epoch", lr))
        notes.append(f"{family.upper()}: an epoch with BN before the activation takes "
                     f"{ratio:.2f}x the time of one without BN (BN's extra work per layer).")
    gaps = table[table["model"] != "mlp (small batch)"]
    worst = gaps.loc[gaps["train_val_gap"].idxmax()]
    notes.append(
        f"Train-validation gap: largest for {worst['model']} with BN {worst['batch_norm']} "
        f"({worst['train_val_gap']:+.4f}); BN's noise regularizes a little, but it is not a "
        "substitute for dropout or early stopping.")
    notes.append(
        "The He-initialized ReLU MLP has no vanishing-gradient problem to fix, so at a small "
        "rate BN mostly adds noise and cost; BN's gain shows where it lets a higher rate "
        "train stably (compare the rows per learning rate).")
    sb_none = _lookup(table, "mlp (small batch)", "none", "test_acc")
    sb_bn = _lookup(table, "mlp (small batch)", "before", "test_acc")
    notes.append(
        f"Batch size {config.small_batch_size}, seed {config.seed}: test accuracy {sb_bn:.4f} "
        "with BN vs "
        f"{sb_none:.4f} without. With so few samples per batch the batch statistics are "
        "noisy and differ from the moving averages used at inference.")
    if config.quick:
        notes.append(quick_note())
    return notes


def intro(config: Config) -> str:
    return (
        f"Deep MLP: {config.mlp_depth} hidden layers x {config.mlp_units} units, "
        f"{config.activation} (He init through the recipes' 'auto' table); small CNN: conv 32 "
        "and 64 (3x3, max pooling), Dense 128. Every variant: optimizer "
        f"{config.optimizer} (MLP at learning rates {', '.join(map(str, config.learning_rates))}; "
        f"CNN at {config.learning_rates[0]}), batch {config.batch_size}, seed "
        f"{config.seed} re-applied before each variant, {mnist_text(config.quick)}. 'before' = "
        "Dense/Conv without bias -> BN -> activation; 'after' = Dense/Conv -> activation -> BN.")
