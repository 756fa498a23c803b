"""The losses experiment: train with each loss, measure the logit gradients, write the run."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ch11 import _experiment as ex
from ch11._config import headline_seeds, seeds_why
from ch11._evidence import seed_summary, spread_figure
from ch11.losses import report
from ch11.losses.config import NAME, Config
from recipes.builders import build_mlp
from recipes.losses import make_loss
from recipes.metrics import precision_recall_f1, roc_auc_per_class
from recipes.specs import MLPSpec

__all__ = ["logit_gradients", "run"]


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
            label=f"variant {k}/3: 10 classes, loss {loss_name}",
            log_dir=ex.tensorboard_dir(run_dir, loss_name))
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
        label=f"variant 3/3: {digit} vs rest, loss binary_crossentropy",
        log_dir=ex.tensorboard_dir(run_dir, "binary_crossentropy"))
    histories["binary_crossentropy"] = history
    rows.append(_binary_row(model, history, binary, digit))

    table = pd.DataFrame(rows)
    grads = logit_gradients(config.margins)
    grads.to_csv(run_dir / "logit_gradients.csv", index=False)
    figures = report.figures(run_dir, histories, grads)
    notes = report.notes(table, grads, histories, config)
    seeds = headline_seeds(config)
    main_rows = [{"loss": r.loss, "val_acc_epoch1": r.val_acc_epoch1, "val_acc": r.val_acc}
                 for r in table.itertuples() if r.loss in ("crossentropy", "mse")]
    per_seed = ex.over_seeds(seeds, config.seed, main_rows,
                             lambda s: _rerun(config, spec, data, s))
    summary = seed_summary(per_seed, "loss", report.HEADLINE_COLUMNS)
    evidence = report.evidence(summary, per_seed, seeds, seeds_why(config), config)
    figures.append(spread_figure(run_dir, per_seed, "loss", report.HEADLINE_COLUMNS,
                                 "Validation accuracy, per seed"))
    return ex.finish(NAME, config, run_dir, started, table,
                     title="Cross-entropy vs MSE for classification, and binary cross-entropy",
                     intro=report.intro(config), histories=histories, figures=figures,
                     notes=[evidence.headline, *notes], metrics=report.metrics(table, grads),
                     sections=[("Gradient at a confidently wrong answer",
                                report.grad_section(grads))], evidence=evidence)


def _rerun(config: Config, spec: MLPSpec, data: dict, seed: int) -> list[dict]:
    """Cross-entropy and MSE again with another seed: their validation accuracies."""
    rows = []
    for loss_name in ("crossentropy", "mse"):
        _, history = ex.train_variant(
            lambda: build_mlp(spec, (28, 28), 10),
            ex.classifier_compile(config.optimizer, config.learning_rate, loss=loss_name),
            data, seed=seed, epochs=config.epochs, batch_size=config.batch_size,
            label=f"seed {seed}: 10 classes, loss {loss_name}")
        h = history.history
        rows.append({"loss": loss_name, "val_acc_epoch1": h["val_accuracy"][0],
                     "val_acc": h["val_accuracy"][-1]})
    return rows


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
