"""The gradient-descent experiment: one variant per batch size, timed; write the run folder."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11._config import headline_seeds, seeds_why
from ch11._evidence import seed_summary, spread_figure
from ch11.gradient_descent import report
from ch11.gradient_descent.config import LR_SCALINGS, NAME, Config
from recipes.builders import build_mlp
from recipes.checks import check_at_least, check_choice
from recipes.losses import make_loss
from recipes.specs import MLPSpec

__all__ = ["learning_rate_for", "run"]

_EXPONENT = {"sqrt": 0.5, "linear": 1.0, "none": 0.0}
REFERENCE_BATCH = 32


def learning_rate_for(batch_size: int, base: float, scaling: str) -> float:
    """The learning rate for a batch size, scaled from the rate at batch size 32.

    ``base * (batch_size / 32) ** k`` with ``k = 0.5`` (``"sqrt"``), ``1`` (``"linear"``)
    or ``0`` (``"none"``): a larger batch averages away more gradient noise and tolerates
    a larger step.

    Args:
        batch_size: the batch size (>= 1).
        base: the rate at batch size 32.
        scaling: one of `LR_SCALINGS`.

    Returns:
        The learning rate.

    Raises:
        ValueError: for an unknown scaling or a batch size below 1.

    Reference: Krizhevsky, "One weird trick for parallelizing convolutional neural
    networks" (2014) for sqrt; Goyal et al., "Accurate, Large Minibatch SGD" (2017) for
    linear.
    """
    check_choice("lr_scaling", scaling, LR_SCALINGS)
    check_at_least("batch_size", batch_size, 1)
    return float(base * (batch_size / REFERENCE_BATCH) ** _EXPONENT[scaling])


class _TrainTimer(keras.callbacks.Callback):
    """Log ``train_time``: an epoch's training seconds, without validation or tracing.

    The first step of a fit also traces and compiles the train function; its excess over
    the second step (the one-time cost, same for every batch size) is left out.
    """

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch, self._start, self._stop = epoch, time.perf_counter(), None
        self._steps: list[float] = []

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self._epoch == 0 and batch < 2:
            self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._epoch == 0 and batch < 2:
            self._steps.append(time.perf_counter() - self._batch_start)

    def on_test_begin(self, logs: dict | None = None) -> None:
        if self._stop is None:
            self._stop = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        seconds = (self._stop or time.perf_counter()) - self._start
        if epoch == 0:
            self._single_step = len(self._steps) == 1
            if len(self._steps) == 2:  # first step minus a normal step = tracing
                seconds -= max(self._steps[0] - self._steps[1], 0.0)
        elif epoch == 1 and self._single_step:
            # One step per epoch (batch GD): epoch 0's step traced, epoch 1's is a normal one.
            first = self.model.history.history["train_time"]
            first[0] = min(first[0], seconds)
        logs["train_time"] = seconds


def _variant_name(batch: int, n_train: int) -> str:
    if batch >= n_train:
        return f"batch GD ({n_train})"
    if batch == 1:
        return f"stochastic GD (1, on {n_train})"
    return f"mini-batch {batch}"


def run(config: Config) -> ex.Results:
    """Train one variant per batch size and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per batch size).
    """
    if config.quick:
        config = dataclasses.replace(
            config, epochs=tuple(min(e, 5) if b == 0 else 1
                                 for b, e in zip(config.batch_sizes, config.epochs)),
            sgd_train=min(config.sgd_train, 200))
    run_dir, started = ex.start(NAME, config)
    data = ex.mnist_splits(config.quick)
    spec = MLPSpec(hidden_units=config.hidden_units)
    loss_fn = make_loss("crossentropy")
    rows, histories, curves = _train_all(config, data, spec, loss_fn, config.seed, run_dir)
    table = pd.DataFrame(rows)
    figures = report.figures(run_dir, curves)
    common_t = min(c["seconds"][-1] for c in curves.values())
    table["val_loss_at_common_time"] = table["variant"].map(_at_time(curves, common_t))
    notes = report.notes(table, common_t, config)
    seeds = headline_seeds(config)
    per_seed = ex.over_seeds(seeds, config.seed, _seed_rows(table),
                             lambda s: _seed_rows(_rerun(config, data, spec, loss_fn, s)))
    summary = seed_summary(per_seed, "variant", report.HEADLINE_COLUMNS)
    evidence = report.evidence(summary, per_seed, seeds, seeds_why(config), config)
    figures.append(spread_figure(run_dir, per_seed, "variant", ["val_loss_at_common_time"],
                                 "Validation loss at the common training time, per seed"))
    return ex.finish(NAME, config, run_dir, started, table,
                     title="Batch vs mini-batch vs stochastic gradient descent on MNIST",
                     intro=report.intro(config, common_t), histories=histories, figures=figures,
                     notes=[evidence.headline, *notes], metrics=report.metrics(table, common_t),
                     evidence=evidence)


def _train_all(config: Config, data: dict, spec: MLPSpec, loss_fn, seed: int,
               run_dir: Path | None = None) -> tuple[list[dict], dict, dict]:
    """One variant per batch size with `seed`: (rows, histories, validation-loss curves);
    TensorBoard logs under `run_dir` when it is given (the full run, not the reruns)."""
    rows, histories, curves = [], {}, {}
    for k, (size, epochs) in enumerate(zip(config.batch_sizes, config.epochs), 1):
        train = data if size != 1 else ex.train_subset(data, config.sgd_train)
        n_train = len(train["x_train"])
        batch = n_train if size == 0 else min(size, n_train)
        name = _variant_name(batch, n_train)
        lr = learning_rate_for(batch, config.base_learning_rate, config.lr_scaling)
        initial = {}

        def build(initial: dict = initial) -> keras.Model:
            model = build_mlp(spec, (28, 28), 10)
            initial["val_loss"] = float(loss_fn(data["y_valid"], model(data["x_valid"])))
            return model

        prefix = "variant" if seed == config.seed else f"seed {seed}, variant"
        model, history = ex.train_variant(
            build, ex.classifier_compile(config.optimizer, lr), train, seed=seed,
            epochs=epochs, batch_size=batch, callbacks=[_TrainTimer()],
            label=f"{prefix} {k}/{len(config.batch_sizes)}: {name}, learning rate {lr:.3g}",
            log_dir=(ex.tensorboard_dir(run_dir, "full" if batch == n_train else f"b{batch}")
                     if run_dir is not None else None))
        key = "full" if batch == n_train else f"b{batch}"
        histories[key] = history
        steps_per_epoch = -(-n_train // batch)
        curves[name] = _curve(history.history, initial["val_loss"], steps_per_epoch)
        rows.append(_row(name, batch, n_train, lr, steps_per_epoch, model, history, data))
    return rows, histories, curves


def _at_time(curves: Mapping[str, Mapping], t: float) -> dict[str, float]:
    """Each variant's validation loss after `t` training seconds (interpolated)."""
    return {name: float(np.interp(t, c["seconds"], c["val_loss"])) for name, c in curves.items()}


