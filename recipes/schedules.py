"""Learning-rate schedules the chapter uses and Keras lacks: power, 1cycle and cyclical.

Per-step schedules are `keras.optimizers.schedules.LearningRateSchedule` subclasses
computed with `keras.ops`, so they run inside the traced train step and are saved with
the optimizer in a `.keras` file: `PowerSchedule` (the book's power scheduling with any
exponent `c`), `OneCycle` (1cycle, linear as in the book's notebook or cosine as in
fastai) and `CyclicalLR` (Leslie Smith's triangular, triangular2 and exp_range).
Exponential, piecewise-constant and cosine-with-warm-up scheduling use Keras's own
`ExponentialDecay`, `PiecewiseConstantDecay` and `CosineDecay` through
`recipes.callbacks.make_schedule`; performance scheduling is Keras's `ReduceLROnPlateau`
callback (`recipes.callbacks.make_callbacks`).

Momentum cycling (the book's 0.95 -> 0.85 -> 0.95 alongside 1cycle) is deliberately left
out: in Keras 3.15, `SGD.momentum` is a Python float that the traced train step captures
as a constant, so changing it from a callback after the first step does not change the
updates (tests/test_schedules.py checks this), and a variable in its place would break
`get_config` and saving.

Example:

```python
schedule = OneCycle(total_steps=25 * 1719, max_lr=0.1)
model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule), loss="mse")
```

Reference: Géron, Hands-On ML (3rd ed.), chapter 11, "Learning Rate Scheduling".
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import keras
from keras import ops

__all__ = ["CYCLICAL_MODES", "ONECYCLE_SHAPES", "CyclicalLR", "OneCycle", "PowerSchedule"]

_Schedule = keras.optimizers.schedules.LearningRateSchedule
ONECYCLE_SHAPES = ("linear", "cosine")
CYCLICAL_MODES = ("triangular", "triangular2", "exp_range")


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}.")
    return float(value)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0 \
            or int(value) != value:
        raise ValueError(f"{name} must be an integer > 0, got {value!r}.")
    return int(value)


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
        self.lr0 = _positive("lr0", lr0)
        self.s = _positive("s", s)
        self.c = _positive("c", c)

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
        self.total_steps = _positive_int("total_steps", total_steps)
        if self.total_steps < self.MIN_STEPS:
            raise ValueError(f"total_steps must be >= {self.MIN_STEPS}, got {total_steps!r}.")
        self.max_lr = _positive("max_lr", max_lr)
        self.start_lr = _positive("start_lr", self.max_lr / 10 if start_lr is None else start_lr)
        self.last_lr = _positive(
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
        if not 0.0 <= last_fraction < 1.0:
            raise ValueError(f"last_fraction must be in [0, 1), got {last_fraction!r}.")
        self.last_fraction = float(last_fraction)
        if shape not in ONECYCLE_SHAPES:
            raise ValueError(f"Unknown shape {shape!r}. Valid: {', '.join(ONECYCLE_SHAPES)}.")
        self.shape = shape

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
        self.base_lr = _positive("base_lr", base_lr)
        self.max_lr = _positive("max_lr", max_lr)
        if not self.max_lr > self.base_lr:
            raise ValueError(
                f"max_lr must be > base_lr, got max_lr={self.max_lr!r}, "
                f"base_lr={self.base_lr!r}."
            )
        self.step_size = _positive("step_size", step_size)
        if mode not in CYCLICAL_MODES:
            raise ValueError(f"Unknown mode {mode!r}. Valid: {', '.join(CYCLICAL_MODES)}.")
        self.mode = mode
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma!r}.")
        self.gamma = float(gamma)

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

