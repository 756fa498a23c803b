"""The schedules experiment's report: figures, notes, headline metrics and intro."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ch11._evidence import BookFigure, Evidence, compare, is_effect, seeds_note
from ch11._text import mnist_text, quick_note
from ch11.schedules.config import Config
from recipes.plots import learning_curves, lr_finder_plot, schedule_curves
from recipes.runs import save_figure

__all__ = ["BOOK", "HEADLINE_COLUMNS", "HEADLINE_SCHEDULES", "agreement", "evidence", "figures",
           "headline", "intro", "metrics", "notes"]

HEADLINE_COLUMNS = ("test_acc",)
HEADLINE_SCHEDULES = ("1cycle", "constant")  # rerun per seed, on each model that has both
BOOK = BookFigure(
    claim="1cycle scheduling reaches a better model than a constant rate in the same number "
          "of epochs",
    figure="not quoted here: the notebook's printed outputs for the schedules were not read "
           "for this report",
    setting="the notebook trains its Fashion-MNIST MLP under each schedule")


def _families(summary: pd.DataFrame) -> list[str]:
    names = set(summary["variant"])
    return [f for f in ("cnn", "mlp") if {f"{f} {s}" for s in HEADLINE_SCHEDULES} <= names]


def headline(summary: pd.DataFrame, table: pd.DataFrame, seeds: Sequence[int], why: str,
             config: Config) -> str:
    """1cycle vs a constant rate on each model, over seeds; the MLP's best schedule.

    Args:
        summary: `ch11._evidence.seed_summary` of ``"<model> <schedule>"`` variants.
        table: the full run's table (every MLP schedule, one seed).
        seeds: the seeds.
        why: why fewer than 3 seeds.
        config: the schedules experiment's settings.

    Returns:
        The sentence.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Learning Rate Scheduling".
    """
    epochs = {"cnn": config.cnn_epochs, "mlp": config.epochs}
    parts = [f"{f.upper()} after {epochs[f]} epoch(s): " + compare(
        summary, f"{f} 1cycle", "test_acc", f"{f} constant", names=("1cycle", "constant"))
        for f in _families(summary)]
    text = (f"Test accuracy, {seeds_note(seeds, why)}: "
            + ("; ".join(parts) or "1cycle and constant were not both run on a model"))
    mlp = table[table["model"] == "mlp"]
    if len(mlp) > 1:
        best = mlp.loc[mlp["test_acc"].idxmax()]
        text += (f"; best of the {len(mlp)} MLP schedules with seed {config.seed}: "
                 f"{best['schedule']} ({best['test_acc']:.4f})")
    return text + "."


def agreement(summary: pd.DataFrame) -> str:
    """One line: is 1cycle ahead of the constant rate beyond noise here?"""
    found = []
    for f in _families(summary):
        s = summary.set_index("variant")
        gap = s.loc[f"{f} 1cycle", "test_acc_mean"] - s.loc[f"{f} constant", "test_acc_mean"]
        verdict = is_effect(summary, f"{f} 1cycle", "test_acc", f"{f} constant")
        word = ("ahead (an effect)" if gap > 0 and verdict else "ahead on one seed" if gap > 0
                and verdict is None else "not ahead beyond noise")
        found.append(f"on the {f.upper()} 1cycle is {word} ({gap:+.4f})")
    if not found:
        return "not tested: 1cycle and a constant rate were not both run."
    return "no book figure to compare with; here " + ", ".join(found) + "."


def evidence(summary: pd.DataFrame, per_seed: pd.DataFrame, table: pd.DataFrame,
             seeds: Sequence[int], why: str, config: Config) -> Evidence:
    """The headline with its spread over seeds and the book's figure."""
    return Evidence(headline(summary, table, seeds, why, config), tuple(seeds), summary,
                    HEADLINE_COLUMNS, BOOK, agreement(summary), why, per_seed)


