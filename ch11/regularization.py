"""Regularization: none, l2, dropout, alpha dropout (SELU), MC dropout, max-norm, on MNIST.

Hands-On ML, chapter 11, "Avoiding Overfitting Through Regularization". The same MLP is
trained from the same seed without regularization, with an l2 kernel penalty, with
dropout, with max-norm constraints, and as a self-normalizing SELU net with and without
alpha dropout; the dropout model is then also evaluated with Monte Carlo dropout
(`recipes.regularization.mc_predict`). To make overfitting visible in a few minutes the
nets train on a subset of the training set. The run reports the train-validation gap
that diagnoses overfitting, test accuracy and log loss, the hidden kernels' norms and
histograms (`recipes.diagnostics.weight_stats`, `recipes.plots.weight_histograms`: l2 and
max-norm shrink the weights), and MC dropout's predictive uncertainty on correct vs wrong
predictions, with how well it flags the wrong ones (ROC, `recipes.plots.roc_plot`).

Run: ``python -m ch11.regularization`` (``make recipe-regularization``), ``--quick`` for a
smoke run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from ch11._experiment import Results, cli, finish, mnist_splits, start, train_variant
from recipes.builders import build_mlp, count_params
from recipes.diagnostics import weight_stats
from recipes.metrics import roc_auc_per_class, roc_curves
from recipes.optimizers import OPTIMIZER_NAMES, make_optimizer
from recipes.plots import learning_curves, roc_plot, weight_histograms
from recipes.regularization import mc_predict
from recipes.runs import save_figure
from recipes.specs import MLPSpec

__all__ = ["Config", "main", "prediction_stats", "run"]

NAME = "regularization"
VARIANTS = ("none", "l2", "dropout", "max_norm", "selu", "alpha_dropout")


@dataclass(frozen=True)
class Config:
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seed: int = field(default=42, metadata={"help": "seed, re-applied before each variant"})
    quick: bool = field(default=False, metadata={"help": "small slice, one epoch (tests)"})
    train_size: int = field(
        default=5000,
        metadata={"help": "training images used (a subset, so overfitting shows in minutes)"})
    hidden_units: tuple[int, ...] = field(
        default=(100, 100), metadata={"help": "hidden layers (the book's 2 x 100)"})
    epochs: int = field(default=30, metadata={"help": "epochs per variant"})
    optimizer: str = field(default="momentum", metadata={
        "help": "optimizer for every variant (the book's SGD with momentum 0.9)",
        "choices": OPTIMIZER_NAMES})
    learning_rate: float = field(default=0.01, metadata={"help": "learning rate"})
    l2: float = field(default=0.01, metadata={"help": "l2 factor (the book's 0.01)"})
    dropout_rate: float = field(default=0.2, metadata={"help": "dropout rate (the book's)"})
    alpha_dropout_rate: float = field(default=0.2,
                                      metadata={"help": "alpha dropout rate of the SELU net"})
    max_norm: float = field(default=1.0, metadata={"help": "max-norm of each unit's weights"})
    mc_samples: int = field(default=100, metadata={"help": "MC dropout passes (the book's)"})
    batch_size: int = field(default=32, metadata={"help": "mini-batch size"})
    out_dir: str = field(default="runs", metadata={"help": "where run folders go"})

    def __post_init__(self) -> None:
        for name in ("train_size", "epochs", "mc_samples", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("dropout_rate", "alpha_dropout_rate"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}.")
        for name in ("learning_rate", "l2", "max_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}.")
        if not self.hidden_units or min(self.hidden_units) < 1:
            raise ValueError(f"hidden_units must be positive, got {self.hidden_units}.")


def _specs(config: Config) -> dict[str, MLPSpec]:
    base = MLPSpec(hidden_units=config.hidden_units, activation="relu")
    selu = MLPSpec(hidden_units=config.hidden_units, activation="selu",
                   input_norm="normalization")
    return {
        "none": base,
        "l2": dataclasses.replace(base, l2=config.l2),
        "dropout": dataclasses.replace(base, dropout_rate=config.dropout_rate),
        "max_norm": dataclasses.replace(base, max_norm=config.max_norm),
        "selu": selu,
        "alpha_dropout": dataclasses.replace(selu, dropout_rate=config.alpha_dropout_rate,
                                             dropout_kind="alpha"),
    }


def _describe(config: Config) -> dict[str, str]:
    return {
        "none": "ReLU, He init",
        "l2": f"ReLU + l2({config.l2:g}) on kernels",
        "dropout": f"ReLU + Dropout({config.dropout_rate:g}) after each hidden layer",
        "mc_dropout": f"the dropout model, mean of {config.mc_samples} passes with dropout on",
        "max_norm": f"ReLU + MaxNorm({config.max_norm:g}) on kernels",
        "selu": "SELU, LeCun init, standardized inputs",
        "alpha_dropout": f"SELU + AlphaDropout({config.alpha_dropout_rate:g})",
    }


def prediction_stats(mean: np.ndarray, y: np.ndarray, std: np.ndarray | None = None) -> dict:
    """Accuracy, log loss and confidence of class probabilities, split by correct/wrong.

    Args:
        mean: class probabilities, shape ``(n, classes)`` (MC dropout: the mean of passes).
        y: integer labels, shape ``(n,)``.
        std: MC dropout's std of the probabilities over passes, or ``None``.

    Returns:
        ``acc``, ``nll`` (mean negative log probability of the true class), ``conf_correct``
        and ``conf_wrong`` (mean top probability on correct/wrong predictions), and with
        ``std``: ``std_correct``/``std_wrong`` (mean std of the predicted class's
        probability); NaN where a group is empty or ``std`` is ``None``.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Monte Carlo (MC) Dropout".
    """
    mean, y = np.asarray(mean, dtype="float64"), np.asarray(y)
    pred = mean.argmax(axis=1)
    correct = pred == y
    rows = np.arange(len(y))
    top = mean[rows, pred]

    def avg(values: np.ndarray, mask: np.ndarray) -> float:
        return float(values[mask].mean()) if mask.any() else float("nan")

    out = {
        "acc": float(correct.mean()),
        "nll": float(-np.log(np.clip(mean[rows, y], 1e-12, 1.0)).mean()),
        "conf_correct": avg(top, correct), "conf_wrong": avg(top, ~correct),
        "std_correct": float("nan"), "std_wrong": float("nan"),
    }
    if std is not None:
        spread = np.asarray(std, dtype="float64")[rows, pred]
        out["std_correct"], out["std_wrong"] = avg(spread, correct), avg(spread, ~correct)
    return out


def _hidden_kernels(model: keras.Model) -> dict:
    """Hidden kernels' global L2 norm (`weight_stats`), largest unit norm, and the arrays."""
    stats = weight_stats(model)
    hidden = stats[stats["layer"].str.fullmatch(r"hidden_\d+")
                   & stats["variable"].str.endswith("kernel")]
    arrays = {f"{n} (norm {v:.3g})": model.get_layer(n).kernel.numpy()
              for n, v in zip(hidden["layer"], hidden["norm"])}
    return {"kernel_norm": float(np.sqrt((hidden["norm"] ** 2).sum())),
            "max_unit_norm": max(float(np.linalg.norm(a, axis=0).max()) for a in arrays.values()),
            "arrays": arrays}


