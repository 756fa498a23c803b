"""The CNN-hyperparameter experiment: train every kernel x pooling x optimizer, write the run."""

from __future__ import annotations

import dataclasses
import itertools

import keras
import pandas as pd

from ch11 import _experiment as ex
from ch11._config import headline_seeds, seeds_why
from ch11._evidence import seed_summary, spread_figure
from ch11.cnn_hparams import report
from ch11.cnn_hparams.config import NAME, Config
from recipes.builders import build_cnn, count_params
from recipes.names import DEFAULT_LEARNING_RATES
from recipes.specs import CNNSpec

__all__ = ["run"]


def _spec(config: Config, kernel: int, pooling: str) -> CNNSpec:
    return CNNSpec(filters=config.filters, kernel_size=kernel, pooling=pooling,
                   dense_units=(config.dense_units,))


def run(config: Config) -> ex.Results:
    """Train every (kernel, pooling, optimizer) configuration and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per configuration).
    """
    if config.quick:
        config = dataclasses.replace(config, kernel_sizes=config.kernel_sizes[:2],
                                     optimizers=config.optimizers[:2], max_epochs=1,
                                     train_size=min(config.train_size, 1000))
    run_dir, started = ex.start(NAME, config)
    data = ex.train_subset(ex.mnist_splits(config.quick), config.train_size)
    grid = list(itertools.product(config.optimizers, config.kernel_sizes, config.poolings))
    rows, histories = [], {}
    for k, (opt, kernel, pooling) in enumerate(grid, 1):
        spec = _spec(config, kernel, pooling)
        stopper = keras.callbacks.EarlyStopping(patience=config.patience,
                                                restore_best_weights=True)
        model, history = ex.train_variant(
            lambda s=spec: build_cnn(s, (28, 28), 10),
            ex.classifier_compile(opt, loss="sparse_categorical_crossentropy"), data,
            seed=config.seed, epochs=config.max_epochs, batch_size=config.batch_size,
            callbacks=[stopper], precision=ex.cnn_precision(config.precision)[0],
            label=f"variant {k}/{len(grid)}: kernel {kernel}, {pooling} pooling, {opt}",
            log_dir=ex.tensorboard_dir(run_dir, f"k{kernel}_{pooling}_{opt}"))
        h = history.history
        val_loss, val_acc = model.evaluate(data["x_valid"], data["y_valid"], verbose=0)
        _, test_acc = model.evaluate(data["x_test"], data["y_test"], verbose=0)
        rows.append({
            "kernel_size": kernel, "pooling": pooling, "optimizer": opt,
            "learning_rate": DEFAULT_LEARNING_RATES[opt], "params": count_params(model)["total"],
            "epochs_run": len(h["loss"]), "best_epoch": stopper.best_epoch + 1,
            "stopped_early": stopper.stopped_epoch > 0, "val_loss": val_loss,
            "val_acc": val_acc, "test_acc": test_acc,
            "s_per_epoch": sum(h["epoch_time"]) / len(h["epoch_time"])})
        histories[f"k{kernel}_{pooling}_{opt}"] = history
    table = pd.DataFrame(rows)
    figures = report.figures(run_dir, table, histories, config)
    seeds = headline_seeds(config)
    best = report.best_per_optimizer(table)
    main_rows = [{"variant": report.variant_name(r), "val_acc": r["val_acc"]}
                 for _, r in best.iterrows()]
    per_seed = ex.over_seeds(seeds, config.seed, main_rows,
                             lambda s: _rerun(config, best, data, s))
    summary = seed_summary(per_seed, "variant", report.HEADLINE_COLUMNS)
    evidence = report.evidence(summary, per_seed, seeds, seeds_why(config), config)
    figures.append(spread_figure(run_dir, per_seed, "variant", report.HEADLINE_COLUMNS,
                                 "Each optimizer's best configuration, per seed"))
    return ex.finish(NAME, config, run_dir, started, table,
                     title="CNN hyperparameters: kernel x pooling x optimizer",
                     intro=report.intro(config, data, len(grid)),
                     histories=histories, figures=figures,
                     notes=[evidence.headline, *report.notes(table, config)],
                     metrics=report.metrics(table), evidence=evidence,
                     precision={"every CNN": ex.cnn_precision(config.precision)})


def _rerun(config: Config, best: pd.DataFrame, data: dict, seed: int) -> list[dict]:
    """Each optimizer's best configuration again with another seed (early stopping too)."""
    rows = []
    for _, r in best.iterrows():
        spec = _spec(config, int(r["kernel_size"]), r["pooling"])
        model, _ = ex.train_variant(
            lambda s=spec: build_cnn(s, (28, 28), 10),
            ex.classifier_compile(r["optimizer"], loss="sparse_categorical_crossentropy"), data,
            seed=seed, epochs=config.max_epochs, batch_size=config.batch_size,
            callbacks=[keras.callbacks.EarlyStopping(patience=config.patience,
                                                     restore_best_weights=True)],
            precision=ex.cnn_precision(config.precision)[0],
            label=f"seed {seed}: {report.variant_name(r)}")
        _, val_acc = model.evaluate(data["x_valid"], data["y_valid"], verbose=0)
        rows.append({"variant": report.variant_name(r), "val_acc": val_acc})
    return rows
