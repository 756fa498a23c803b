"""The optimizers experiment's report: figures, notes, headline metrics and intro."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from ch11._evidence import BookFigure, Evidence, compare, seeds_note
from ch11._text import mnist_text, quick_note
from ch11.optimizers.config import Config
from recipes.plots import learning_curves
from recipes.runs import save_figure
from recipes.specs import MLPSpec

__all__ = ["BOOK", "BOOK_VAL_ACC", "HEADLINE_COLUMNS", "agreement", "evidence", "figures",
           "headline", "intro", "metrics", "notes"]

HEADLINE_COLUMNS = ("val_acc_epoch1", "val_acc")
# The notebook's validation accuracy after 10 epochs (its "sgd" cell repeats momentum's).
BOOK_VAL_ACC = {"momentum": 0.8672, "nesterov": 0.8708, "adagrad": 0.8424, "rmsprop": 0.8636,
                "adam": 0.8696, "adamax": 0.8780, "nadam": 0.8740, "adamw": 0.8702}
BOOK = BookFigure(
    claim="the adaptive optimizers (RMSProp, Adam and its variants) and momentum converge "
          "faster than plain SGD; AdaGrad slows down too early",
    figure="validation accuracy after 10 epochs: " + ", ".join(
        f"{k} {v:.4f}" for k, v in sorted(BOOK_VAL_ACC.items(), key=lambda kv: -kv[1])),
    setting="MLP 100-100-100 ReLU, rate 1e-3 for every optimizer (momentum 0.9), one seed")


def headline(summary: pd.DataFrame, seeds: Sequence[int], why: str, config: Config) -> str:
    """The optimizers ranked over seeds, the best vs plain SGD and vs the runner-up.

    Args:
        summary: `ch11._evidence.seed_summary` per optimizer.
        seeds: the seeds.
        why: why fewer than 3 seeds.
        config: the optimizers experiment's settings.

    Returns:
        The sentence.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Faster Optimizers".
    """
    ranked = list(summary.sort_values("val_acc_mean", ascending=False)["optimizer"])
    text = (f"Validation accuracy after {config.epochs} epoch(s), {seeds_note(seeds, why)}, best "
            "first: " + ", ".join(ranked))
    if len(ranked) > 1:
        text += "; best vs runner-up: " + compare(summary, ranked[0], "val_acc", ranked[1])
    if "sgd" in ranked and ranked[0] != "sgd":
        text += "; best vs plain SGD: " + compare(summary, ranked[0], "val_acc", "sgd")
        if "adam" in ranked and ranked[0] != "adam":
            text += "; adam vs plain SGD: " + compare(summary, "adam", "val_acc", "sgd")
        if config.epochs > 1:
            text += ("; after epoch 1, best vs plain SGD: "
                     + compare(summary, ranked[0], "val_acc_epoch1", "sgd"))
    return text + "."


def agreement(summary: pd.DataFrame, config: Config) -> str:
    """One line: AdaGrad's rank and the spread of the optimizers, ours vs the book's."""
    s = summary.set_index("optimizer")
    ours = s.loc[s.index.isin(list(BOOK_VAL_ACC)), "val_acc_mean"]
    if len(ours) < 2:
        return "not comparable: fewer than two of the book's optimizers were run."
    book_range = max(BOOK_VAL_ACC.values()) - min(BOOK_VAL_ACC.values())
    text = (f"best-to-worst range of the book's optimizers {ours.max() - ours.min():.4f} here "
            f"after {config.epochs} epoch(s) vs {book_range:.4f} in the book after 10")
    if "adagrad" in ours.index:
        last = ours.idxmin() == "adagrad"
        return (f"{'agrees' if last else 'does not agree'}: AdaGrad ranks "
                f"{'last' if last else 'not last'} here, last in the book; {text}.")
    return f"partly comparable (AdaGrad not run): {text}."


def evidence(summary: pd.DataFrame, per_seed: pd.DataFrame, seeds: Sequence[int], why: str,
             config: Config) -> Evidence:
    """The headline with its spread over seeds and the book's figures."""
    return Evidence(headline(summary, seeds, why, config), tuple(seeds), summary,
                    HEADLINE_COLUMNS, BOOK, agreement(summary, config), why, per_seed)


