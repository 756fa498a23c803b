"""Choosing a learning-rate schedule by name: the optimizer's rate and the callbacks.

`make_schedule(name, learning_rate=..., steps_per_epoch=..., epochs=...)` returns what
goes into an optimizer's `learning_rate` (a `LearningRateSchedule`, or a float for
constant and performance scheduling); `make_callbacks(name)` returns the callbacks that
schedule needs (`ReduceLROnPlateau` for performance scheduling, else none). A schedule
object and `ReduceLROnPlateau` are never combined: Keras raises `TypeError` when the
callback tries to set a scheduled rate.

Example:

```python
name = "performance"
lr = make_schedule(name, learning_rate=1e-2, steps_per_epoch=1719, epochs=25)
model.compile(optimizer=make_optimizer("nesterov", learning_rate=lr), loss="mse")
model.fit(x, y, validation_data=(xv, yv), epochs=25, callbacks=make_callbacks(name))
```

Reference: Géron, Hands-On ML (3rd ed.), chapter 11, "Learning Rate Scheduling".
"""

from __future__ import annotations

from typing import Any

import keras

from recipes.names import SCHEDULE_NAMES
from recipes.schedules import CyclicalLR, OneCycle, PowerSchedule, _positive, _positive_int

__all__ = ["SCHEDULE_NAMES", "make_callbacks", "make_schedule"]

_Schedule = keras.optimizers.schedules.LearningRateSchedule


def _total_steps(name: str, steps_per_epoch: int | None, epochs: int | None, kw: dict) -> int:
    if "total_steps" in kw:
        return _positive_int("total_steps", kw.pop("total_steps"))
    if steps_per_epoch is None or epochs is None:
        raise ValueError(f"Schedule {name!r} needs steps_per_epoch and epochs (or total_steps).")
    return _positive_int("steps_per_epoch", steps_per_epoch) * _positive_int("epochs", epochs)


def _epochs_of_steps(name: str, what: str, epochs: int, steps_per_epoch: int | None) -> int:
    if steps_per_epoch is None:
        raise ValueError(f"Schedule {name!r} needs steps_per_epoch (or {what}=<steps>).")
    return epochs * _positive_int("steps_per_epoch", steps_per_epoch)