def run(config: Config) -> Results:
    """Train every variant, evaluate them (and MC dropout) and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per variant, MC dropout included).
    """
    if config.quick:
        config = dataclasses.replace(config, epochs=1, train_size=min(config.train_size, 2000),
                                     mc_samples=min(config.mc_samples, 10))
    run_dir, started = start(NAME, config)
    data = mnist_splits(config.quick)
    data["x_train"] = data["x_train"][: config.train_size]
    data["y_train"] = data["y_train"][: config.train_size]
    n = min(len(data["x_valid"]), len(data["x_train"]))
    probe_x = {"train": data["x_train"][:n], "val": data["x_valid"], "test": data["x_test"]}
    probe_y = {"train": data["y_train"][:n], "val": data["y_valid"], "test": data["y_test"]}
    describe = _describe(config)
    specs = _specs(config)
    rows, histories, mc_detail, weights = [], {}, {}, {}
    for k, (name, spec) in enumerate(specs.items(), 1):
        adapt = data["x_train"] if spec.input_norm == "normalization" else None
        model, history = train_variant(
            lambda s=spec, a=adapt: build_mlp(s, (28, 28), 10, adapt_data=a),
            {"optimizer": make_optimizer(config.optimizer, learning_rate=config.learning_rate),
             "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
            data, seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
            label=f"variant {k}/{len(specs)}: {describe[name]}")
        histories[name] = history
        weights[name] = _hidden_kernels(model)
        probs = {s: model.predict(x, batch_size=1024, verbose=0) for s, x in probe_x.items()}
        rows.append(_row(name, describe[name], model, history,
                         {s: prediction_stats(p, probe_y[s]) for s, p in probs.items()},
                         weights[name]))
        if name == "dropout":
            print(f"MC dropout: {config.mc_samples} passes over train/val/test", flush=True)
            mc = {s: mc_predict(model, x, samples=config.mc_samples, batch_size=2048)
                  for s, x in probe_x.items()}
            stats = {s: prediction_stats(m, probe_y[s], sd) for s, (m, sd) in mc.items()}
            rows.append(_row("mc_dropout", describe["mc_dropout"], model, history, stats,
                             weights[name]))
            pred = mc["test"][0].argmax(axis=1)
            mc_detail = {"std": mc["test"][1][np.arange(len(pred)), pred],
                         "correct": pred == probe_y["test"],
                         "confidence": mc["test"][0].max(axis=1),
                         "one_pass": probs["test"].max(axis=1),
                         "one_pass_correct": probs["test"].argmax(axis=1) == probe_y["test"]}
    table = pd.DataFrame(rows)
    figures = _figures(run_dir, histories, table, mc_detail)
    diag_figures, diagnosis, detection = _diagnostics(run_dir, table, weights, mc_detail)
    notes = _notes(table, config, len(data["y_valid"]), len(data["y_test"]))
    notes += _normalization_note(histories, data)
    return finish(NAME, config, run_dir, started, table,
                  title="Regularization on (a subset of) MNIST", intro=_intro(config, n),
                  histories=histories, figures=figures + diag_figures, notes=notes,
                  metrics=_metrics(table) | detection, sections=[("Diagnostics", diagnosis)])


def _row(name: str, description: str, model: keras.Model, history: keras.callbacks.History,
         stats: dict[str, dict], weights: dict) -> dict:
    h = history.history
    best = int(np.argmax(h["val_accuracy"]))
    mc = name == "mc_dropout"
    return {
        "variant": name, "regularization": description, "train_acc": stats["train"]["acc"],
        "val_acc": stats["val"]["acc"], "train_val_gap": stats["train"]["acc"]
        - stats["val"]["acc"], "test_acc": stats["test"]["acc"], "test_nll": stats["test"]["nll"],
        "best_val_acc": float("nan") if mc else h["val_accuracy"][best],
        "best_epoch": 0 if mc else best + 1,
        "conf_correct": stats["test"]["conf_correct"], "conf_wrong": stats["test"]["conf_wrong"],
        "mc_std_correct": stats["test"]["std_correct"],
        "mc_std_wrong": stats["test"]["std_wrong"],
        "kernel_norm": weights["kernel_norm"], "max_unit_norm": weights["max_unit_norm"],
        "s_per_epoch": float(np.mean(h["epoch_time"])),
        "params": count_params(model)["trainable"],
    }


def _figures(run_dir, histories, table: pd.DataFrame, mc: dict) -> list[tuple[str, str]]:
    acc = {k: {m: h.history[m] for m in ("accuracy", "val_accuracy")}
           for k, h in histories.items()}
    save_figure(learning_curves(acc, metrics=("accuracy",),
                                title="Accuracy per epoch (dashed: training, solid: validation)"),
                run_dir / "accuracy_curves.png")
    fig = learning_curves(histories, metrics=("loss",), title="Loss per epoch")
    fig.axes[0].set_yscale("log")
    save_figure(fig, run_dir / "loss_curves.png")
    save_figure(_gap_bars(table), run_dir / "train_val_gap.png")
    figures = [("Training (dashed) and validation (solid) accuracy", "accuracy_curves.png"),
               ("Training (dashed) and validation (solid) loss; l2 adds its penalty to the "
                "training loss (log scale)", "loss_curves.png"),
               ("Accuracy on the final weights: training vs validation", "train_val_gap.png")]
    if mc:
        save_figure(_mc_hist(mc), run_dir / "mc_dropout_uncertainty.png")
        figures.append(("MC dropout: spread of the predicted class's probability, correct vs "
                        "wrong test predictions", "mc_dropout_uncertainty.png"))
    return figures


def _diagnostics(run_dir, table: pd.DataFrame, weights: dict[str, dict],
                 mc: dict) -> tuple[list[tuple[str, str]], str, dict]:
    """The weight histograms and MC dropout's error-detection ROC, and what they show."""
    arrays = {f"{v}: {n}": a for v, w in weights.items() for n, a in w["arrays"].items()}
    save_figure(weight_histograms(arrays, title="Hidden kernels after training"),
                run_dir / "weight_histograms.png")
    t = table.set_index("variant")
    ref = t.loc["none"] if "none" in t.index else None
    norms = ", ".join(f"{v} {t.loc[v, 'kernel_norm']:.3g}" + (
        f" ({t.loc[v, 'kernel_norm'] / ref['kernel_norm'] - 1:+.0%} vs none)"
        if ref is not None and v != "none" else "") for v in weights)
    units = ", ".join(f"{v} {t.loc[v, 'max_unit_norm']:.3g}" for v in weights)
    figures = [("Hidden kernels' weights per variant after training (log counts)",
                "weight_histograms.png")]
    text = [f"[weight_histograms.png](weight_histograms.png): the hidden kernels' L2 norm "
            f"after training: {norms}; the largest L2 norm of one unit's incoming weights: "
            f"{units}."]
    detection = {}
    if mc:
        scores = {"MC dropout: std of the predicted class": (mc["std"], mc["correct"]),
                  "MC dropout: 1 - mean confidence": (1 - mc["confidence"], mc["correct"]),
                  "one pass: 1 - confidence": (1 - mc["one_pass"], mc["one_pass_correct"])}
        names = ("correct", "wrong")
        if all(0 < ok.sum() < len(ok) for _, ok in scores.values()):
            curves = pd.concat(roc_curves((~ok).astype(int), score, class_names=names)
                               .query("`class` == 'wrong'").assign(**{"class": label})
                               for label, (score, ok) in scores.items())
            detection = {label: float(roc_auc_per_class((~ok).astype(int), score,
                                                        class_names=names)["auc"].iloc[1])
                         for label, (score, ok) in scores.items()}
            save_figure(roc_plot(curves, detection, title="Flagging wrong test predictions"),
                        run_dir / "mc_dropout_error_detection.png")
            figures.append(("ROC of each score as a detector of wrong test predictions",
                            "mc_dropout_error_detection.png"))
            text.append(
                "[mc_dropout_error_detection.png](mc_dropout_error_detection.png): how well "
                "each score ranks the wrong test predictions above the correct ones, AUC "
                + ", ".join(f"{k} {v:.3f}" for k, v in detection.items()) + " (0.5: chance).")
    keys = ("mc_std_error_auc", "mc_confidence_error_auc", "one_pass_confidence_error_auc")
    return figures, "\n\n".join(text), dict(zip(keys, detection.values()))


def _gap_bars(table: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    xs = np.arange(len(table))
    ax.bar(xs - 0.2, table["train_acc"], 0.4, label="training (final weights)")
    ax.bar(xs + 0.2, table["val_acc"], 0.4, label="validation")
    for x, gap, top in zip(xs, table["train_val_gap"], table["train_acc"]):
        ax.annotate(f"{gap:+.3f}", (x, top), ha="center", va="bottom", fontsize=8)
    low = float(min(table["train_acc"].min(), table["val_acc"].min()))
    ax.set_ylim(max(0.0, low - 0.03), 1.01)
    ax.set_xticks(xs, table["variant"], rotation=30, ha="right")
    ax.set_ylabel("accuracy (labels: train - val gap)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def _mc_hist(mc: dict):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0.0, max(0.05, float(mc["std"].max())), 40)
    for mask, label in ((mc["correct"], "correct"), (~mc["correct"], "wrong")):
        if mask.any():
            ax.hist(mc["std"][mask], bins=bins, density=True, alpha=0.5,
                    label=f"{label} ({int(mask.sum())})")
    ax.set_xlabel("std over MC passes of the predicted class's probability")
    ax.set_ylabel("density")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _metrics(table: pd.DataFrame) -> dict:
    return {f"{r.variant}_{c}": getattr(r, c) for r in table.itertuples()
            for c in ("train_val_gap", "val_acc", "test_acc")}


def _noise(acc: float, n: int) -> float:
    """Twice the standard error of the difference of two accuracies near `acc` on n images."""
    return 2 * float(np.sqrt(2 * acc * (1 - acc) / n))


def _verdict(diff: float, noise: float) -> str:
    if abs(diff) <= noise:
        return "is unchanged within noise"
    return "rises" if diff > 0 else "falls"


def _notes(table: pd.DataFrame, config: Config, n_val: int, n_test: int) -> list[str]:
    t = table.set_index("variant")
    none = t.loc["none"]
    notes = [
        f"Without regularization the net reaches {none.train_acc:.4f} on training images and "
        f"{none.val_acc:.4f} on validation: a gap of {none.train_val_gap:+.4f}"
        + (", the overfitting the regularizers should shrink." if none.train_val_gap > 0.01
           else "; too small to call overfitting at these settings.")]
    p = float(none.val_acc)
    se = _noise(p, n_val)
    se_test = _noise(float(none.test_acc), n_test)
    for name, base in (("l2", "none"), ("dropout", "none"), ("max_norm", "none"),
                       ("alpha_dropout", "selu")):
        r, b = t.loc[name], t.loc[base]
        change = r.train_val_gap - b.train_val_gap
        shrinks = ("does NOT shrink" if change > 0 else "shrinks") if abs(change) > se else \
            "barely changes (within noise)"
        diff, diff_test = r.val_acc - b.val_acc, r.test_acc - b.test_acc
        notes.append(
            f"{name} {shrinks} the gap vs {base} ({r.train_val_gap:+.4f} vs "
            f"{b.train_val_gap:+.4f}); validation accuracy {_verdict(diff, se)} "
            f"({r.val_acc:.4f} vs {b.val_acc:.4f}, {diff:+.4f}, noise level {se:.4f}), test "
            f"accuracy {_verdict(diff_test, se_test)} ({r.test_acc:.4f} vs {b.test_acc:.4f}, "
            f"{diff_test:+.4f}, noise level {se_test:.4f}).")
    if none.best_epoch < config.epochs and none.best_val_acc - none.val_acc > se:
        notes.append(
            f"Unregularized validation accuracy peaked at epoch {int(none.best_epoch)} "
            f"({none.best_val_acc:.4f}) and ended at {none.val_acc:.4f}: early stopping would "
            "keep the peak.")
    d, mc = t.loc["dropout"], t.loc["mc_dropout"]
    notes.append(
        f"MC dropout ({config.mc_samples} passes) vs the same dropout model in one "
        f"deterministic pass: test accuracy {mc.test_acc:.4f} vs {d.test_acc:.4f}, test log "
        f"loss {mc.test_nll:.4f} vs {d.test_nll:.4f}, mean confidence on wrong predictions "
        f"{mc.conf_wrong:.3f} vs {d.conf_wrong:.3f} (lower: less overconfident).")
    if np.isfinite(mc.mc_std_wrong) and np.isfinite(mc.mc_std_correct):
        ratio = mc.mc_std_wrong / max(mc.mc_std_correct, 1e-12)
        notes.append(
            f"MC dropout's uncertainty: the predicted class's probability varies over passes "
            f"with mean std {mc.mc_std_wrong:.3f} on wrong test predictions vs "
            f"{mc.mc_std_correct:.3f} on correct ones ({ratio:.1f}x): "
            + ("the spread flags the predictions to distrust." if ratio > 1.5 else
               "too small a difference to flag wrong predictions."))
    best = t["val_acc"].idxmax()
    notes.append(f"Best validation accuracy: {best} ({t.loc[best, 'val_acc']:.4f}). One seed, "
                 "one untuned setting per regularizer. Noise level above: twice the binomial "
                 "standard error of the difference of two accuracies (near the unregularized "
                 f"net's, on {n_val:,} validation or {n_test:,} test images).")
    if config.quick:
        notes.append("Quick mode: a small slice and one epoch; the numbers only smoke-test.")
    return notes


def _normalization_note(histories, data) -> list[str]:
    """Flag the SELU nets' Keras val_loss when unseen pixels blow up the standardization."""
    flat = data["x_train"].reshape(len(data["x_train"]), -1)
    constant = flat.std(axis=0) == 0
    touched = {s: int((data[f"x_{s}"].reshape(len(data[f"x_{s}"]), -1)[:, constant] > 0)
                      .any(axis=1).sum()) for s in ("valid", "test")}
    worst = max(max(histories[k].history["val_loss"]) for k in ("selu", "alpha_dropout"))
    if worst < 10 * max(max(h.history["val_loss"]) for h in histories.values()
                        if h is not histories["selu"] and h is not histories["alpha_dropout"]):
        return []
    return [
        f"The SELU nets' Keras val_loss reaches {worst:.3g}: {int(constant.sum())} pixels are "
        "constant in the training subset, Keras's Normalization divides by max(std, 1e-7), "
        f"and the {touched['valid']} validation ({touched['test']} test) images with ink on "
        "such a pixel get inputs near 1e7 and a huge cross-entropy. They can cost at most "
        f"{touched['valid'] / len(data['x_valid']):.2%} of validation accuracy; test_nll "
        "clips probabilities at 1e-12, so each adds at most 27.6 / "
        f"{len(data['x_test']):,} to it. The loss figure uses a log scale."]


def _intro(config: Config, n: int) -> str:
    return (
        f"MLP {' x '.join(map(str, config.hidden_units))}, softmax output, trained on a "
        f"SUBSET of {config.train_size:,} MNIST training images (so that overfitting shows "
        f"within minutes) for {config.epochs} epoch(s) with {config.optimizer} at learning "
        f"rate {config.learning_rate:g}, batch {config.batch_size}, seed {config.seed} "
        "re-applied before each variant; validation: the usual 5,000 held-out images, test: "
        "the 10,000 test images. Training accuracy is measured on the final weights (dropout "
        f"off), on {n:,} training images. MC dropout reuses the trained dropout model "
        "(no retraining). The SELU nets standardize their inputs with a Normalization layer "
        "and use LeCun initialization; alpha dropout is compared with the plain SELU net.")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m ch11.regularization [--quick] [--train-size N] ...``."""
    return cli(Config, run, argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