def figures(run_dir: Path, histories: Mapping[str, keras.callbacks.History],
            table: pd.DataFrame) -> list[tuple[str, str]]:
    """Draw the validation and training curves, loss against time, and the summary bars.

    Args:
        run_dir: the run folder.
        histories: per optimizer, its Keras history.
        table: the results table, one row per optimizer.

    Returns:
        The report's (caption, file) pairs.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Faster Optimizers".
    """
    val = {k: {m: h.history[m] for m in ("val_loss", "val_accuracy")}
           for k, h in histories.items()}
    train = {k: {"loss": h.history["loss"]} for k, h in histories.items()}
    timed = {k: {"val_loss": h.history["val_loss"], "epoch_time": h.history["epoch_time"]}
             for k, h in histories.items()}
    save_figure(learning_curves(val, title="Validation loss and accuracy per epoch"),
                run_dir / "val_curves.png")
    save_figure(learning_curves(train, metrics=("loss",), title="Training loss per epoch"),
                run_dir / "train_loss.png")
    save_figure(learning_curves(timed, metrics=("loss",), x="time",
                                title="Validation loss against training time"),
                run_dir / "val_loss_vs_time.png")
    save_figure(_summary_bars(table), run_dir / "summary.png")
    return [("Validation loss and accuracy of each optimizer", "val_curves.png"),
            ("Training loss (running mean over each epoch)", "train_loss.png"),
            ("Validation loss against cumulative training seconds", "val_loss_vs_time.png"),
            ("Validation accuracy after the last epoch and seconds per epoch", "summary.png")]


