"""Classification losses: cross-entropy vs mean squared error on softmax outputs, and BCE.

Hands-On ML, chapter 10, "Building an Image Classifier Using the Sequential API" (the
loss for classification) and chapter 4, "Softmax Regression" (the cross-entropy
gradient), as chapter 11 uses them. The same MLP trains from the same seed with the
categorical cross-entropy and with the MSE between its softmax probabilities and the
one-hot labels (``recipes.losses.make_loss("mse")``); a one-unit sigmoid version of it
learns a one-vs-rest task (the book's "5-detector") with the binary cross-entropy. The
report computes, with ``tf.GradientTape``, each loss's gradient with respect to the
logits at a wrong answer of growing confidence: the reason MSE learns slowly.

Run: ``python -m ch11.losses`` (``make recipe-losses``), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ch11 import _experiment as ex
from ch11._text import mnist_text, quick_note
from recipes.builders import build_mlp
from recipes.losses import make_loss
from recipes.metrics import precision_recall_f1, roc_auc_per_class
from recipes.plots import learning_curves
from recipes.runs import save_figure
from recipes.specs import MLPSpec

__all__ = ["Config", "logit_gradients", "main", "run"]

NAME = "losses"


@dataclass(frozen=True)
class Config(ex.ExperimentConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    hidden_units: tuple[int, ...] = ex.option((300, 100), "the MLP's hidden layers")
    epochs: int = ex.option(5, "epochs for every variant")
    optimizer: str = ex.optimizer_option(
        "sgd", "optimizer for every variant (the book's chapter 10 SGD)")
    learning_rate: float = ex.option(0.01, "learning rate")
    batch_size: int = ex.option(32, "mini-batch size")
    positive_digit: int = ex.option(
        5, "the positive class of the one-vs-rest binary task (the book's 5-detector)")
    margins: tuple[float, ...] = ex.option(
        (0.0, 1.0, 2.0, 4.0, 8.0, 12.0),
        "logit margins of the wrong class over the others in the gradient table")
    out_dir: str = ex.out_dir_option()

    def __post_init__(self) -> None:
        self._at_least(1, "epochs", "batch_size")
        self._positive("learning_rate")
        if self.positive_digit not in range(10):
            raise ValueError(f"positive_digit must be an MNIST digit 0-9, got "
                             f"{self.positive_digit!r}.")
        if not self.margins or min(self.margins) < 0:
            raise ValueError(f"margins must be >= 0, got {self.margins}.")


def logit_gradients(margins: Sequence[float], num_classes: int = 10) -> pd.DataFrame:
    """Each loss's gradient with respect to the logits at a confidently wrong answer.

    For each margin ``m`` the logits are ``m`` for a wrong class and 0 elsewhere, the true
    class being another one; ``tf.GradientTape`` differentiates the cross-entropy and the
    softmax MSE (both from logits, through ``make_loss``). Analytically the
    cross-entropy's gradient is ``p - y``, whose norm tends to ``sqrt(2)``; the MSE's is
    ``(2 / K) J^T (p - y)`` with the softmax Jacobian ``J = diag(p) - p p^T``, which
    vanishes as ``p`` saturates.

    Args:
        margins: logit margins of the wrong class (>= 0).
        num_classes: ``K``. Defaults to `10`.

    Returns:
        One row per margin: ``margin``, ``p_wrong``, ``p_true``, the two losses, each
        gradient's norm and its component on the true class's logit, and
        ``ce_over_mse`` (ratio of the norms).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 4, Equation 4-23 (the cross-entropy
    gradient); Golik et al., "Cross-entropy vs. squared error training" (2013).
    """
    rows = []
    y = tf.constant([0])  # the true class; class 1 gets the wrong, confident logit
    for m in margins:
        logits = tf.Variable(np.eye(1, num_classes, 1, dtype="float32") * float(m))
        row = {"margin": float(m)}
        p = tf.nn.softmax(logits)[0].numpy()
        row.update(p_wrong=float(p[1]), p_true=float(p[0]))
        for key, name in (("ce", "crossentropy"), ("mse", "mse")):
            with tf.GradientTape() as tape:
                loss = make_loss(name, from_logits=True)(y, logits)
            grad = tape.gradient(loss, logits)[0].numpy()
            row.update({f"{key}_loss": float(loss), f"{key}_grad_norm": float(np.linalg.norm(grad)),
                        f"{key}_grad_true": float(grad[0])})
        row["ce_over_mse"] = row["ce_grad_norm"] / row["mse_grad_norm"] \
            if row["mse_grad_norm"] > 0 else float("inf")
        rows.append(row)
    return pd.DataFrame(rows)


def run(config: Config) -> ex.Results:
    """Train the three variants, compute the gradient table and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per loss).
    """
    if config.quick:
        config = dataclasses.replace(config, epochs=1)
    run_dir, started = ex.start(NAME, config)
    data = ex.mnist_splits(config.quick)
    spec = MLPSpec(hidden_units=config.hidden_units)
    rows, histories = [], {}
    for k, loss_name in enumerate(("crossentropy", "mse"), 1):
        model, history = ex.train_variant(
            lambda: build_mlp(spec, (28, 28), 10),
            ex.classifier_compile(config.optimizer, config.learning_rate, loss=loss_name),
            data, seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
            label=f"variant {k}/3: 10 classes, loss {loss_name}")
        histories[loss_name] = history
        rows.append(_row(loss_name, "10 classes", model, history, data))

    digit = config.positive_digit
    binary = {k: (v == digit).astype("float32") if k.startswith("y_") else v
              for k, v in data.items()}
    model, history = ex.train_variant(
        lambda: build_mlp(spec, (28, 28), 1),
        ex.classifier_compile(config.optimizer, config.learning_rate, loss="binary_crossentropy",
                              metrics=[keras.metrics.BinaryAccuracy(name="accuracy"),
                                       keras.metrics.AUC(name="auc")]),
        binary, seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
        label=f"variant 3/3: {digit} vs rest, loss binary_crossentropy")
    histories["binary_crossentropy"] = history
    rows.append(_binary_row(model, history, binary, digit))

    table = pd.DataFrame(rows)
    grads = logit_gradients(config.margins)
    grads.to_csv(run_dir / "logit_gradients.csv", index=False)
    figures = _figures(run_dir, histories, grads)
    notes = _notes(table, grads, histories, config)
    return ex.finish(NAME, config, run_dir, started, table,
                     title="Cross-entropy vs MSE for classification, and binary cross-entropy",
                     intro=_intro(config), histories=histories, figures=figures, notes=notes,
                     metrics=_metrics(table, grads),
                     sections=[("Gradient at a confidently wrong answer", _grad_section(grads))])


def _row(loss_name: str, task: str, model: keras.Model, history, data) -> dict:
    h = history.history
    return {"loss": loss_name, "task": task, "epochs": len(h["loss"]),
            "val_acc_epoch1": h["val_accuracy"][0], "val_acc": h["val_accuracy"][-1],
            "test_acc": ex.test_accuracy(model, data), "majority_acc": float("nan"),
            "test_auc": float("nan"), "test_precision": float("nan"), "test_recall": float("nan"),
            "s_per_epoch": float(np.mean(h["epoch_time"]))}


def _binary_row(model: keras.Model, history, data, digit: int) -> dict:
    h = history.history
    _, test_acc, _ = model.evaluate(data["x_test"], data["y_test"], verbose=0)
    y = data["y_test"].astype("int64")
    scores = model.predict(data["x_test"], verbose=0)[:, 0]
    auc = roc_auc_per_class(y, scores).set_index("index").loc[1, "auc"]
    prf = precision_recall_f1(y, scores, num_classes=2).iloc[1]
    return {"loss": "binary_crossentropy", "task": f"{digit} vs rest", "epochs": len(h["loss"]),
            "val_acc_epoch1": h["val_accuracy"][0], "val_acc": h["val_accuracy"][-1],
            "test_acc": test_acc, "majority_acc": float(1 - y.mean()), "test_auc": auc,
            "test_precision": prf["precision"], "test_recall": prf["recall"],
            "s_per_epoch": float(np.mean(h["epoch_time"]))}


def _figures(run_dir, histories: Mapping, grads: pd.DataFrame) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt

    ten = {f"{k} (10 classes)": v for k, v in histories.items() if k != "binary_crossentropy"}
    save_figure(learning_curves(ten, metrics=("accuracy",),
                                title="Same MLP, same seed: cross-entropy vs softmax MSE"),
                run_dir / "accuracy_curves.png")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(grads["margin"], grads["ce_grad_norm"], marker="o", label="cross-entropy")
    ax.plot(grads["margin"], grads["mse_grad_norm"], marker="s", label="MSE on softmax")
    ax.set_yscale("log")
    ax.set_xlabel("logit margin of the wrong class (confidence of the wrong answer)")
    ax.set_ylabel("||dLoss / dlogits||")
    ax.set_title("Gradient reaching the logits at a wrong answer")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, run_dir / "logit_gradients.png")
    return [("Validation (solid) and training (dashed) accuracy per epoch",
             "accuracy_curves.png"),
            ("Norm of the gradient with respect to the logits against the wrong answer's "
             "margin (log scale)", "logit_gradients.png")]


def _grad_section(grads: pd.DataFrame) -> str:
    cols = ["margin", "p_wrong", "p_true", "ce_loss", "ce_grad_norm", "ce_grad_true",
            "mse_loss", "mse_grad_norm", "mse_grad_true", "ce_over_mse"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in grads[cols].itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.4g}" for v in r) + " |")
    return ("Ten logits: the margin on one wrong class, 0 elsewhere; the true class is "
            "another one. Gradients by `tf.GradientTape` with respect to the logits "
            "(`make_loss(..., from_logits=True)`); `*_grad_true` is the component on the true "
            "class's logit (negative = pushes it up). The MSE averages over the 10 classes, "
            "a constant factor 1/10; what matters is how each gradient changes with the "
            "margin.\n\n" + "\n".join(lines))


def _epochs_to_reach(history, target: float) -> int | None:
    for epoch, acc in enumerate(history.history["val_accuracy"], 1):
        if acc >= target:
            return epoch
    return None


def _notes(table: pd.DataFrame, grads: pd.DataFrame, histories: Mapping,
           config: Config) -> list[str]:
    t = table.set_index("loss")
    ce, mse = t.loc["crossentropy"], t.loc["mse"]
    slower = mse["val_acc"] < ce["val_acc"]
    target = ce["val_acc_epoch1"]
    reach = _epochs_to_reach(histories["mse"], target)
    reach_text = (f"MSE needed {reach} epoch(s) to reach the validation accuracy that "
                  f"cross-entropy had after one ({target:.4f})" if reach is not None else
                  f"MSE never reached, in {config.epochs} epoch(s), the validation accuracy "
                  f"that cross-entropy had after one ({target:.4f})")
    notes = [f"After {config.epochs} epoch(s) of {config.optimizer} at {config.learning_rate:g}, "
             f"MSE on the softmax outputs reaches {mse['val_acc']:.4f} validation accuracy vs "
             f"{ce['val_acc']:.4f} for cross-entropy: MSE "
             f"{'converges more slowly' if slower else 'does NOT converge more slowly'} "
             f"here. {reach_text}."]
    lo, hi = grads.iloc[0], grads.iloc[-1]
    notes.append(
        f"At a wrong answer with margin {hi['margin']:g} (p_wrong = {hi['p_wrong']:.4f}), the "
        f"cross-entropy's gradient on the logits has norm {hi['ce_grad_norm']:.3g}, MSE's "
        f"{hi['mse_grad_norm']:.3g} ({hi['ce_over_mse']:.3g}x smaller; at margin "
        f"{lo['margin']:g} the ratio is {lo['ce_over_mse']:.3g}). The softmax Jacobian "
        "multiplies MSE's error by p(1-p) terms that vanish as the wrong answer grows "
        "confident, so the examples that most need correcting get the weakest push; the "
        "cross-entropy's log cancels the softmax's exponential and its gradient p - y keeps a "
        f"norm between {grads['ce_grad_norm'].min():.3g} and {grads['ce_grad_norm'].max():.3g} "
        "over these margins.")
    b = t.loc["binary_crossentropy"]
    notes.append(
        f"Binary cross-entropy, {b['task']}: test accuracy {b['test_acc']:.4f} against "
        f"{b['majority_acc']:.4f} for always answering 'not {config.positive_digit}'; AUC "
        f"{b['test_auc']:.4f}, precision {b['test_precision']:.4f}, recall "
        f"{b['test_recall']:.4f}"
        + (" (precision NaN: no image predicted positive)" if np.isnan(b["test_precision"])
           else "") + ". On a 1-in-10 task, accuracy alone says little: read the "
        "AUC, precision and recall.")
    if config.quick:
        notes.append(quick_note())
    return notes


def _metrics(table: pd.DataFrame, grads: pd.DataFrame) -> dict:
    out = {f"{r.loss}_{c}": getattr(r, c) for r in table.itertuples()
           for c in ("val_acc", "test_acc")}
    out["binary_test_auc"] = float(table["test_auc"].iloc[-1])
    out["max_margin_ce_over_mse"] = float(grads["ce_over_mse"].iloc[-1])
    return out


def _intro(config: Config) -> str:
    return (
        f"MLP {'-'.join(map(str, config.hidden_units))} (ReLU, He init), softmax output of 10 "
        f"units for cross-entropy and MSE (`make_loss('crossentropy')`, `make_loss('mse')`), "
        f"one sigmoid unit for the binary task ({config.positive_digit} vs the other digits, "
        f"`make_loss('binary_crossentropy')`). Every variant: optimizer {config.optimizer}, "
        f"learning rate {config.learning_rate:g}, batch {config.batch_size}, "
        f"{config.epochs} epoch(s), seed {config.seed} re-applied before each, "
        f"{mnist_text(config.quick)}.")


main = ex.make_main(Config, run, __doc__,
                    "python -m ch11.losses [--quick] [--epochs N] [--positive-digit D] ...")


if __name__ == "__main__":
    raise SystemExit(main())
