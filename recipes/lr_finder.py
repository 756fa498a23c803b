"""The learning-rate range test: sweep the rate exponentially, watch the per-batch loss.

`find_learning_rate` trains a compiled model for up to one epoch while the learning rate
grows exponentially from `min_lr` to `max_lr`, one step per batch, records each batch's
own loss (not Keras's running epoch mean), smooths it with a bias-corrected exponential
moving average, stops once the smoothed loss passes `stop_factor` times its best, and
then puts the model back exactly as it was: weights, optimizer state (iterations,
moments, learning rate) and the dropout seed. It returns data only; plotting lives in
`recipes.plots`.

Example:

```python
model.compile(optimizer=make_optimizer("sgd"), loss="sparse_categorical_crossentropy")
result = find_learning_rate(model, (x_train, y_train), batch_size=32)
model.optimizer.learning_rate = result.suggestion
```

Reference: Géron, Hands-On ML (3rd ed.), chapter 11, "Learning Rate Scheduling" (and
chapter 10's learning-rate search); L. Smith, "Cyclical Learning Rates for Training
Neural Networks" (2017); fastai's `lr_find`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from recipes.checks import (
    check_at_least,
    check_finite,
    check_fraction,
    check_positive,
    check_positive_int,
)

__all__ = ["LRFinderResult", "find_learning_rate"]


@dataclass(frozen=True)
class LRFinderResult:
    """What the range test measured.

    Attributes:
        table: one row per training step, columns `learning_rate` (the rate used for that
            step), `loss` (that batch's loss, regularization included) and
            `smoothed_loss` (bias-corrected exponential moving average of `loss`).
        suggestion: `min_loss_lr / 10`, at least `min_lr`: the book's rule of thumb, a
            rate about 10 times lower than where the loss starts climbing again.
        min_loss_lr: the learning rate where `smoothed_loss` is lowest.
        steepest_lr: fastai's alternative, the rate at the steepest descent of
            `smoothed_loss` against `log10(learning_rate)` among the steps up to the
            smoothed minimum; `None` when fewer than 3 steps lead to it. Noisier than
            `suggestion` on short sweeps, where the moving average lags.
        stopped_early: `True` when the sweep stopped because the smoothed loss passed
            `stop_factor` times its best or a loss was not finite (that step is not
            recorded).
    """

    table: pd.DataFrame
    suggestion: float
    min_loss_lr: float
    steepest_lr: float | None
    stopped_early: bool


def _batches(data: Any, batch_size: int) -> tuple[Iterator[tuple], int | None]:
    """An endless iterator of (x, y, sample_weight) batches and the batches per epoch."""
    if isinstance(data, tf.data.Dataset):
        n = int(data.cardinality())
        per_epoch = n if n > 0 else None

        def from_dataset() -> Iterator[tuple]:
            while True:
                empty = True
                for batch in data:
                    empty = False
                    yield keras.utils.unpack_x_y_sample_weight(batch)
                if empty:
                    raise ValueError("The dataset given to find_learning_rate is empty.")

        return from_dataset(), per_epoch
    if isinstance(data, tuple | list) and len(data) in (2, 3):
        arrays = tuple(data) + (None,) * (3 - len(data))
        sizes = {len(a) for a in keras.tree.flatten(arrays[0])}
        if len(sizes) != 1 or next(iter(sizes)) == 0:
            raise ValueError(f"x must hold arrays of one non-zero length, got lengths {sizes}.")
        n = sizes.pop()
        per_epoch = math.ceil(n / batch_size)

        def from_arrays() -> Iterator[tuple]:
            while True:
                for k in range(per_epoch):
                    part = slice(k * batch_size, min((k + 1) * batch_size, n))
                    yield tuple(
                        None if a is None
                        else keras.tree.map_structure(lambda v, p=part: v[p], a)
                        for a in arrays
                    )

        return from_arrays(), per_epoch
    raise ValueError(
        "dataset_or_xy must be a batched tf.data.Dataset or a tuple (x, y) or "
        f"(x, y, sample_weight), got {type(data).__name__}."
    )


def _check_args(model: keras.Model, min_lr, max_lr, steps, batch_size, smoothing, stop_factor):
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ValueError(
            "find_learning_rate needs a compiled model: call "
            "model.compile(optimizer=..., loss=...) first."
        )
    if not model.built:
        raise ValueError(
            "find_learning_rate needs a built model: start it with keras.Input(...) "
            "or call model.build(input_shape) first."
        )
    if not isinstance(model.optimizer.learning_rate, keras.Variable):
        raise ValueError(
            "find_learning_rate needs an optimizer with a float learning rate, not a "
            "LearningRateSchedule: compile with e.g. SGD(learning_rate=1e-3) for the test."
        )
    if not check_positive("min_lr", min_lr) < check_positive("max_lr", max_lr):
        raise ValueError(f"Need 0 < min_lr < max_lr, got min_lr={min_lr!r}, max_lr={max_lr!r}.")
    if steps is not None:
        check_at_least("steps", steps, 2)
    check_positive_int("batch_size", batch_size)
    check_fraction("smoothing", smoothing)
    if not check_finite("stop_factor", stop_factor) > 1.0:
        raise ValueError(f"stop_factor must be > 1, got {stop_factor!r}.")


def _suggest(lrs: np.ndarray, smoothed: np.ndarray, min_lr: float):
    best = int(np.argmin(smoothed))
    min_loss_lr = float(lrs[best])
    steepest = None
    if best >= 2:
        slope = np.gradient(smoothed[: best + 1], np.log10(lrs[: best + 1]))
        steepest = float(lrs[int(np.argmin(slope))])
    return max(min_loss_lr / 10, min_lr), min_loss_lr, steepest


def find_learning_rate(
    model: keras.Model,
    dataset_or_xy: Any,
    min_lr: float = 1e-5,
    max_lr: float = 10.0,
    steps: int | None = None,
    *,
    batch_size: int = 32,
    smoothing: float = 0.98,
    stop_factor: float = 4.0,
) -> LRFinderResult:
    """Run the learning-rate range test and restore the model afterwards.

    Step `i` of `steps` trains one batch with rate
    `min_lr * (max_lr / min_lr) ** (i / (steps - 1))`, using the model's own compiled
    train step (`train_on_batch` after resetting the metrics, so the loss is that
    batch's). The smoothed loss is `avg_i / (1 - smoothing ** (i + 1))` with
    `avg_i = smoothing * avg_{i-1} + (1 - smoothing) * loss_i`. Batches cycle if
    `steps` is longer than the data. Everything the sweep changed (model variables,
    optimizer variables, compiled metrics' state) is put back bit for bit, even when a
    step raises.

    Args:
        model: a built, compiled Keras model whose optimizer has a float learning rate.
        dataset_or_xy: a batched `tf.data.Dataset` yielding `(x, y)` or
            `(x, y, sample_weight)`, or a tuple of arrays `(x, y)` / `(x, y, sample_weight)`
            cut into batches of `batch_size` in order (no shuffling).
        min_lr: the first learning rate. Defaults to `1e-5`.
        max_lr: the last learning rate. Defaults to `10.0`.
        steps: the number of steps. Defaults to `None`: one epoch (required for a
            dataset of unknown length).
        batch_size: the batch size for array input. Defaults to `32`.
        smoothing: the moving-average factor in `[0, 1)`. Defaults to `0.98`.
        stop_factor: stop when the smoothed loss passes this multiple of its best.
            Defaults to `4.0`.

    Returns:
        An `LRFinderResult`: the table, the suggested rate and the rates it came from.

    Raises:
        ValueError: an uncompiled or unbuilt model, a scheduled learning rate, bad
            arguments, an empty dataset or one of unknown length without `steps`.

    Reference: Géron, Hands-On ML (3rd ed.), chapter 11; L. Smith, "Cyclical Learning
    Rates for Training Neural Networks" (2017).
    """
    _check_args(model, min_lr, max_lr, steps, batch_size, smoothing, stop_factor)
    batches, per_epoch = _batches(dataset_or_xy, int(batch_size))
    steps = per_epoch if steps is None else int(steps)
    if steps is None:
        raise ValueError("The dataset has unknown length: pass steps=<number of batches>.")
    if steps < 2:
        raise ValueError(f"The sweep needs at least 2 steps, the data gives {steps}.")
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    saved: dict[int, tuple[Any, np.ndarray]] = {}
    for v in [*model.variables, *optimizer.variables, *model.metrics_variables]:
        saved.setdefault(id(v), (v, np.array(v.numpy(), copy=True)))
    ratio = max_lr / min_lr
    lrs, losses, smoothed = [], [], []
    avg, best, stopped = 0.0, math.inf, False
    try:
        for i in range(steps):
            lr = min_lr * ratio ** (i / (steps - 1))
            optimizer.learning_rate = lr
            x, y, sample_weight = next(batches)
            logs = model.train_on_batch(x, y, sample_weight=sample_weight, return_dict=True)
            loss = float(logs["loss"])
            if not math.isfinite(loss):
                stopped = True
                break
            avg = smoothing * avg + (1.0 - smoothing) * loss
            smooth = avg / (1.0 - smoothing ** (i + 1))
            lrs.append(lr)
            losses.append(loss)
            smoothed.append(smooth)
            best = min(best, smooth)
            if smooth > stop_factor * best:
                stopped = True
                break
    finally:
        model.reset_metrics()
        for variable, value in saved.values():
            variable.assign(value)
    if not lrs:
        raise ValueError(
            f"The first step's loss was not finite at learning rate {min_lr!r}: "
            "check the data and the model, or lower min_lr."
        )
    table = pd.DataFrame({"learning_rate": lrs, "loss": losses, "smoothed_loss": smoothed})
    suggestion, min_loss_lr, steepest = _suggest(np.array(lrs), np.array(smoothed), min_lr)
    return LRFinderResult(table, suggestion, min_loss_lr, steepest, stopped)
