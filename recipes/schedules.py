"""Learning-rate schedules: the ones Keras lacks, and `make_schedule` to choose one by name.

Per-step schedules are `keras.optimizers.schedules.LearningRateSchedule` subclasses
computed with `keras.ops`, so they run inside the traced train step and are saved with
the optimizer in a `.keras` file: `PowerSchedule` (the book's power scheduling with any
exponent `c`), `OneCycle` (1cycle, linear as in the book's notebook or cosine as in
fastai) and `CyclicalLR` (Leslie Smith's triangular, triangular2 and exp_range).
Exponential, piecewise-constant and cosine-with-warm-up scheduling use Keras's own
`ExponentialDecay`, `PiecewiseConstantDecay` and `CosineDecay`. `make_schedule(name, ...)`
returns any of them by name (the names are `recipes.names.SCHEDULE_NAMES`); performance
scheduling is Keras's `ReduceLROnPlateau` callback (`recipes.callbacks.make_callbacks`).
A schedule object and `ReduceLROnPlateau` are never combined: Keras raises `TypeError`
when the callback tries to set a scheduled rate.

Momentum cycling (the book's 0.95 -> 0.85 -> 0.95 alongside 1cycle) is deliberately left
out: in Keras 3.15, `SGD.momentum` is a Python float that the traced train step captures
as a constant, so changing it from a callback after the first step does not change the
updates (tests/test_schedules.py checks this), and a variable in its place would break
`get_config` and saving.

Example:

```python
schedule = OneCycle(total_steps=25 * 1719, max_lr=0.1)
model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule), loss="mse")
lr = make_schedule("1cycle", learning_rate=0.1, steps_per_epoch=1719, epochs=25)  # the same
```

Reference: Géron, Hands-On ML (3rd ed.), chapter 11, "Learning Rate Scheduling".
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from recipes.checks import (
    check_at_least,
    check_choice,
    check_fraction,
    check_positive,
    check_positive_int,
)
from recipes.names import SCHEDULE_NAMES

__all__ = ["CYCLICAL_MODES", "ONECYCLE_SHAPES", "CyclicalLR", "OneCycle", "PowerSchedule",
           "make_schedule"]

_Schedule = keras.optimizers.schedules.LearningRateSchedule
ONECYCLE_SHAPES = ("linear", "cosine")
CYCLICAL_MODES = ("triangular", "triangular2", "exp_range")


def _step(step) -> keras.KerasTensor:
    return ops.cast(step, "float32")


@keras.saving.register_keras_serializable(package="recipes")
class PowerSchedule(_Schedule):
    """Power scheduling: `lr0 / (1 + step / s) ** c`.

    After `s` steps the rate is `lr0 / 2**c`, after `2s` steps `lr0 / 3**c`... With `c=1`
    this is Keras's `InverseTimeDecay(lr0, s, 1.0)`, the book's `decay=1/s`.

    Args:
        lr0: initial learning rate.
        s: number of steps over which the rate drops to `lr0 / 2**c`.
        c: power. Defaults to `1.0` (the book's value).

    Raises:
        ValueError: a non-positive argument.

    Reference: Géron, Hands-On ML (3rd ed.), chapter 11, "Power scheduling".
    """

    def __init__(self, lr0: float, s: float, c: float = 1.0) -> None:
        self.lr0 = check_positive("lr0", lr0)
        self.s = check_positive("s", s)
        self.c = check_positive("c", c)

    def __call__(self, step):
        t = _step(step)
        return self.lr0 / ops.power(1.0 + t / self.s, self.c)

    def get_config(self) -> dict:
        return {"lr0": self.lr0, "s": self.s, "c": self.c}


@keras.saving.register_keras_serializable(package="recipes")
class OneCycle(_Schedule):
    """1cycle: rise to `max_lr`, fall back, then anneal far below the start.

    With `half = floor(total_steps * (1 - last_fraction) / 2)`:

    - `shape="linear"` (the book's notebook `OneCycleScheduler`): linear from `start_lr`
      to `max_lr` over steps `[0, half]`, linear back to `start_lr` over
      `[half, 2 * half]`, then linear from `start_lr` to `last_lr` over the last
      `total_steps - 2 * half` steps (about `last_fraction` of them).
    - `shape="cosine"` (fastai's `fit_one_cycle`): cosine warm-up from `start_lr` to
      `max_lr` over `[0, half]`, then cosine annealing from `max_lr` to `last_lr` over
      `[half, total_steps]`; `last_fraction` only places the peak (fastai's own default
      puts it at 25% of the steps: pass `last_fraction=0.5` for that).

    After `total_steps` the rate stays at `last_lr`. The notebook uses
    `total_steps // 10 + 1` last steps; this class uses `last_fraction` of them (at
    least one). Constructor defaults are stored resolved, so `get_config()` has numbers.

    Args:
        total_steps: the length of the cycle in steps (epochs x steps per epoch).
        max_lr: the peak learning rate.
        start_lr: the first rate. Defaults to `None`, `max_lr / 10`.
        last_lr: the final rate. Defaults to `None`, `start_lr / 1000`.
        last_fraction: the fraction of steps for the final annealing phase, in
            `[0, 1)`. Defaults to `0.1`.
        shape: `"linear"` or `"cosine"`. Defaults to `"linear"`.

    Raises:
        ValueError: `start_lr >= max_lr`, `last_lr > start_lr`, a non-positive rate,
            `total_steps < 3`, `last_fraction` outside `[0, 1)` or an unknown shape.

    Reference: Géron, Hands-On ML (3rd ed.), chapter 11, "1cycle scheduling";
    L. Smith, "A disciplined approach to neural network hyper-parameters" (2018).
    """

    MIN_STEPS = 3  # a rise, a fall and a last step: the shortest cycle there is

    def __init__(
        self,
        total_steps: int,
        max_lr: float,
        start_lr: float | None = None,
        last_lr: float | None = None,
        last_fraction: float = 0.1,
        shape: str = "linear",
    ) -> None:
        self.total_steps = check_at_least("total_steps", total_steps, self.MIN_STEPS)
        self.max_lr = check_positive("max_lr", max_lr)
        self.start_lr = check_positive(
            "start_lr", self.max_lr / 10 if start_lr is None else start_lr
        )
        self.last_lr = check_positive(
            "last_lr", self.start_lr / 1000 if last_lr is None else last_lr
        )
        if not self.start_lr < self.max_lr:
            raise ValueError(
                f"max_lr must be > start_lr, got max_lr={self.max_lr!r}, "
                f"start_lr={self.start_lr!r}."
            )
        if self.last_lr > self.start_lr:
            raise ValueError(
                f"last_lr must be <= start_lr, got last_lr={self.last_lr!r}, "
                f"start_lr={self.start_lr!r}."
            )
        self.last_fraction = check_fraction("last_fraction", last_fraction)
        self.shape = check_choice("shape", shape, ONECYCLE_SHAPES)

    @property
    def half_steps(self) -> int:
        """The step at which the rate peaks at `max_lr`."""
        half = math.floor(round(self.total_steps * (1.0 - self.last_fraction), 6) / 2)
        return max(1, min(half, (self.total_steps - 1) // 2))

    def __call__(self, step):
        t = ops.minimum(_step(step), float(self.total_steps))
        half, total = float(self.half_steps), float(self.total_steps)
        lo, hi, end = self.start_lr, self.max_lr, self.last_lr
        if self.shape == "cosine":
            up = hi + (lo - hi) * 0.5 * (1.0 + ops.cos(math.pi * t / half))
            down = end + (hi - end) * 0.5 * (1.0 + ops.cos(math.pi * (t - half) / (total - half)))
            return ops.where(t < half, up, down)
        up = lo + (hi - lo) * t / half
        down = hi - (hi - lo) * (t - half) / half
        last = lo + (end - lo) * (t - 2.0 * half) / (total - 2.0 * half)
        return ops.where(t < half, up, ops.where(t < 2.0 * half, down, last))

    def get_config(self) -> dict:
        return {
            "total_steps": self.total_steps,
            "max_lr": self.max_lr,
            "start_lr": self.start_lr,
            "last_lr": self.last_lr,
            "last_fraction": self.last_fraction,
            "shape": self.shape,
        }


@keras.saving.register_keras_serializable(package="recipes")
class CyclicalLR(_Schedule):
    """Cyclical learning rate (CLR) with Leslie Smith's three policies.

    With `cycle = floor(1 + t / (2 * step_size))` and
    `x = |t / step_size - 2 * cycle + 1|`, the rate is
    `base_lr + (max_lr - base_lr) * max(0, 1 - x) * scale`, where `scale` is 1
    (`"triangular"`), `1 / 2**(cycle - 1)` (`"triangular2"`: the amplitude halves each
    cycle) or `gamma**t` (`"exp_range"`).

    Args:
        base_lr: the lowest rate (at steps 0, 2s, 4s...).
        max_lr: the highest rate (at steps s, 3s, ...), before scaling.
        step_size: half a cycle, in steps (Smith: 2-10 epochs of steps).
        mode: `"triangular"`, `"triangular2"` or `"exp_range"`. Defaults to
            `"triangular"`.
        gamma: the per-step factor of `"exp_range"`, in `(0, 1]`. Defaults to `1.0`.

    Raises:
        ValueError: `max_lr <= base_lr`, a non-positive argument, `gamma` outside
            `(0, 1]` or an unknown mode.

    Reference: L. Smith, "Cyclical Learning Rates for Training Neural Networks" (2017),
    and its reference code (github.com/bckenstler/CLR).
    """

    def __init__(
        self,
        base_lr: float,
        max_lr: float,
        step_size: float,
        mode: str = "triangular",
        gamma: float = 1.0,
    ) -> None:
        self.base_lr = check_positive("base_lr", base_lr)
        self.max_lr = check_positive("max_lr", max_lr)
        if not self.max_lr > self.base_lr:
            raise ValueError(
                f"max_lr must be > base_lr, got max_lr={self.max_lr!r}, "
                f"base_lr={self.base_lr!r}."
            )
        self.step_size = check_positive("step_size", step_size)
        self.mode = check_choice("mode", mode, CYCLICAL_MODES)
        self.gamma = check_fraction("gamma", gamma, include_low=False, include_high=True)

    def __call__(self, step):
        t = _step(step)
        cycle = ops.floor(1.0 + t / (2.0 * self.step_size))
        x = ops.abs(t / self.step_size - 2.0 * cycle + 1.0)
        if self.mode == "triangular2":
            scale = 1.0 / ops.power(2.0, cycle - 1.0)
        elif self.mode == "exp_range":
            scale = ops.power(self.gamma, t)
        else:
            scale = 1.0
        amplitude = (self.max_lr - self.base_lr) * ops.maximum(0.0, 1.0 - x)
        return self.base_lr + amplitude * scale

    def get_config(self) -> dict:
        return {
            "base_lr": self.base_lr,
            "max_lr": self.max_lr,
            "step_size": self.step_size,
            "mode": self.mode,
            "gamma": self.gamma,
        }


def _total_steps(name: str, steps_per_epoch: int | None, epochs: int | None, kw: dict) -> int:
    if "total_steps" in kw:
        return check_positive_int("total_steps", kw.pop("total_steps"))
    if steps_per_epoch is None or epochs is None:
        raise ValueError(f"Schedule {name!r} needs steps_per_epoch and epochs (or total_steps).")
    return (check_positive_int("steps_per_epoch", steps_per_epoch)
            * check_positive_int("epochs", epochs))


def _epochs_of_steps(name: str, what: str, epochs: int, steps_per_epoch: int | None) -> int:
    if steps_per_epoch is None:
        raise ValueError(f"Schedule {name!r} needs steps_per_epoch (or {what}=<steps>).")
    return epochs * check_positive_int("steps_per_epoch", steps_per_epoch)


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
    lr = check_positive("learning_rate", learning_rate)
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
        return keras.optimizers.schedules.ExponentialDecay(lr, check_positive("s", s), 0.1)
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
    warmup = check_at_least("warmup_steps", kw.get("warmup_steps", round(0.1 * total)), 0)
    if warmup >= total:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total}), got {warmup!r}.")
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=kw.get("initial_learning_rate", 0.0),
        decay_steps=total - warmup,
        alpha=kw.get("alpha", 0.0),
        warmup_target=lr,
        warmup_steps=warmup,
    )