def _summary_bars(table: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    names = table["optimizer"].tolist()
    xs = np.arange(len(names))
    ax1.bar(xs, table["val_acc"], color="tab:blue")
    low = max(0.0, float(table["val_acc"].min()) - 0.02)
    ax1.set_ylim(low, min(1.0, float(table["val_acc"].max()) + 0.01))
    ax1.set_ylabel(f"validation accuracy after {int(table['epochs'].max())} epochs")
    ax2.bar(xs, table["s_per_epoch"], color="tab:orange")
    ax2.set_ylabel("seconds per epoch")
    for ax in (ax1, ax2):
        ax.set_xticks(xs, names, rotation=45, ha="right")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def metrics(table: pd.DataFrame) -> dict:
    """The headline numbers of results.json: per optimizer its accuracies and time per epoch.

    Args:
        table: the results table, one row per optimizer.

    Returns:
        A JSON-ready dict.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Faster Optimizers".
    """
    return {f"{r.optimizer}_{c}": getattr(r, c) for r in table.itertuples()
            for c in ("val_acc", "test_acc", "s_per_epoch")}


def notes(table: pd.DataFrame, config: Config, load: tuple[float, float],
          n_val: int) -> list[str]:
    """What the run shows, in sentences, the ranking first.

    Args:
        table: the results table, one row per optimizer.
        config: the optimizers experiment's settings.
        load: the 1-minute load average at the start and at the end of the run.
        n_val: validation images (the noise level of an accuracy difference).

    Returns:
        The notes.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Faster Optimizers".
    """
    t = table.set_index("optimizer")
    epochs = int(t["epochs"].max())
    ranked = t.sort_values("val_acc", ascending=False)
    notes = [f"Seed {config.seed}, ranking by validation accuracy after {epochs} epoch(s): "
             + ", ".join(
        f"{name} {row.val_acc:.4f}" for name, row in ranked.iterrows()) + "."]
    if "sgd" in t.index:
        sgd = t.loc["sgd"]
        p = float(sgd.val_acc)
        se = float(np.sqrt(2 * p * (1 - p) / n_val))  # std error of a difference
        for name in ("adam", "nadam"):
            if name not in t.index:
                continue
            r = t.loc[name]
            diff = r.val_acc - sgd.val_acc
            if abs(diff) <= 2 * se:
                verdict = "is within noise of"
            else:
                verdict = "beats" if diff > 0 else "does NOT beat"
            notes.append(
                f"Seed {config.seed}: {name} {verdict} plain SGD after the same {epochs} epoch(s): "
                "validation "
                f"{r.val_acc:.4f} vs {sgd.val_acc:.4f} (difference {diff:+.4f}; noise level, "
                f"twice the standard error of a difference on {n_val:,} images: {2 * se:.4f}), "
                "test "
                f"{r.test_acc:.4f} vs {sgd.test_acc:.4f}; final training loss "
                f"{r.train_loss:.4f} vs {sgd.train_loss:.4f} ({sgd.train_loss / r.train_loss:.1f}x "
                f"lower for {name}: how far each optimizer got on the training objective), "
                f"learning rates {r.learning_rate:g} vs {sgd.learning_rate:g}; validation "
                f"accuracy after the first epoch {r.val_acc_epoch1:.4f} vs "
                f"{sgd.val_acc_epoch1:.4f}.")
        twins = [o for o in ("momentum", "nesterov") if o in t.index]
        if twins and config.learning_rate is None:
            spread = max(abs(t.loc[o, "val_acc"] - sgd.val_acc) for o in twins)
            notes.append(
                f"Plain SGD at {sgd.learning_rate:g} and {'/'.join(twins)} at "
                f"{t.loc[twins[0], 'learning_rate']:g} with momentum 0.9 reach the same "
                f"terminal step (lr / (1 - 0.9) = {t.loc[twins[0], 'learning_rate'] / 0.1:g}): "
                f"their validation accuracies differ by at most {spread:.4f}.")
    if "adagrad" in t.index and len(t) > 2:
        rank = list(ranked.index).index("adagrad") + 1
        shows = "consistent with" if rank > len(t) / 2 else "NOT showing"
        notes.append(
            f"AdaGrad ranks {rank} of {len(t)} (validation accuracy "
            f"{t.loc['adagrad', 'val_acc']:.4f}), {shows} the book's warning that its "
            "accumulated squared gradients shrink the effective rate too early.")
    if {"adam", "adamw"} <= set(t.index):
        diff = abs(t.loc["adam", "val_acc"] - t.loc["adamw", "val_acc"])
        notes.append(
            f"AdamW vs Adam: validation accuracy differs by {diff:.4f}; with weight decay "
            "1e-5 the decoupled decay changes each weight by only lr x 1e-5 per step, so "
            "over a few epochs the two are expected to be close.")
    fastest, slowest = t["s_per_epoch"].idxmin(), t["s_per_epoch"].idxmax()
    notes.append(
        f"Time per epoch ranges from {t.loc[fastest, 's_per_epoch']:.1f} s ({fastest}) to "
        f"{t.loc[slowest, 's_per_epoch']:.1f} s ({slowest}), a "
        f"{t.loc[slowest, 's_per_epoch'] / t.loc[fastest, 's_per_epoch']:.2f}x spread "
        f"(1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end of the "
        "run: on a shared machine part of the spread is other work, not the optimizer).")
    gap = ranked.iloc[0]["val_acc"] - ranked.iloc[-1]["val_acc"]
    second = ranked.iloc[0]["val_acc"] - ranked.iloc[1]["val_acc"] if len(t) > 1 else 0.0
    notes.append(
        f"Seed {config.seed}: best minus worst validation accuracy: {gap:.4f}; best minus "
        f"runner-up: {second:.4f}, with one untuned learning rate per optimizer"
        + (": a lead this small (under 0.5 point) can change with the seed or a tuned rate "
           "(the headline says whether it exceeds the spread over seeds)."
           if second < 0.005 else "."))
    if config.quick:
        notes.append(quick_note())
    return notes


def intro(config: Config, spec: MLPSpec, rates: Mapping[str, float]) -> str:
    """The report's first paragraph: the net, the optimizers and their rates.

    Args:
        config: the optimizers experiment's settings.
        spec: the MLP every optimizer trains.
        rates: per optimizer, the learning rate it trained with.

    Returns:
        The paragraph.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Faster Optimizers".
    """
    rates = ", ".join(f"{o} {rate:g}" for o, rate in rates.items())
    return (
        f"MLP {' x '.join(map(str, spec.hidden_units))} {spec.activation} (He initialization "
        "through the recipes' 'auto' table), softmax output; each optimizer from "
        "recipes.optimizers.make_optimizer with the book's hyperparameters (momentum 0.9, "
        "rho 0.9, beta_1 0.9, beta_2 0.999, AdamW weight decay 1e-5); learning rates: "
        f"{rates}. Batch {config.batch_size}, {config.epochs} epoch(s), seed {config.seed} "
        f"re-applied before each optimizer, {mnist_text(config.quick)}. Training accuracy is "
        "measured on the final weights, on 5,000 training images.")