def figures(run_dir: Path, histories, curves, finders, config: Config) -> list[tuple[str, str]]:
    """Draw the LR range tests, the schedules, the learning curves and the CNN's test accuracy.

    Args:
        run_dir: the run folder.
        histories: per variant (``<model>_<schedule>``), its Keras history.
        curves: per MLP schedule, its learning rate at every step.
        finders: per model (``mlp``, ``cnn``), its LR range test.
        config: the schedules experiment's settings.

    Returns:
        The report's (caption, file) pairs.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Learning Rate Scheduling".
    """
    for family, result in finders.items():
        fig = lr_finder_plot(result.table, result.suggestion)
        fig.axes[0].set_title(f"LR range test, {family.upper()} ({config.optimizer}, batch "
                              f"{config.batch_size})")
        save_figure(fig, run_dir / f"lr_finder_{family}.png")
    steps = len(next(iter(curves.values())))
    save_figure(schedule_curves({k: v.__getitem__ for k, v in curves.items()}, steps,
                                title="Learning rate per step (MLP runs)"),
                run_dir / "schedule_curves.png")
    for family in ("mlp", "cnn"):
        parts = {k.split("_", 1)[1]: {"loss": v.history["loss"],
                                      "val_accuracy": v.history["val_accuracy"]}
                 for k, v in histories.items() if k.startswith(family)}
        if parts:
            save_figure(learning_curves(parts, title=f"{family.upper()}: training loss "
                                                     "(dashed), validation accuracy (solid)"),
                        run_dir / f"{family}_learning_curves.png")
    save_figure(_test_accuracy_plot(histories, config.target_accuracy),
                run_dir / "cnn_test_accuracy.png")
    return [("LR range test on the MLP", "lr_finder_mlp.png"),
            ("LR range test on the CNN", "lr_finder_cnn.png"),
            ("Each schedule's learning rate per step", "schedule_curves.png"),
            ("MLP learning curves per schedule", "mlp_learning_curves.png"),
            ("CNN learning curves", "cnn_learning_curves.png"),
            ("CNN test accuracy after each epoch", "cnn_test_accuracy.png")]


