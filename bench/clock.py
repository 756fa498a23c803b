"""A training clock that checks test accuracy every fraction of an epoch, off the clock.

`TestAccuracyClock` counts only training time: the time spent in its own test-set
checks and in Keras's per-epoch validation is measured and subtracted, so "seconds to
99.0%" is the training cost alone. `time_to(points, target)` reads the first crossing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from recipes.checks import check_at_least, check_fraction

__all__ = ["StopAfterSteps", "TestAccuracyClock", "time_to"]


class TestAccuracyClock(keras.callbacks.Callback):
    """Record `(step, epoch, seconds, test_accuracy)` `checks_per_epoch` times an epoch.

    The clock starts at `on_train_begin` (so graph tracing of the first step counts,
    for every model alike) and pauses during its own evaluations and during Keras's
    validation passes. A check also runs at the very end of training.

    Example:

    ```python
    clock = TestAccuracyClock(x_test, y_test, steps_per_epoch=len(x) // 32)
    model.fit(x, y, epochs=2, callbacks=[clock])
    clock.points[-1]["test_accuracy"], clock.train_seconds
    ```

    Args:
        x_test: test inputs.
        y_test: integer labels or one-hot rows.
        steps_per_epoch: optimizer steps in one epoch.
        checks_per_epoch: checks per epoch, at steps `round(k * steps_per_epoch /
            checks_per_epoch)`, so the last one of each epoch falls on its end.
            Defaults to `8`.
        batch_size: prediction batch size for the checks. Defaults to `1000`.
        on_check: optional function called with each new point (progress output).
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, x_test: Any, y_test: Any, steps_per_epoch: int,
                 checks_per_epoch: int = 8, batch_size: int = 1000,
                 on_check: Any = None) -> None:
        super().__init__()
        check_at_least("steps_per_epoch", steps_per_epoch, 1)
        check_at_least("checks_per_epoch", checks_per_epoch, 1)
        check_at_least("batch_size", batch_size, 1)
        self.x_test = x_test
        labels = np.asarray(y_test)
        self.labels = labels.argmax(axis=-1) if labels.ndim > 1 else labels.astype(int)
        self.steps_per_epoch = int(steps_per_epoch)
        self.checks_per_epoch = int(checks_per_epoch)
        self._marks = {max(1, round(k * self.steps_per_epoch / self.checks_per_epoch))
                       for k in range(1, self.checks_per_epoch + 1)}
        self.batch_size = int(batch_size)
        self.on_check = on_check
        self.points: list[dict[str, float]] = []
        self.paused_seconds = 0.0
        self.eval_seconds = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:  # noqa: D102
        self.points, self.paused_seconds, self.eval_seconds = [], 0.0, 0.0
        self._step = 0
        self._start = time.perf_counter()

    @property
    def train_seconds(self) -> float:
        """Seconds of training so far, evaluations excluded."""
        return time.perf_counter() - self._start - self.paused_seconds

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:  # noqa: D102
        self._step += 1
        if batch + 1 in self._marks:  # `batch` counts the steps within the epoch
            self.check()

    def on_test_begin(self, logs: dict | None = None) -> None:  # noqa: D102
        self._test_start = time.perf_counter()  # Keras's validation pass: off the clock

    def on_test_end(self, logs: dict | None = None) -> None:  # noqa: D102
        self.paused_seconds += time.perf_counter() - self._test_start

    def on_train_end(self, logs: dict | None = None) -> None:  # noqa: D102
        if not self.points or self.points[-1]["step"] != self._step:
            self.check()

    def check(self) -> dict[str, float]:
        """Measure test accuracy now, off the clock, and record the point.

        Returns:
            The new point.
        """
        now = self.train_seconds
        begin = time.perf_counter()
        # predict_on_batch, not predict: no tf.data iterator whose teardown could stall
        # later, on the clock (see recipes.data.pipeline)
        size = self.batch_size
        probs = np.concatenate([np.asarray(self.model.predict_on_batch(self.x_test[i:i + size]))
                                for i in range(0, len(self.x_test), size)])
        accuracy = float(np.mean(probs.argmax(axis=-1) == self.labels))
        point = {"step": self._step, "epoch": self._step / self.steps_per_epoch,
                 "seconds": now, "test_accuracy": accuracy}
        self.points.append(point)
        if self.on_check is not None:
            self.on_check(point)  # progress output: off the clock too
        spent = time.perf_counter() - begin
        self.paused_seconds += spent
        self.eval_seconds += spent
        return point


class StopAfterSteps(keras.callbacks.Callback):
    """Stop `fit` after a number of optimizer steps: a fractional number of epochs.

    Args:
        steps: optimizer steps to train, counted across epochs.

    Raises:
        ValueError: `steps < 1`.
    """

    def __init__(self, steps: int) -> None:
        super().__init__()
        check_at_least("steps", steps, 1)
        self.steps = int(steps)
        self.done = 0

    def on_train_begin(self, logs: dict | None = None) -> None:  # noqa: D102
        self.done = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:  # noqa: D102
        self.done += 1
        if self.done >= self.steps:
            self.model.stop_training = True


def time_to(points: Sequence[dict[str, float]], target: float) -> dict[str, float] | None:
    """The first point whose test accuracy reaches `target`, or `None`.

    Args:
        points: the clock's points, in order.
        target: an accuracy in (0, 1].

    Returns:
        That point (`seconds`, `epoch`, `test_accuracy`, `step`), or `None` if never.

    Raises:
        ValueError: a target outside (0, 1].
    """
    check_fraction("target", target, include_low=False, include_high=True)
    return next((p for p in points if p["test_accuracy"] >= target), None)
