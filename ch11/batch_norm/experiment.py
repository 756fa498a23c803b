"""The batch-norm experiment: train every variant, measure, and write the run folder."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11._config import headline_seeds, seeds_why
from ch11._evidence import seed_summary, spread_figure
from ch11.batch_norm import report
from ch11.batch_norm.config import NAME, Config
from recipes.builders import build_cnn, build_mlp, count_params
from recipes.diagnosis.measures import activation_stats, gradient_norms
from recipes.specs import BATCH_NORM_CHOICES, CNNSpec, MLPSpec

__all__ = ["run"]

_LOSS = "sparse_categorical_crossentropy"


def _diagnose(model: keras.Model, x: np.ndarray, y: np.ndarray,
              variant: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per hidden activation its spread, and per kernel its gradient norm, on one batch."""
    names = [layer.name for layer in model.layers if layer.name.startswith("act_")]
    return (activation_stats(model, x, names).assign(variant=variant),
            gradient_norms(model, x, y))


def _row(family: str, placement: str, lr: float, model: keras.Model, history, data,
         batch_size: int, diag: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> dict:
    h = history.history
    test_acc = ex.test_accuracy(model, data)
    # Keras's training accuracy is a running mean over the epoch while the weights move;
    # the gap is measured on the final weights, on as many training images as validation.
    n = len(data["x_valid"])
    _, train_acc = model.evaluate(data["x_train"][:n], data["y_train"][:n], verbose=0)
    params = count_params(model)
    return {
        "model": family, "batch_norm": placement, "learning_rate": lr, "batch_size": batch_size,
        "epochs": len(h["loss"]), "val_acc_epoch1": h["val_accuracy"][0],
        "val_acc": h["val_accuracy"][-1], "test_acc": test_acc,
        "train_acc": train_acc, "train_val_gap": train_acc - h["val_accuracy"][-1],
        "s_per_epoch": sum(h["epoch_time"]) / len(h["epoch_time"]),
        "trainable": params["trainable"], "non_trainable": params["non_trainable"],
        "act_std_last": diag[0]["std"].iloc[-1] if diag else np.nan,
        "grad_first_over_last": diag[1]["grad_norm"].iloc[0] / diag[1]["grad_norm"].iloc[-2]
        if diag else np.nan,
    }


def run(config: Config) -> ex.Results:
    """Train every variant and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per model x placement, plus the small-batch rows).
    """
    if config.quick:
        config = dataclasses.replace(config, mlp_depth=min(config.mlp_depth, 5), mlp_epochs=1,
                                     cnn_epochs=1, small_batch_train=300)
    run_dir, started = ex.start(NAME, config)
    data = ex.mnist_splits(config.quick)
    probe, probe_y = data["x_valid"][:512], data["y_valid"][:512]
    rows, histories, stats, flows = [], {}, [], {}
    mlp = MLPSpec.deep(config.mlp_depth, config.mlp_units, activation=config.activation)
    cnn = CNNSpec(filters=(32, 64), dense_units=(128,), activation=config.activation)
    lr0 = config.learning_rates[0]
    cnn_policy = ex.cnn_precision(config.precision)[0]
    plan = [("mlp", p, lr) for lr in config.learning_rates for p in BATCH_NORM_CHOICES]
    plan += [("cnn", p, lr0) for p in BATCH_NORM_CHOICES]
    total = len(plan) + 2
    for k, (family, placement, lr) in enumerate(plan, 1):
        if family == "mlp":
            spec, builder = dataclasses.replace(mlp, batch_norm=placement), build_mlp
            epochs, key = config.mlp_epochs, f"mlp_lr{lr:g}_bn_{placement}"
        else:
            spec, builder = dataclasses.replace(cnn, batch_norm=placement), build_cnn
            epochs, key = config.cnn_epochs, f"cnn_bn_{placement}"
        model, history = ex.train_variant(
            lambda s=spec, b=builder: b(s, (28, 28), 10),
            ex.classifier_compile(config.optimizer, lr, loss=_LOSS), data,
            seed=config.seed, epochs=epochs, batch_size=config.batch_size,
            precision=cnn_policy if family == "cnn" else ex.MLP_PRECISION[0],
            label=f"variant {k}/{total}: {family}, BN {placement}, learning rate {lr:g}",
            log_dir=ex.tensorboard_dir(run_dir, key))
        diag = None
        if family == "mlp":
            diag = _diagnose(model, probe, probe_y, f"BN {placement}, lr {lr:g}")
            stats.append(diag[0])
            flows.setdefault(lr, {})[f"BN {placement}"] = diag[1]
        rows.append(_row(family, placement, lr, model, history, data, config.batch_size, diag))
        histories[key] = history

    small = ex.train_subset(data, config.small_batch_train)
    for k, placement in enumerate(("none", "before"), len(plan) + 1):
        spec = dataclasses.replace(mlp, batch_norm=placement)
        model, history = ex.train_variant(
            lambda s=spec: build_mlp(s, (28, 28), 10),
            ex.classifier_compile(config.optimizer, lr0, loss=_LOSS), small,
            seed=config.seed, epochs=1, batch_size=config.small_batch_size,
            label=f"variant {k}/{total}: mlp, BN {placement}, "
                  f"batch {config.small_batch_size} on {len(small['x_train'])} images",
            log_dir=ex.tensorboard_dir(run_dir, f"mlp_small_batch_bn_{placement}"))
        row = _row("mlp (small batch)", placement, lr0, model, history, data,
                   config.small_batch_size)
        rows.append(row)
        histories[f"mlp_small_batch_bn_{placement}"] = history

    table = pd.DataFrame(rows)
    stats = pd.concat(stats, ignore_index=True)
    stats[["variant", "layer", "depth", "mean", "std", "frac_zero", "dead_fraction"]].to_csv(
        run_dir / "mlp_activation_stats.csv", index=False)
    figures = report.figures(run_dir, histories, stats, config)
    flow_figures, diagnosis = report.flow_figures(run_dir, flows, table, stats, config)
    seeds = headline_seeds(config)
    per_seed = ex.over_seeds(seeds, config.seed, report.headline_rows(table, config),
                             lambda s: _rerun(config, data, small, mlp, cnn, s))
    summary = seed_summary(per_seed, "variant", report.HEADLINE_COLUMNS)
    evidence = report.evidence(summary, per_seed, table, seeds, seeds_why(config), config)
    figures.append(spread_figure(run_dir, per_seed, "variant", report.HEADLINE_COLUMNS,
                                 "Validation accuracy after epoch 1, per seed"))
    notes = [evidence.headline, *report.notes(table, config)]
    return ex.finish(NAME, config, run_dir, started, table, title="Batch normalization on MNIST",
                     intro=report.intro(config), histories=histories,
                     figures=figures + flow_figures, notes=notes, metrics=report.metrics(table),
                     sections=[("Diagnostics", diagnosis)], evidence=evidence,
                     precision={"MLPs": ex.MLP_PRECISION,
                                "CNNs": ex.cnn_precision(config.precision)})


def _rerun(config: Config, data: dict, small: dict, mlp: MLPSpec, cnn: CNNSpec,
           seed: int) -> list[dict]:
    """The headline's variants (BN none and before) for one epoch with another seed."""
    rows = []
    for variant, family, placement, lr in report.headline_plan(config):
        if family == "cnn":
            spec, builder, train = dataclasses.replace(cnn, batch_norm=placement), build_cnn, data
            batch = config.batch_size
        else:
            spec, builder = dataclasses.replace(mlp, batch_norm=placement), build_mlp
            train, batch = (small, config.small_batch_size) if family == "small" else \
                (data, config.batch_size)
        _, history = ex.train_variant(
            lambda s=spec, b=builder: b(s, (28, 28), 10),
            ex.classifier_compile(config.optimizer, lr, loss=_LOSS), train, seed=seed,
            epochs=1, batch_size=batch, label=f"seed {seed}: {variant}",
            precision=ex.cnn_precision(config.precision)[0] if family == "cnn" else "float32")
        rows.append({"variant": variant, "val_acc_epoch1": history.history["val_accuracy"][0]})
    return rows