def _test_accuracy_plot(histories, target: float):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for key, history in histories.items():
        if key.startswith("cnn_"):
            acc = history.history["test_accuracy"]
            ax.plot(range(1, len(acc) + 1), acc, marker="o", label=key[4:])
    ax.axhline(target, color="red", linestyle=":", label=f"target {target:.1%}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("CNN: test accuracy after each epoch")
    fig.tight_layout()
    return fig


def metrics(table: pd.DataFrame, finders, rate, config: Config) -> dict:
    """The headline numbers of results.json.

    Args:
        table: the results table, one row per model and schedule.
        finders: per model, its LR range test.
        rate: per model, the rate it trained at.
        config: the schedules experiment's settings.

    Returns:
        A JSON-ready dict: test accuracies, the range tests' suggestions, the 1cycle claim.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Learning Rate Scheduling".
    """
    out = {f"{r.model}_{r.schedule}_test_acc": r.test_acc for r in table.itertuples()}
    for family, result in finders.items():
        out[f"{family}_finder_suggestion"] = result.suggestion
        out[f"{family}_learning_rate"] = rate[family]
    cnn = table[(table["model"] == "cnn") & table["schedule"].isin(["1cycle", "onecycle"])]
    if len(cnn):
        out["cnn_1cycle_epochs_to_target"] = cnn["epochs_to_target"].iloc[0]
        out["claim_1cycle_reaches_target"] = bool(cnn["best_test_acc"].iloc[0]
                                                  >= config.target_accuracy)
    return out


def notes(table: pd.DataFrame, histories, finders, config: Config,
          patience: int) -> list[str]:
    """What the run shows, in sentences.

    Args:
        table: the results table, one row per model and schedule.
        histories: per variant, its Keras history.
        finders: per model, its LR range test.
        config: the schedules experiment's settings.
        patience: ReduceLROnPlateau's patience on the MLP.

    Returns:
        The notes.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Learning Rate Scheduling".
    """
    notes = []
    for family, r in finders.items():
        notes.append(f"LR range test ({family.upper()}): the smoothed loss is lowest at "
                     f"{r.min_loss_lr:.3g}; the book's rule (10x lower) suggests "
                     f"{r.suggestion:.3g}.")
    mlp = table[table["model"] == "mlp"].sort_values("test_acc", ascending=False)
    best, worst = mlp.iloc[0], mlp.iloc[-1]
    notes.append(f"MLP, {config.epochs} epoch(s), seed {config.seed}: best schedule "
                 f"{best['schedule']} "
                 f"(test {best['test_acc']:.4f}), worst {worst['schedule']} "
                 f"({worst['test_acc']:.4f}), spread {best['test_acc'] - worst['test_acc']:.4f}; "
                 "one seed each, so gaps of a few tenths of a point are not conclusive.")
    by = mlp.set_index("schedule")
    if {"1cycle", "constant"} <= set(by.index):
        gap = by.loc["1cycle", "test_acc"] - by.loc["constant", "test_acc"]
        notes.append(f"MLP, seed {config.seed}: 1cycle {'beats' if gap > 0 else 'does NOT beat'} "
                     "the constant rate "
                     f"({gap:+.4f} test accuracy) with the same peak rate and epochs.")
    if "performance" in by.index:
        cuts = round(np.log2(by.loc["performance", "learning_rate"]
                             / by.loc["performance", "final_lr"]))
        notes.append(f"MLP: ReduceLROnPlateau (patience {patience}) halved "
                     f"the rate {cuts} time(s) in {config.epochs} epochs.")
    if "cyclical" in by.index:
        row = by.loc["cyclical"]
        notes.append(f"MLP: cyclical ends at rate {row['final_lr']:.3g} "
                     f"({row['final_lr'] / row['learning_rate']:.0%} of its peak); test accuracy "
                     f"{row['test_acc']:.4f} at the end, {row['best_test_acc']:.4f} at its best "
                     "epoch.")
    cnn = table[table["model"] == "cnn"].set_index("schedule")
    for name in cnn.index:
        row, target = cnn.loc[name], config.target_accuracy
        per_epoch = ", ".join(f"{a:.4f}" for a in histories[f"cnn_{name}"].history["test_accuracy"])
        reached = (f"reaches {target:.1%} test accuracy after epoch {int(row['epochs_to_target'])}"
                   if row["best_test_acc"] >= target else
                   f"does NOT reach {target:.1%} within {config.cnn_epochs} epochs")
        notes.append(f"CNN with {name} at rate {row['learning_rate']:.3g}: {reached} "
                     f"(test accuracy after each epoch: {per_epoch}).")
    if config.quick:
        notes.append(quick_note())
    return notes


def intro(config: Config, spe: int, rate: dict) -> str:
    """The report's first paragraph: the two nets, the rates and the scaled time constants.

    Args:
        config: the schedules experiment's settings.
        spe: optimizer steps per epoch.
        rate: per model, the rate it trained at.

    Returns:
        The paragraph.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Learning Rate Scheduling".
    """
    return (
        f"MLP 300-100 (ReLU, He init) trained {config.epochs} epochs per schedule. CNN, "
        f"{config.cnn_epochs} epochs: conv 32 -> max pool -> conv 64 (no bias) -> BN -> ReLU "
        "-> max pool -> Dense 128 (no bias) -> BN -> ReLU -> softmax (3x3 kernels; no BN on "
        f"the first conv, where it is costly on CPU). Optimizer {config.optimizer}, batch "
        f"{config.batch_size} ({spe} steps per epoch), seed {config.seed} re-applied before "
        f"each variant, {mnist_text(config.quick)}. Rates: MLP {rate['mlp']:.3g}, CNN "
        f"{rate['cnn']:.3g} (the LR range test's suggestion unless given). The book's time "
        "constants for a 25-epoch run (power s = 10,000 steps, exponential s = 20 epochs, "
        "piecewise drops after epochs 5 and 15, performance patience 5) are scaled to the "
        "run's length; 1cycle spans the run (start at a tenth of the peak); cyclical goes "
        "from a quarter of the rate to the rate in half cycles of 2 epochs.")