def make_schedule(
    name: str | _Schedule,
    *,
    learning_rate: float | None = None,
    steps_per_epoch: int | None = None,
    epochs: int | None = None,
    **kwargs: Any,
) -> _Schedule | float:
    """Return the `learning_rate` argument of an optimizer for a schedule name.

    Defaults are the book's unless said:

    - `constant`, `performance`: `float(learning_rate)`; performance scheduling is the
      callback from `make_callbacks("performance")`.
    - `power`: `PowerSchedule(learning_rate, s=10_000, c=1)`, the book's `decay=1e-4`.
    - `exponential`: `ExponentialDecay(learning_rate, s, 0.1)`, i.e. `lr0 * 0.1**(t/s)`
      exactly, with `s` = 20 epochs of steps.
    - `piecewise`: `PiecewiseConstantDecay`, `learning_rate` for epochs 0-4, half of it
      for epochs 5-14, a tenth after (the book's 0.01, 0.005, 0.001).
    - `1cycle`, `onecycle`: `OneCycle(epochs * steps_per_epoch, max_lr=learning_rate)`.
    - `cyclical`: `CyclicalLR(learning_rate / 4, learning_rate, step_size=2 epochs of
      steps)`, Smith's advice (base a third or quarter of max, step 2-10 epochs).
    - `cosine`: `CosineDecay` rising linearly from 0 to `learning_rate` over the first
      10% of the steps, then cosine decay to 0.

    Keyword overrides: `power`: `s`, `c`; `exponential`: `s` (steps); `piecewise`:
    `boundaries` (steps) and `values`; `1cycle`: `total_steps` and `OneCycle`'s
    arguments; `cyclical`: `base_lr`, `step_size` (steps), `mode`, `gamma`; `cosine`:
    `total_steps`, `warmup_steps`, `initial_learning_rate`, `alpha`.

    Args:
        name: one of `SCHEDULE_NAMES`, or a `LearningRateSchedule`, returned unchanged
            (no other argument may then be given).
        learning_rate: the initial rate (the peak rate for `1cycle`, `cyclical`, `cosine`).
        steps_per_epoch: optimizer steps in one epoch; needed by the epoch-based defaults.
        epochs: number of epochs; needed by `1cycle` and `cosine` (or `total_steps=`).
        **kwargs: the overrides above.

    Returns:
        A `LearningRateSchedule`, or a float for `constant` and `performance`.

    Raises:
        ValueError: unknown name, a missing or bad argument, or an unknown keyword.

    Reference: Géron, Hands-On ML (3rd ed.), chapter 11, "Learning Rate Scheduling".
    """
    if isinstance(name, _Schedule):
        given = {"learning_rate": learning_rate, "steps_per_epoch": steps_per_epoch,
                 "epochs": epochs, **kwargs}
        if any(v is not None for v in given.values()):
            raise ValueError("make_schedule got a schedule object and also arguments: "
                             "configure the object itself or pass a name instead.")
        return name
    if not isinstance(name, str) or name.lower() not in SCHEDULE_NAMES:
        raise ValueError(f"Unknown schedule {name!r}. Valid: {', '.join(SCHEDULE_NAMES)}.")
    key = name.lower()
    if learning_rate is None:
        raise ValueError(f"Schedule {key!r} needs learning_rate.")
    lr = _positive("learning_rate", learning_rate)
    kw = dict(kwargs)
    allowed = {
        "constant": set(), "performance": set(), "power": {"s", "c"}, "exponential": {"s"},
        "piecewise": {"boundaries", "values"},
        "1cycle": {"total_steps", "start_lr", "last_lr", "last_fraction", "shape"},
        "cyclical": {"base_lr", "step_size", "mode", "gamma"},
        "cosine": {"total_steps", "warmup_steps", "initial_learning_rate", "alpha"},
    }[key.replace("onecycle", "1cycle")]
    unknown = sorted(set(kw) - allowed)
    if unknown:
        hint = " Its callback takes them: make_callbacks('performance', ...)." \
            if key == "performance" else ""
        raise ValueError(f"Unknown argument(s) {unknown} for schedule {key!r}. "
                         f"Valid: {', '.join(sorted(allowed)) or 'none'}.{hint}")
    if key in ("constant", "performance"):
        return lr
    if key == "power":
        return PowerSchedule(lr, s=kw.get("s", 10_000), c=kw.get("c", 1.0))
    if key == "exponential":
        s = kw["s"] if "s" in kw else _epochs_of_steps(key, "s", 20, steps_per_epoch)
        return keras.optimizers.schedules.ExponentialDecay(lr, _positive("s", s), 0.1)
    if key == "piecewise":
        if "boundaries" in kw:
            boundaries = list(kw["boundaries"])
        else:  # last step of epoch 4 and of epoch 14 (PiecewiseConstantDecay uses step <= b)
            spe = _epochs_of_steps(key, "boundaries", 1, steps_per_epoch)
            boundaries = [5 * spe - 1, 15 * spe - 1]
        values = list(kw.get("values", [lr, lr / 2, lr / 10]))
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"piecewise needs len(values) == len(boundaries) + 1, got "
                             f"{len(values)} values for {len(boundaries)} boundaries.")
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    if key in ("1cycle", "onecycle"):
        total = _total_steps(key, steps_per_epoch, epochs, kw)
        return OneCycle(total, max_lr=lr, **kw)
    if key == "cyclical":
        step_size = kw.pop("step_size", None)
        if step_size is None:
            step_size = _epochs_of_steps(key, "step_size", 2, steps_per_epoch)
        return CyclicalLR(kw.pop("base_lr", lr / 4), lr, step_size, **kw)
    total = _total_steps(key, steps_per_epoch, epochs, kw)
    warmup = kw.get("warmup_steps", round(0.1 * total))
    if not 0 <= warmup < total:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total}), got {warmup!r}.")
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=kw.get("initial_learning_rate", 0.0),
        decay_steps=total - warmup,
        alpha=kw.get("alpha", 0.0),
        warmup_target=lr,
        warmup_steps=warmup,
    )


def make_callbacks(schedule_name: str | _Schedule, **kwargs: Any) -> list[keras.callbacks.Callback]:
    """Return the callbacks a schedule needs: `ReduceLROnPlateau` for performance scheduling.

    Args:
        schedule_name: one of `SCHEDULE_NAMES`, or a `LearningRateSchedule` (which needs
            no callback).
        **kwargs: for `"performance"` only, `ReduceLROnPlateau` arguments overriding the
            book's `factor=0.5, patience=5` (e.g. `monitor="val_accuracy"`).

    Returns:
        `[keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=5, **kwargs)]` for
        `"performance"`, else `[]`.

    Raises:
        ValueError: unknown name, or keyword arguments for a schedule that takes none.

    Reference: Géron, Hands-On ML (3rd ed.), chapter 11, "Performance scheduling".
    """
    if isinstance(schedule_name, _Schedule):
        key = "schedule object"
    elif isinstance(schedule_name, str) and schedule_name.lower() in SCHEDULE_NAMES:
        key = schedule_name.lower()
    else:
        raise ValueError(
            f"Unknown schedule {schedule_name!r}. Valid: {', '.join(SCHEDULE_NAMES)}."
        )
    if key == "performance":
        return [keras.callbacks.ReduceLROnPlateau(**{"factor": 0.5, "patience": 5, **kwargs})]
    if kwargs:
        raise ValueError(
            f"Schedule {key!r} needs no callback, so it takes no arguments; got "
            f"{', '.join(sorted(kwargs))}."
        )
    return []
