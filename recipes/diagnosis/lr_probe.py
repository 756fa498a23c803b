"""Learning-rate probe: a few training steps on a copy of a model, at its rate and faster.

The copy is ``keras.models.clone_model`` plus ``set_weights``, compiled with the model's
own optimizer (its config, and its state when it was compiled and built, e.g. a ``.keras``
file saved after training) or Adam when it was never compiled. The model itself is never
changed. Each rate is run on a few mini-batch orders, each run starting from the model's
weights and optimizer state; after each step the loss is measured on a fixed evaluation
batch, held-out examples when given (`recipes.diagnosis.checks.check_probe` reads the
table).

Example:

```python
table = probe_learning_rate(model, x_train[:2000], y_train[:2000], steps=20,
                            validation=(x_valid, y_valid))
table[["step", "loss", "loss_x10", "loss_x100"]]  # medians over the batch orders
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
    # predict_on_batch runs a compiled function (traced once per copy): a few times
    # faster than an eager call, and the same outputs (inference mode).
    return float(ops.mean(loss_fn(y, model.predict_on_batch(x))))


def _column(order: int, factor: float) -> str:
    return f"order{order}_loss" + ("" if factor == 1.0 else f"_x{factor:g}")


def probe_learning_rate(model: keras.Model, x: Any, y: Any, steps: int, *,
                        batch_size: int = 32, factors: Sequence[float] = (10.0, 100.0),
                        eval_size: int = 256, seed: int = 0, orders: int = 3,
                        validation: tuple[Any, Any] | None = None) -> pd.DataFrame:
    """Train copies of `model` for `steps` mini-batches at its rate and at `factors` x it.

    Each rate is trained `orders` times from the model's weights (and optimizer state),
    each time on another mini-batch order, so that the check can tell a rise of the loss
    that every order shows from one batch order's noise; at one rate, every order uses
    the same mini-batches. The loss is measured on held-out examples (`validation`) when
    given: on a subset of `x` instead, which a trained model has memorized, its loss
    rises toward the held-out loss as the copy trains on other examples, healthy or not.

    Args:
        model: a built model (not modified).
        x: training inputs to draw mini-batches from (shuffled, seeded).
        y: their labels.
        steps: optimizer steps per copy (>= 1).
        batch_size: mini-batch size. Defaults to `32`.
        factors: the other copies' rate multipliers. Defaults to `(10.0, 100.0)`.
        eval_size: examples (a seeded random subset of `validation`, else of `x`) whose
            loss is measured after each step; taken from `x`, they are left out of the
            mini-batches when `x` has twice as many. Defaults to `256`.
        seed: seed of the evaluation subset and of the mini-batch orders. Defaults to `0`.
        orders: mini-batch orders per rate (>= 1). Defaults to `3`.
        validation: ``(x_val, y_val)``, held-out examples to measure the loss on. Defaults
            to `None` (a subset of `x`).

    Returns:
        One row per step (0 = before training): ``step``; per order k (1, 2 ...),
        ``order<k>_loss`` (at the model's rate) and ``order<k>_loss_x<f>`` per factor,
        e.g. ``order1_loss_x10``; and their medians over the orders, ``loss`` and
        ``loss_x<f>`` (a NaN/Inf loss counts as +Inf, a median that is not finite is
        NaN; NaN columns when the rate is a schedule, which a factor cannot scale).
        ``attrs["learning_rate"]`` holds the rate (None for a schedule),
        ``attrs["optimizer"]`` the optimizer's class name,
        ``attrs["orders"]`` the number of orders and ``attrs["evaluated_on"]``
        ``"validation"`` or ``"training"``.

    Raises:
        ValueError: ``steps < 1``, ``orders < 1`` or the data do not fit the model.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Learning Rate Scheduling"; ch. 10
    (the learning-rate sweep).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    if orders < 1:
        raise ValueError(f"orders must be >= 1, got {orders}.")
    x = check_input_shape(model, x)
    y = np.asarray(y)
    loss_fn = resolve_loss(model, y)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(x))  # data may be sorted by class
    if validation is not None:
        x_val = check_input_shape(model, validation[0])
        y_val = np.asarray(validation[1])
        keep = rng.permutation(len(x_val))[:eval_size]
        x_eval, y_eval, pool = x_val[keep], y_val[keep], perm
    else:
        x_eval, y_eval = x[perm[:eval_size]], y[perm[:eval_size]]
        pool = perm[eval_size:] if len(x) >= 2 * eval_size else perm  # train on the rest
    batch_orders = [pool] + [rng.permutation(pool) for _ in range(orders - 1)]
    # One copy, compiled once (a compile per rate and order would cost more than the
    # steps); before each run its weights, its optimizer's state and its rate are reset.
    clone = keras.models.clone_model(model)
    weights = model.get_weights()
    clone.set_weights(weights)
    optimizer = clone_optimizer(model, clone)
    state = [v.numpy() for v in optimizer.variables]
    rate = keras.optimizers.serialize(optimizer)["config"].get("learning_rate")
    scalable = isinstance(rate, (int, float))
    clone.compile(optimizer=optimizer, loss=loss_fn)
    columns: dict[str, list[float]] = {}
    for factor in (1.0, *(float(f) for f in factors)):
        for k, order in enumerate(batch_orders, start=1):
            name = _column(k, factor)
            if factor != 1.0 and not scalable:
                columns[name] = [float("nan")] * (steps + 1)
                continue
            clone.set_weights(weights)
            for variable, value in zip(optimizer.variables, state):
                variable.assign(value)
            if scalable:
                optimizer.learning_rate = float(rate) * factor
            losses = [_eval_loss(clone, loss_fn, x_eval, y_eval)]
            for step in range(steps):
                start = (step * batch_size) % len(order)
                idx = np.take(order, np.arange(start, start + batch_size), mode="wrap")
                clone.train_on_batch(x[idx], y[idx])
                losses.append(_eval_loss(clone, loss_fn, x_eval, y_eval))
            columns[name] = losses
    table = pd.DataFrame({"step": np.arange(steps + 1)})
    for factor in (1.0, *(float(f) for f in factors)):
        runs = np.array([columns[_column(k, factor)] for k in range(1, orders + 1)])
        median = np.median(np.where(np.isfinite(runs), runs, np.inf), axis=0)
        table["loss" if factor == 1.0 else f"loss_x{factor:g}"] = np.where(
            np.isfinite(median), median, np.nan)
    for name, values in columns.items():
        table[name] = values
    table.attrs["learning_rate"] = float(rate) if scalable else None
    table.attrs["optimizer"] = type(optimizer).__name__
    table.attrs["orders"] = orders
    table.attrs["evaluated_on"] = "training" if validation is None else "validation"
    return table
