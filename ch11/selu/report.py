"""The SELU experiment's report: figures, notes, headline metrics and intro."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ch11._text import mnist_text, quick_note
from ch11.selu.config import Config
from recipes.plots import layer_profile, learning_curves
from recipes.runs import save_figure

__all__ = ["TRAINS_AT", "figures", "intro", "metrics", "notes"]

TRAINS_AT = 0.5  # validation accuracy that counts as "trains": five times chance (10 classes)


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




def notes(table: pd.DataFrame, config: Config,
          outliers: tuple[int, float, int]) -> list[str]:
    """What the run shows, in sentences, the chapter's claim first.

    Args:
        table: the results table, one row per net.
        config: the SELU experiment's settings.
        outliers: (validation images with a standardized pixel beyond 10 std, the largest
            such value, validation images).

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
            f"{name}: validation accuracy {r['val_acc_epoch1']:.4f} after epoch 1{later_acc}; "
            f"training loss (epoch mean) {r['loss_first_epoch']:.3f} in epoch 1{later_loss}: "
            f"it {verdict} (criterion: validation accuracy >= {TRAINS_AT}, five times chance).")
    if {"selu", "relu"} <= set(nets.index):
        selu_ok, relu_ok = bool(nets.loc["selu", "trains"]), bool(nets.loc["relu", "trains"])
        accs = (f"validation accuracy {nets.loc['selu', 'val_acc']:.4f} for SELU, "
                f"{nets.loc['relu', 'val_acc']:.4f} for ReLU")
        verdict = {
            (True, False): "holds in this run",
            (True, True): "does NOT hold in this run: both nets train",
            (False, True): "does NOT hold in this run: the other way round, the ReLU net "
                           "trains and the SELU net does not",
            (False, False): "does NOT hold in this run: neither net trains",
        }[(selu_ok, relu_ok)]
        notes.insert(0, f"The chapter's claim that the {config.depth}-layer SELU net trains "
                        f"while the ReLU net without BN does not: {verdict} ({accs} after "
                        f"{config.epochs} epoch(s)).")
        r = nets.loc["selu"]
        if r["grad_max_over_min"] > 10 and r["grad_first"] > r["grad_last"]:
            notes.append(
                f"Where SELU struggles: its forward signal is normalized at initialization, "
                f"but its gradients are not: the kernel gradient at hidden_0 is "
                f"{r['grad_first'] / r['grad_last']:.3g}x the one at hidden_{config.depth - 1}, "
                "so they grow toward the input, and the first layers take the largest steps. "
                f"After training the per-layer std reaches {r['trained_std_max']:.3g}: the "
                "updated weights no longer keep the net self-normalizing.")
    n, top, total = outliers
    notes.append(f"Inputs: {n} of {total} validation images have a standardized pixel beyond "
                 f"10 std (largest {top:.3g}): MNIST has border pixels that are (almost) "
                 "constant in the training set, and standardizing divides them by a tiny std. "
                 "Such images get huge activations, which can inflate the validation loss.")
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
        f"{config.optimizer} at {config.learning_rate:g}, batch {config.batch_size}, "
        f"{config.epochs} epoch(s) (the book trains 5), seed {config.seed} re-applied before "
        f"each net, {mnist_text(config.quick)}. Per-layer statistics on {config.probe_size} "
        "training images.")