def _rerun(config: Config, data: dict, spec: MLPSpec, loss_fn, seed: int) -> pd.DataFrame:
    """Every batch size again with another seed; its own common time."""
    rows, _, curves = _train_all(config, data, spec, loss_fn, seed)
    table = pd.DataFrame(rows)
    common_t = min(c["seconds"][-1] for c in curves.values())
    table["val_loss_at_common_time"] = table["variant"].map(_at_time(curves, common_t))
    return table


def _seed_rows(table: pd.DataFrame) -> list[dict]:
    return [{c: r[c] for c in ("variant", *report.HEADLINE_COLUMNS)}
            for _, r in table.iterrows()]


def _curve(h: Mapping, initial_val_loss: float, steps_per_epoch: int) -> dict[str, np.ndarray]:
    """Validation loss from epoch 0 (at initialization) on, with seconds and steps."""
    epochs = np.arange(len(h["val_loss"]) + 1)
    return {"epoch": epochs, "steps": epochs * steps_per_epoch,
            "seconds": np.concatenate([[0.0], np.cumsum(h["train_time"])]),
            "val_loss": np.concatenate([[initial_val_loss], h["val_loss"]])}


def _row(name: str, batch: int, n_train: int, lr: float, steps_per_epoch: int,
         model: keras.Model, history, data) -> dict:
    h = history.history
    train_s = float(sum(h["train_time"]))
    epochs = len(h["loss"])
    return {
        "variant": name, "batch_size": batch, "train_images": n_train, "learning_rate": lr,
        "epochs": epochs, "steps": epochs * steps_per_epoch,
        "steps_per_s": epochs * steps_per_epoch / train_s,
        "images_per_s": epochs * n_train / train_s, "train_s": train_s,
        "val_loss_epoch1": h["val_loss"][0], "val_loss": h["val_loss"][-1],
        "val_acc": h["val_accuracy"][-1], "test_acc": ex.test_accuracy(model, data),
    }
