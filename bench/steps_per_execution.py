"""Steps per call of Keras's train function: one vs `recipes.callbacks.FAST_STEPS_PER_EXECUTION`.

The chapter experiments compile with ``steps_per_execution=64`` (unless a callback acts on
every step). This measures what that buys on this machine for the chapter's MLPs (100
units per hidden layer, batch 32, SGD, MNIST): for each depth, the same seeded model
trains one warm-up call and then one timed epoch with 1 step per call and with 64, in
alternating order (two rounds, the median kept), and the weights after the epoch are
compared bit for bit.

Results: ``steps_per_execution.json`` in ``--out-dir`` (git-ignored) and the table
printed, with the CPU. Run: ``python -m bench.steps_per_execution`` (about 2 minutes on 2
cores), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench import write_files
from recipes.cli import option, run_cli

__all__ = ["Config", "main", "run"]


@dataclass(frozen=True)
class Config:
    """The benchmark's settings."""

    depths: tuple[int, ...] = option((3, 10, 30, 100), "hidden layers of the MLPs timed")
    images: int = option(20_000, "MNIST training images in the timed epoch")
    quick: bool = option(False, "one shallow MLP on 512 images (a smoke run)")
    out_dir: str = option("bench", "where steps_per_execution.json goes")

    def __post_init__(self) -> None:
        from recipes.checks import check_at_least, check_sizes

        check_sizes("depths", self.depths)
        check_at_least("images", self.images, 64)


def _epoch(depth: int, steps: int, x: Any, y: Any) -> tuple[float, list]:
    """Seconds of one epoch after a warm-up call, and the weights after it."""
    import keras

    from recipes.builders import build_mlp
    from recipes.data import make_dataset
    from recipes.specs import MLPSpec

    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)
    model = build_mlp(MLPSpec(hidden_units=(100,) * depth), (28, 28), 10)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy",
                  steps_per_execution=steps)
    model.fit(make_dataset(x[:64 * 32], y[:64 * 32], 32, seed=1), epochs=1, verbose=0,
              shuffle=False)  # the datasets shuffle themselves
    train = make_dataset(x, y, 32, seed=0)
    start = time.perf_counter()
    model.fit(train, epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - start, model.get_weights()


def run(config: Config) -> dict[str, Any]:
    """Time one epoch per depth at 1 and at 64 steps per call; write and print the table.

    Args:
        config: the settings.

    Returns:
        ``{"machine": ..., "rows": [{"depth", "seconds_1", "seconds_fast", "speedup",
        "same_weights"}, ...]}``.
    """
    import numpy as np

    from recipes.callbacks import FAST_STEPS_PER_EXECUTION
    from recipes.data import load_mnist
    from recipes.hardware import machine_info

    depths, images = ((2,), 512) if config.quick else (config.depths, config.images)
    (x, y), _ = load_mnist()
    x, y = x[:images].astype("float32") / 255.0, y[:images].astype("int64")
    rows = []
    for depth in depths:
        times: dict[int, list[float]] = {1: [], FAST_STEPS_PER_EXECUTION: []}
        weights: dict[int, list] = {}
        for order in ((1, FAST_STEPS_PER_EXECUTION), (FAST_STEPS_PER_EXECUTION, 1)):
            for steps in order:
                seconds, weights[steps] = _epoch(depth, steps, x, y)
                times[steps].append(seconds)
        slow = statistics.median(times[1])
        fast = statistics.median(times[FAST_STEPS_PER_EXECUTION])
        same = all(np.array_equal(a, b) for a, b in
                   zip(weights[1], weights[FAST_STEPS_PER_EXECUTION]))
        # Seconds kept to 0.1 ms: a quick run's epoch lasts a few hundredths of a second,
        # and the speedup must be the ratio a reader recomputes from the saved seconds.
        slow, fast = round(slow, 4), round(fast, 4)
        rows.append({"depth": depth, "seconds_1": slow, "seconds_fast": fast,
                     "speedup": round(slow / fast, 2), "same_weights": same})
        print(f"{depth:>4} hidden layers: {slow:6.2f} s at 1 step per call, {fast:6.2f} s at "
              f"{FAST_STEPS_PER_EXECUTION} ({slow / fast:.2f}x); same weights: {same}",
              flush=True)
    machine = machine_info()
    result = {"images": images, "batch_size": 32, "fast_steps": FAST_STEPS_PER_EXECUTION,
              "rows": rows, "machine": machine}
    out = write_files(config.out_dir, {"steps_per_execution.json": result})
    print(f"{machine.get('cpu')}, {machine.get('cores')} cores; "
          f"wrote {out / 'steps_per_execution.json'}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m bench.steps_per_execution [--quick] [--depths 3 10] [--images N]``.

    Args:
        argv: the arguments. Defaults to `None` (``sys.argv[1:]``).

    Returns:
        The exit code: 0, or 2 for a bad option.
    """
    return run_cli(Config, run, argv, prog="python -m bench.steps_per_execution",
                   description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
