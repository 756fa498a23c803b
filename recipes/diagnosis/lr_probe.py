"""Learning-rate probe: a few training steps on copies of a model, at its rate and faster.

Each copy is ``keras.models.clone_model`` plus ``set_weights``, compiled with the model's
own optimizer (its config, and its state when it was compiled and built, e.g. a ``.keras``
file saved after training) or Adam when it was never compiled. The model itself is never
changed. After each step the loss is measured on a fixed evaluation batch.

Example:

```python
table = probe_learning_rate(model, x_train[:2000], y_train[:2000], steps=20)
table[["step", "loss", "loss_x10", "loss_x100"]]
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Learning Rate Scheduling" (too high a
rate diverges, too low a rate converges very slowly) and ch. 10 (the learning-rate sweep).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import pandas as pd
from keras import ops

from recipes.diagnosis.probing import check_input_shape, resolve_loss

__all__ = ["clone_optimizer", "probe_learning_rate"]


def clone_optimizer(model: keras.Model, clone: keras.Model, factor: float = 1.0) -> Any:
    """A fresh optimizer for `clone` with `model`'s config (and state when it has one).

    Args:
        model: the original model (compiled or not).
        clone: its copy (same architecture).
        factor: multiply a constant learning rate by this. Defaults to `1.0`.

    Returns:
        The optimizer, or None when `factor != 1` and the rate is a schedule (it cannot be
        scaled without changing the schedule's meaning).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Faster Optimizers" (an optimizer's
    state: momentum, moments).
    """
    source = getattr(model, "optimizer", None)
    if source is None:
        config = keras.optimizers.serialize(keras.optimizers.Adam())
    else:
        config = keras.optimizers.serialize(source)
    rate = config["config"].get("learning_rate")
    if factor != 1.0:
        if not isinstance(rate, (int, float)):
            return None
        config["config"]["learning_rate"] = float(rate) * factor
    optimizer = keras.optimizers.deserialize(config)
    optimizer.build(clone.trainable_variables)
    old = list(source.variables) if source is not None and source.built else []
    new = list(optimizer.variables)
    if len(old) == len(new) and all(tuple(a.shape) == tuple(b.shape) for a, b in zip(old, new)):
        for a, b in zip(old, new):
            if "learning_rate" not in b.path:
                b.assign(a)
    return optimizer


def _eval_loss(model: keras.Model, loss_fn: Any, x: np.ndarray, y: Any) -> float:
    return float(ops.mean(loss_fn(y, model(x, training=False))))


def probe_learning_rate(model: keras.Model, x: Any, y: Any, steps: int, *,
                        batch_size: int = 32, factors: Sequence[float] = (10.0, 100.0),
                        eval_size: int = 256, seed: int = 0) -> pd.DataFrame:
    """Train copies of `model` for `steps` mini-batches at its rate and at `factors` x it.

    Every copy sees the same mini-batches in the same order.

    Args:
        model: a built model (not modified).
        x: training inputs to draw mini-batches from (shuffled, seeded).
        y: their labels.
        steps: optimizer steps per copy (>= 1).
        batch_size: mini-batch size. Defaults to `32`.
        factors: the other copies' rate multipliers. Defaults to `(10.0, 100.0)`.
        eval_size: examples of `x` (a seeded random subset) whose loss is measured after
            each step, left out of the mini-batches when `x` has twice as many. Defaults
            to `256`.
        seed: seed of the mini-batch order. Defaults to `0`.

    Returns:
        One row per step (0 = before training): ``step``, ``loss`` (at the model's rate)
        and ``loss_x<f>`` per factor, e.g. ``loss_x10`` (NaN when the rate is a schedule).
        ``attrs["learning_rate"]`` holds the rate (None for a schedule) and
        ``attrs["optimizer"]`` the optimizer's class name.

    Raises:
        ValueError: ``steps < 1`` or the data do not fit the model.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Learning Rate Scheduling"; ch. 10
    (the learning-rate sweep).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    x = check_input_shape(model, x)
    y = np.asarray(y)
    loss_fn = resolve_loss(model, y)
    perm = np.random.default_rng(seed).permutation(len(x))  # data may be sorted by class
    x_eval, y_eval = x[perm[:eval_size]], y[perm[:eval_size]]
    order = perm[eval_size:] if len(x) >= 2 * eval_size else perm  # train on the rest
    columns: dict[str, list[float]] = {}
    for name, scale in (("loss", 1.0), *((f"loss_x{f:g}", f) for f in factors)):
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        optimizer = clone_optimizer(model, clone, scale)
        if optimizer is None:
            columns[name] = [float("nan")] * (steps + 1)
            continue
        clone.compile(optimizer=optimizer, loss=loss_fn)
        losses = [_eval_loss(clone, loss_fn, x_eval, y_eval)]
        for step in range(steps):
            start = (step * batch_size) % len(x)
            idx = np.take(order, np.arange(start, start + batch_size), mode="wrap")
            clone.train_on_batch(x[idx], y[idx])
            losses.append(_eval_loss(clone, loss_fn, x_eval, y_eval))
        columns[name] = losses
    table = pd.DataFrame({"step": np.arange(steps + 1), **columns})
    source = getattr(model, "optimizer", None)
    config = keras.optimizers.serialize(source if source is not None else keras.optimizers.Adam())
    rate = config["config"].get("learning_rate")
    table.attrs["learning_rate"] = float(rate) if isinstance(rate, (int, float)) else None
    table.attrs["optimizer"] = config.get("class_name", "Adam")
    return table
