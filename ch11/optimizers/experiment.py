"""The optimizers experiment: train the same MLP with every optimizer and write the run
folder."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11._config import headline_seeds, seeds_why
from ch11._evidence import seed_summary, spread_figure
from ch11.optimizers import report
from ch11.optimizers.config import NAME, Config
from recipes.builders import build_mlp, count_params
from recipes.names import DEFAULT_LEARNING_RATES
from recipes.specs import MLPSpec

__all__ = ["run"]


def _learning_rate(config: Config, name: str) -> float:
    """The rate an optimizer gets: ``config.learning_rate`` or recipes' default for it.

    Args:
        config: the settings.
        name: an optimizer name.

    Returns:
        The learning rate.
    """
    return config.learning_rate if config.learning_rate is not None \
        else DEFAULT_LEARNING_RATES[name]


def run(config: Config) -> ex.Results:
    """Train the same model with every optimizer and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per optimizer).
    """
    if config.quick:
        config = dataclasses.replace(config, epochs=1, hidden_units=config.hidden_units[:1])
    run_dir, started = ex.start(NAME, config)
    load_start = os.getloadavg()[0]
    data = ex.mnist_splits(config.quick)
    spec = MLPSpec(hidden_units=config.hidden_units, activation=config.activation)
    rows, histories = [], {}
    n = len(data["x_valid"])
    for k, name in enumerate(config.optimizers, 1):
        lr = _learning_rate(config, name)
        compile_kwargs = ex.classifier_compile(name, lr, loss="sparse_categorical_crossentropy")
        optimizer = compile_kwargs["optimizer"]
        model, history = ex.train_variant(
            lambda: build_mlp(spec, (28, 28), 10), compile_kwargs, data, seed=config.seed,
            epochs=config.epochs, batch_size=config.batch_size,
            label=f"variant {k}/{len(config.optimizers)}: {name} "
                  f"({type(optimizer).__name__}), learning rate {lr:g}",
            log_dir=ex.tensorboard_dir(run_dir, name))
        h = history.history
        test_loss, test_acc = model.evaluate(data["x_test"], data["y_test"], verbose=0)
        # Keras's training accuracy is a running mean while the weights move: measure it
        # on the final weights, on as many training images as validation.
        _, train_acc = model.evaluate(data["x_train"][:n], data["y_train"][:n], verbose=0)
        rows.append({
            "optimizer": name, "keras_class": type(optimizer).__name__, "learning_rate": lr,
            "epochs": len(h["loss"]), "train_loss": h["loss"][-1],
            "val_acc_epoch1": h["val_accuracy"][0], "val_loss": h["val_loss"][-1],
            "val_acc": h["val_accuracy"][-1], "test_acc": test_acc, "test_loss": test_loss,
            "train_acc": train_acc, "s_per_epoch": float(np.mean(h["epoch_time"])),
            "train_s": float(np.sum(h["epoch_time"])),
            "params": count_params(model)["trainable"],
        })
        histories[name] = history
    table = pd.DataFrame(rows)
    figures = report.figures(run_dir, histories, table)
    rates = {name: _learning_rate(config, name) for name in config.optimizers}
    load = (load_start, os.getloadavg()[0])
    seeds = headline_seeds(config)
    main_rows = [{"optimizer": r.optimizer, "val_acc_epoch1": r.val_acc_epoch1,
                  "val_acc": r.val_acc} for r in table.itertuples()]
    per_seed = ex.over_seeds(seeds, config.seed, main_rows,
                             lambda s: _rerun(config, spec, data, s))
    summary = seed_summary(per_seed, "optimizer", report.HEADLINE_COLUMNS)
    evidence = report.evidence(summary, per_seed, seeds, seeds_why(config), config)
    figures.append(spread_figure(run_dir, per_seed, "optimizer", ["val_acc"],
                                 f"Validation accuracy after {config.epochs} epoch(s), per seed"))
    return ex.finish(NAME, config, run_dir, started, table, title="Faster optimizers on MNIST",
                     intro=report.intro(config, spec, rates), histories=histories,
                     figures=figures,
                     notes=[evidence.headline, *report.notes(table, config, load, n)],
                     metrics=report.metrics(table), evidence=evidence)


def _rerun(config: Config, spec: MLPSpec, data: dict, seed: int) -> list[dict]:
    """Every optimizer again with another seed: its validation accuracies."""
    rows = []
    for name in config.optimizers:
        lr = _learning_rate(config, name)
        _, history = ex.train_variant(
            lambda: build_mlp(spec, (28, 28), 10),
            ex.classifier_compile(name, lr, loss="sparse_categorical_crossentropy"), data,
            seed=seed, epochs=config.epochs, batch_size=config.batch_size,
            label=f"seed {seed}: {name}, learning rate {lr:g}")
        h = history.history
        rows.append({"optimizer": name, "val_acc_epoch1": h["val_accuracy"][0],
                     "val_acc": h["val_accuracy"][-1]})
    return rows
