"""Callbacks, all in one module: timing, gradient monitoring, scheduling, early stopping, logs.

- `EpochTimer`: each epoch's wall time in the logs, as ``epoch_time``.
- `GradientMonitor`: per-layer gradient norms and dead-unit fractions in the logs (and
  in TensorBoard) at the end of each epoch.
- `ValidationMetrics`: one-vs-rest ROC AUC of every class on the validation split, their
  macro mean and one class's recall in the logs at the end of each epoch (so early
  stopping, Keras Tuner and ``History`` can use them).
- `make_callbacks(...)`: the callbacks one training run needs, by option: the schedule's
  (`ReduceLROnPlateau` for performance scheduling, none for the other schedules, which
  live in the optimizer: `recipes.schedules.make_schedule`), Keras's `EarlyStopping`
  with the best weights restored, Keras's `TensorBoard`, and the two callbacks above.
- `tensorboard_callbacks(log_dir, gradient_batch)`: what the chapter experiments and the
  tuner's trials write to TensorBoard (per-epoch scalars and learning rate, gradient norms
  and dead units at a bounded cost, weight histograms at level ``full``), by
  `tensorboard_level` (``RECIPES_TENSORBOARD``: ``off``, ``on`` (default) or ``full``).
- `steps_per_execution(callbacks)`: how many training steps one call of Keras's compiled
  train function may run with these callbacks (``model.compile(steps_per_execution=...)``):
  many, unless one of them acts on every step.

Example:

```python
name = "performance"
lr = make_schedule(name, learning_rate=1e-2, steps_per_epoch=1719, epochs=25)
model.compile(optimizer=make_optimizer("nesterov", learning_rate=lr), loss="mse")
callbacks = make_callbacks(name, early_stopping=10, tensorboard=run_dir / "tensorboard")
model.fit(x, y, validation_data=(xv, yv), epochs=25, callbacks=callbacks)
```

Reference: Géron, Hands-On ML (3rd ed.), chapter 11, "Learning Rate Scheduling" and
"Performance scheduling"; chapter 10, "Using Callbacks" and "Using TensorBoard for
Visualization".
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from recipes.checks import InputError, check_at_least, check_positive
from recipes.metrics import roc_auc_per_class
from recipes.names import SCHEDULE_NAMES

__all__ = ["FAST_STEPS_PER_EXECUTION", "TENSORBOARD_LEVELS", "EpochTimer", "GradientMonitor",
           "ValidationMetrics", "class_key", "make_callbacks", "steps_per_execution",
           "tensorboard_callbacks", "tensorboard_level"]

# RECIPES_TENSORBOARD's values: nothing, scalars + gradients (the default), + histograms.
TENSORBOARD_LEVELS = ("off", "on", "full")

_Schedule = keras.optimizers.schedules.LearningRateSchedule

# Training steps per call of the compiled train function when no callback needs each step:
# a 3 x 100 MLP at batch 32 trains an MNIST epoch about 2x faster than one step per call,
# with the same weights bit for bit (`python -m bench.steps_per_execution` measures it per
# depth; `make recipe-optimizers`: 525 s -> 296 s on 2 cores, every accuracy identical).
FAST_STEPS_PER_EXECUTION = 64
_STEP_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end",
               "on_test_batch_begin", "on_test_batch_end")


class EpochTimer(keras.callbacks.Callback):
    """Record each epoch's wall time (seconds) in the logs as ``epoch_time``.

    Example:

    ```python
    history = model.fit(x, y, epochs=3, callbacks=[EpochTimer()])
    history.history["epoch_time"]
    ```
    """

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:  # noqa: D102
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:  # noqa: D102
        if logs is not None:
            logs["epoch_time"] = time.perf_counter() - self._start

    def get_config(self) -> dict:  # noqa: D102
        return {}


@keras.saving.register_keras_serializable(package="recipes")
class GradientMonitor(keras.callbacks.Callback):
    """Record per-layer gradient norms and dead-unit fractions at the end of each epoch.

    On a fixed batch, after each epoch, it adds ``grad_norm/<layer>`` (`gradient_norms`,
    one per kernel) and ``dead/<layer>`` (`activation_stats`' dead fraction, one per
    activation layer) to the epoch's logs, so they reach ``History`` and the history CSVs
    (put it before other callbacks that read the logs). With a `log_dir` it also writes
    them to TensorBoard as ``gradient_norm/<layer>`` and ``dead_fraction/<layer>``.

    Each measurement is one forward and backward pass on the batch, outside the graph:
    on MNIST about the cost of 10-30 training steps, noise for an epoch of 1,700 steps but
    not for an epoch of 7. `max_overhead` bounds it: an epoch is skipped (its logs get
    NaN) while the measurements so far took more than that fraction of the training time
    so far; the first epoch is always measured.

    Example:

    ```python
    monitor = GradientMonitor(x_train[:256], y_train[:256], log_dir=run_dir / "tb")
    history = model.fit(x_train, y_train, epochs=10, callbacks=[monitor])
    history.history["grad_norm/hidden_0"]
    ```

    Args:
        x: the fixed batch of inputs.
        y: its labels.
        loss: the loss to differentiate. Defaults to the compiled loss.
        log_dir: a TensorBoard folder. Defaults to `None` (logs only).
        dead_units: also record dead-unit fractions. Defaults to `True`.
        to_logs: add the values to the epoch's logs (History, CSVs); `False` writes them
            to `log_dir` only. Defaults to `True`.
        max_overhead: the largest share of the training time the measurements may take,
            e.g. `0.05`. Defaults to `None` (every epoch).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "The Vanishing/Exploding Gradients
    Problems" and "Dying ReLUs"; ch. 10, "Using TensorBoard for Visualization".
    """

    def __init__(self, x: Any, y: Any, loss: Any = None, log_dir: str | None = None,
                 dead_units: bool = True, to_logs: bool = True,
                 max_overhead: float | None = None) -> None:
        super().__init__()
        self.x = x
        self.y = y
        self.loss = loss
        self.log_dir = None if log_dir is None else str(log_dir)
        self.dead_units = dead_units
        self.to_logs = bool(to_logs)
        self.max_overhead = None if max_overhead is None else check_positive(
            "max_overhead", max_overhead)
        self._writer = None
        self._keys: list[str] = []
        self._train_s = self._measure_s = 0.0
        self._epoch_start: float | None = None

    def measure(self) -> dict[str, float]:
        """The values this callback records, for the current weights.

        Returns:
            ``{"grad_norm/<layer>": ..., "dead/<layer>": ...}``.
        """
        # Imported here: this module is imported as soon as keras is (to register this
        # class), possibly while recipes.diagnosis.measures is still being imported.
        from recipes.diagnosis.measures import activation_stats, gradient_norms

        grads = gradient_norms(self.model, self.x, self.y, self.loss)
        values = {f"grad_norm/{r.layer}": r.grad_norm for r in grads.itertuples()}
        if self.dead_units:
            try:
                stats = activation_stats(self.model, self.x)
            except ValueError:  # no activation layer: nothing to record
                stats = pd.DataFrame(columns=["layer", "dead_fraction"])
            values |= {f"dead/{r.layer}": r.dead_fraction for r in stats.itertuples()}
        return values

    def on_train_begin(self, logs: dict | None = None) -> None:  # noqa: D102
        self._train_s = self._measure_s = 0.0
        self._keys = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:  # noqa: D102
        self._epoch_start = time.perf_counter()

    def _over_budget(self) -> bool:
        """Whether the measurements so far cost more than `max_overhead` of training."""
        return (self.max_overhead is not None and bool(self._keys)
                and self._measure_s > self.max_overhead * self._train_s)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:  # noqa: D102
        if self._epoch_start is not None:
            self._train_s += time.perf_counter() - self._epoch_start
        if self._over_budget():
            if self.to_logs and logs is not None:  # History's lists stay one per epoch
                logs.update(dict.fromkeys(self._keys, float("nan")))
            return
        started = time.perf_counter()
        values = self.measure()
        self._measure_s += time.perf_counter() - started
        self._keys = list(values)
        if self.to_logs and logs is not None:
            logs.update(values)
        if self.log_dir is not None:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(self.log_dir)
            with self._writer.as_default():
                for key, value in values.items():
                    kind, layer = key.split("/", 1)
                    tag = {"grad_norm": "gradient_norm", "dead": "dead_fraction"}[kind]
                    tf.summary.scalar(f"{tag}/{layer}", value, step=epoch)
            self._writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:  # noqa: D102
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def get_config(self) -> dict:  # noqa: D102
        return {"x": self.x, "y": self.y, "loss": self.loss, "log_dir": self.log_dir,
                "dead_units": self.dead_units, "to_logs": self.to_logs,
                "max_overhead": self.max_overhead}

    @classmethod
    def from_config(cls, config: dict) -> GradientMonitor:  # noqa: D102
        config = dict(config)
        for key in ("x", "y", "loss"):  # nested objects of serialize_keras_object
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def class_key(name: str) -> str:
    """A class name as a log key: lower case, runs of other characters as one ``_``.

    Example: ``class_key("fish sea_food red-mullet")`` is ``"fish_sea_food_red_mullet"``.

    Args:
        name: the class name.

    Returns:
        The key (``"class"`` when nothing is left).
    """
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_") or "class"


class ValidationMetrics(keras.callbacks.Callback):
    """Per-class ROC AUC, macro AUC and one class's recall on held-out data, every epoch.

    At the end of each epoch it predicts `x` (through `recipes.make_dataset`, so no
    tf.data autotuning stall) and adds to the epoch's logs, with `prefix`:
    ``auc_<class>`` for every class (`recipes.metrics.roc_auc_per_class`, one-vs-rest;
    the key is `class_key` of the name), ``macro_auc`` (their mean over the classes
    present) and, with `rare_class`, ``rare_recall`` (the fraction of that class's
    examples predicted as it). Put it before the callbacks that read these values
    (`EarlyStopping`, Keras Tuner's): ``model.fit`` calls callbacks in list order with
    one logs dict. Non-finite outputs (a diverged model) count as no information: every
    score ties, AUC 0.5.

    Example:

    ```python
    metrics = ValidationMetrics(x_val, y_val, class_names, rare_class=0)
    model.fit(x, y, validation_data=(x_val, y_val), epochs=5,
              callbacks=[metrics, keras.callbacks.EarlyStopping("val_macro_auc", mode="max")])
    history.history["val_auc_bass"], history.history["val_rare_recall"]
    ```

    Args:
        x: the held-out inputs.
        y: their integer labels.
        class_names: one name per class (output unit). Defaults to ``"0" .. "k-1"``.
        rare_class: the index of the class whose recall is logged. Defaults to `None`.
        prefix: the start of every key. Defaults to `"val_"`.
        batch_size: examples per prediction batch. Defaults to `256`.

    Raises:
        ValueError: `x` and `y` of different lengths, or `rare_class` out of range.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3 ("The ROC Curve", precision and
    recall); ch. 10 ("Using Callbacks").
    """

    def __init__(self, x: Any, y: Any, class_names: Sequence[str] | None = None, *,
                 rare_class: int | None = None, prefix: str = "val_",
                 batch_size: int = 256) -> None:
        super().__init__()
        self.x = x
        self.y = np.asarray(y).astype("int64").reshape(-1)
        if len(self.y) != len(x):
            raise ValueError(f"x has {len(x)} examples but y has {len(self.y)}.")
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        if rare_class is not None and self.class_names is not None and \
                not 0 <= int(rare_class) < len(self.class_names):
            raise ValueError(f"rare_class must be a class index in [0, "
                             f"{len(self.class_names) - 1}], got {rare_class!r}.")
        self.rare_class = None if rare_class is None else int(rare_class)
        self.prefix = prefix
        self.batch_size = check_at_least("batch_size", batch_size, 1)
        self._data = None

    def measure(self) -> dict[str, float]:
        """The values this callback logs, for the current weights.

        Returns:
            ``{"<prefix>auc_<class>": ..., "<prefix>macro_auc": ...,
            "<prefix>rare_recall": ...}``.
        """
        from recipes.data.pipeline import make_dataset  # tensorflow is imported by now

        if self._data is None:
            self._data = make_dataset(self.x, None, self.batch_size, shuffle=False)
        proba = np.asarray(self.model.predict(self._data, verbose=0), dtype="float64")
        if proba.ndim == 1 or proba.shape[1] == 1:  # a sigmoid output: two classes
            p1 = proba.reshape(-1)
            proba = np.stack([1.0 - p1, p1], axis=1)
        proba = np.where(np.isfinite(proba), proba, 0.0)
        names = self.class_names or [str(c) for c in range(proba.shape[1])]
        table = roc_auc_per_class(self.y, proba, names)
        keys: dict[str, int] = {}
        values: dict[str, float] = {}
        for name, auc in zip(table["class"], table["auc"]):
            key = class_key(name)
            keys[key] = keys.get(key, 0) + 1
            key = key if keys[key] == 1 else f"{key}_{keys[key]}"
            values[f"{self.prefix}auc_{key}"] = float(auc)
        aucs = table["auc"].to_numpy(dtype=float)
        values[f"{self.prefix}macro_auc"] = (float(np.nanmean(aucs)) if np.isfinite(aucs).any()
                                             else float("nan"))
        if self.rare_class is not None:
            positive = self.y == self.rare_class
            hits = np.sum(proba[positive].argmax(axis=1) == self.rare_class)
            values[f"{self.prefix}rare_recall"] = (float(hits / positive.sum())
                                                   if positive.any() else float("nan"))
        return values

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:  # noqa: D102
        values = self.measure()
        if logs is not None:
            logs.update(values)


def steps_per_execution(callbacks: Sequence[keras.callbacks.Callback] = (), *,
                        fast: int = FAST_STEPS_PER_EXECUTION) -> int:
    """The ``steps_per_execution`` to compile with when training with these callbacks.

    Keras runs that many steps inside one call of its compiled train (and test) function
    and calls the batch hooks once per call, with the call's last step. The training is
    the same step by step (same batches, same updates), only the Python work between steps
    goes. A callback of our own that overrides a batch hook (a per-step trace, a step
    timer) would see one call in `fast`: then it is 1. Keras's own callbacks (progress
    bar, `TensorBoard`, `TerminateOnNaN`) handle several steps per call.

    Example:

    ```python
    callbacks = [EpochTimer(), GradientMonitor(x[:256], y[:256])]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  steps_per_execution=steps_per_execution(callbacks))
    model.fit(train, epochs=5, callbacks=callbacks)
    ```

    Args:
        callbacks: the callbacks ``fit`` will get.
        fast: the count when no callback needs every step. Defaults to
            `FAST_STEPS_PER_EXECUTION` (64).

    Returns:
        `fast`, or 1 when a callback defined outside Keras overrides a batch hook, or
        a ``LambdaCallback`` has one.

    Reference: Keras, ``Model.compile(steps_per_execution=...)``.
    """
    check_at_least("fast", fast, 1)
    for callback in callbacks:
        if any(hook in vars(callback) for hook in _STEP_HOOKS):  # a LambdaCallback's
            return 1
        if type(callback).__module__.startswith("keras."):
            continue
        if any(getattr(type(callback), hook) is not getattr(keras.callbacks.Callback, hook)
               for hook in _STEP_HOOKS):
            return 1
    return fast


def make_callbacks(
    schedule_name: str | _Schedule = "constant",
    *,
    early_stopping: int | None = None,
    monitor: str = "val_loss",
    tensorboard: str | os.PathLike | None = None,
    epoch_timer: bool = False,
    gradient_batch: tuple[Any, Any] | None = None,
    **kwargs: Any,
) -> list[keras.callbacks.Callback]:
    """Return the callbacks of one training run: the schedule's, and the ones asked for.

    In this order, so that each callback reads the logs the earlier ones wrote:
    `EpochTimer` (`epoch_timer=True`), `GradientMonitor` (`gradient_batch=(x, y)`),
    `ReduceLROnPlateau` (performance scheduling), `EarlyStopping` (`early_stopping=N`),
    `TensorBoard` (`tensorboard=LOG_DIR`, last, so it logs every value above).

    Example:

    ```python
    callbacks = make_callbacks("1cycle", early_stopping=5, tensorboard=run_dir / "tb")
    ```

    Args:
        schedule_name: one of `SCHEDULE_NAMES`, or a `LearningRateSchedule` (which needs
            no callback). Defaults to `"constant"`.
        early_stopping: the patience of Keras's `EarlyStopping(monitor=monitor,
            patience=early_stopping, restore_best_weights=True)`: training stops after
            that many epochs without improvement, and the weights of the best epoch are
            restored at the end of training. Defaults to `None` (no early stopping).
        monitor: the quantity watched by early stopping and performance scheduling.
            Defaults to `"val_loss"`.
        tensorboard: a folder for Keras's `TensorBoard` callback (event files under
            ``train/`` and ``validation/``). Defaults to `None` (no TensorBoard).
        epoch_timer: add an `EpochTimer` (``epoch_time`` in the logs). Defaults to `False`.
        gradient_batch: ``(x, y)``, a fixed batch for a `GradientMonitor` (without its own
            ``log_dir``: Keras's `TensorBoard` logs its values). Defaults to `None`.
        **kwargs: for `"performance"` only, `ReduceLROnPlateau` arguments overriding the
            book's `factor=0.5, patience=5` (e.g. `min_delta=1e-3`).

    Returns:
        The list of callbacks: for a schedule alone,
        `[keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=5, **kwargs)]` for
        `"performance"`, else `[]`.

    Raises:
        ValueError: unknown name, keyword arguments for a schedule that takes none, or a
            bad patience.

    Reference: Géron, Hands-On ML (3rd ed.), chapter 11, "Performance scheduling";
    chapter 10, "Using Callbacks" (early stopping) and "Using TensorBoard for
    Visualization".
    """
    if isinstance(schedule_name, _Schedule):
        key = "schedule object"
    elif isinstance(schedule_name, str) and schedule_name.lower() in SCHEDULE_NAMES:
        key = schedule_name.lower()
    else:
        raise ValueError(
            f"Unknown schedule {schedule_name!r}. Valid: {', '.join(SCHEDULE_NAMES)}."
        )
    if kwargs and key != "performance":
        raise ValueError(
            f"Schedule {key!r} needs no callback, so it takes no arguments; got "
            f"{', '.join(sorted(kwargs))}."
        )
    callbacks: list[keras.callbacks.Callback] = []
    if epoch_timer:
        callbacks.append(EpochTimer())
    if gradient_batch is not None:
        x, y = gradient_batch
        callbacks.append(GradientMonitor(x, y))
    if key == "performance":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            **{"monitor": monitor, "factor": 0.5, "patience": 5, **kwargs}))
    if early_stopping is not None:
        patience = check_at_least("early_stopping", early_stopping, 0)
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, patience=patience, restore_best_weights=True))
    if tensorboard is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=os.fspath(tensorboard)))
    return callbacks


def tensorboard_level(level: str | None = None) -> str:
    """How much a training run writes to TensorBoard: `level`, else ``RECIPES_TENSORBOARD``.

    Args:
        level: one of `TENSORBOARD_LEVELS`, or `None` to read the environment variable
            ``RECIPES_TENSORBOARD`` (unset or empty: ``"on"``).

    Returns:
        ``"off"``, ``"on"`` or ``"full"``.

    Raises:
        InputError: an unknown level (the message names the variable and the valid ones).
    """
    from_env = level is None
    if from_env:
        level = os.environ.get("RECIPES_TENSORBOARD", "").strip() or "on"
    if level.lower() not in TENSORBOARD_LEVELS:
        where = "RECIPES_TENSORBOARD" if from_env else "level"
        raise InputError(f"Unknown {where} {level!r}. Valid: {', '.join(TENSORBOARD_LEVELS)}.")
    return level.lower()


def tensorboard_callbacks(
    log_dir: str | os.PathLike,
    gradient_batch: tuple[Any, Any] | None = None,
    *,
    level: str | None = None,
    max_overhead: float = 0.05,
) -> list[keras.callbacks.Callback]:
    """The callbacks that write one training run's TensorBoard logs under `log_dir`.

    - Keras's `TensorBoard` (``log_dir/train`` and ``log_dir/validation``): every value of
      the epoch's logs (loss, metrics, ``epoch_time``) and the learning rate, per epoch,
      nearly free; at level ``"full"`` also each weight's histogram every epoch and the
      graph (up to 8% of an epoch and 165 KB per epoch for a 100-layer MLP).
    - A `GradientMonitor` (``log_dir/gradients``, with `gradient_batch`): each layer's
      gradient norm and dead-unit fraction at the end of an epoch, while the measurements
      take under `max_overhead` of the training time (the first epoch always); its values
      stay out of the epoch's logs, so History and the history CSVs are unchanged. It
      restores the model's non-trainable state (BN statistics, dropout seeds), so the
      training is the same with or without it.

    Put them after the callbacks that add values to the logs (`EpochTimer`).

    Example:

    ```python
    callbacks = [EpochTimer(), *tensorboard_callbacks(run_dir / "tb" / "bn", (x[:256], y[:256]))]
    model.fit(x, y, epochs=5, validation_data=(xv, yv), callbacks=callbacks)
    # then: tensorboard --logdir runs/
    ```

    Args:
        log_dir: this run's folder, e.g. ``<run folder>/tb/<variant>``.
        gradient_batch: ``(x, y)``, the fixed batch of the gradient measurements; `None`
            measures nothing. Defaults to `None`.
        level: one of `TENSORBOARD_LEVELS`; `None` reads ``RECIPES_TENSORBOARD``
            (`tensorboard_level`). ``"off"`` returns no callback.
        max_overhead: the `GradientMonitor`'s budget. Defaults to `0.05`.

    Returns:
        The callbacks (none at level ``"off"``).

    Raises:
        InputError: an unknown level.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Using TensorBoard for Visualization";
    ch. 11, "The Vanishing/Exploding Gradients Problems".
    """
    level = tensorboard_level(level)
    if level == "off":
        return []
    log_dir = os.fspath(log_dir)
    callbacks: list[keras.callbacks.Callback] = []
    if gradient_batch is not None:
        x, y = gradient_batch
        callbacks.append(GradientMonitor(x, y, log_dir=os.path.join(log_dir, "gradients"),
                                         to_logs=False, max_overhead=max_overhead))
    full = level == "full"
    callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, histogram_freq=int(full),
                                                 write_graph=full))
    return callbacks
