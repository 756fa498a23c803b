"""Builder overhead: the same CNN built by hand in plain Keras and by `recipes.build_cnn`.

Both models have the same layers, parameters and dtype policy; their training steps per
second are measured alternately (A B, B A, ...) after a warm-up, so a slow moment of
the machine hits both. The ratio recipes/hand should be 1.00: the builder only
assembles standard Keras layers.

Run: ``python -m bench.overhead [--quick]`` (part of ``make bench``).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipes.checks import check_at_least
from recipes.cli import option, run_cli

if TYPE_CHECKING:
    import keras
    import numpy as np

__all__ = ["Config", "hand_built", "main", "measure_overhead", "run", "steps_per_second"]


@dataclass(frozen=True)
class Config:
    """The measurement's settings."""

    quick: bool = option(False, "2 rounds of 10 steps")
    rounds: int = option(6, "alternated rounds")
    steps: int = option(60, "steps per measurement")
    result: str | None = option(None, "write the measurements to this JSON file",
                                metavar="FILE")

    def __post_init__(self) -> None:
        check_at_least("rounds", self.rounds, 1)
        check_at_least("steps", self.steps, 1)


def hand_built(spec: Any) -> keras.Model:
    """The recipe's CNN written out in plain Keras, layer for layer.

    Supports the specs `bench.configs` uses: one conv per block, max pooling, either
    padding, BN before the activation from block `batch_norm_from` on, He init, dense
    layers with BN, no dropout.

    Args:
        spec: a `recipes.CNNSpec`.

    Returns:
        The uncompiled model.

    Raises:
        ValueError: a spec outside that subset.
    """
    if (spec.convs_per_block != 1 or spec.pooling != "max" or spec.dropout_rate
            or spec.batch_norm not in ("none", "before") or spec.input_norm != "none"
            or spec.augmentation or spec.global_pooling or spec.activation != "relu"):
        raise ValueError("hand_built supports one ReLU conv per block, max pooling, BN "
                         "'before' or none, no dropout/augmentation/input norm.")
    import keras

    layers = keras.layers
    bn = spec.batch_norm == "before"
    inputs = keras.Input(shape=(28, 28, 1))
    x = inputs
    for b, filters in enumerate(spec.filters):
        use_bn = bn and b >= spec.batch_norm_from
        x = layers.Conv2D(filters, spec.kernel_size, padding=spec.padding, use_bias=not use_bn,
                          kernel_initializer="he_normal")(x)
        if use_bn:
            x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    for units in spec.dense_units:
        x = layers.Dense(units, use_bias=not bn, kernel_initializer="he_normal")(x)
        if bn:
            x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="hand_built")


def steps_per_second(model: keras.Model, x: np.ndarray, y: np.ndarray,
                     batch_size: int) -> float:
    """Train one pass over `x` and return optimizer steps per second.

    Args:
        model: a compiled model (already traced by a warm-up pass).
        x: inputs, a whole number of batches.
        y: labels.
        batch_size: the batch size.

    Returns:
        Steps per second of that pass.
    """
    from recipes import make_dataset

    data = make_dataset(x, y, batch_size, shuffle=False)  # no epoch-start stalls
    begin = time.perf_counter()
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    return (len(x) // batch_size) / (time.perf_counter() - begin)


def measure_overhead(rounds: int = 6, steps: int = 60, batch_size: int = 128,
                     config_name: str = "recipe_fast") -> dict[str, Any]:
    """Steps per second of the hand-built and the recipe-built model, alternated.

    Args:
        rounds: measured rounds (each times both models once, order alternating).
        steps: training steps per measurement.
        batch_size: the batch size.
        config_name: the `bench.configs` entry whose spec and precision are used.

    Returns:
        `{"hand_steps_per_second": [...], "recipe_steps_per_second": [...], "ratio",
        "params", "precision"}`; ratio is median recipe / median hand.
    """
    import keras
    import numpy as np

    from bench.configs import CONFIGS
    from recipes import build_cnn, make_loss, make_optimizer
    from recipes.hardware import choose_precision

    config = CONFIGS[config_name]
    policy, reason = choose_precision(config.precision)
    keras.mixed_precision.set_global_policy(policy)
    rng = np.random.default_rng(0)
    x = rng.random((steps * batch_size, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, size=steps * batch_size)
    models = {}
    for name, build in (("hand", lambda: hand_built(config.spec)),
                        ("recipe", lambda: build_cnn(config.spec, (28, 28, 1), 10))):
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(optimizer=make_optimizer("nesterov", 0.01),
                      loss=make_loss("crossentropy"))
        steps_per_second(model, x, y, batch_size)  # warm-up: tracing
        models[name] = model
    params = {k: int(m.count_params()) for k, m in models.items()}
    if params["hand"] != params["recipe"]:
        raise RuntimeError(f"The two models differ: parameters {params}.")
    speeds: dict[str, list[float]] = {"hand": [], "recipe": []}
    for r in range(rounds):
        for name in (("hand", "recipe") if r % 2 == 0 else ("recipe", "hand")):
            speeds[name].append(steps_per_second(models[name], x, y, batch_size))
    ratio = statistics.median(speeds["recipe"]) / statistics.median(speeds["hand"])
    print(f"builder overhead: hand {statistics.median(speeds['hand']):.1f} steps/s, recipes "
          f"{statistics.median(speeds['recipe']):.1f} steps/s, ratio {ratio:.3f} "
          f"({rounds} alternated rounds of {steps} steps, {policy})", flush=True)
    return {"hand_steps_per_second": speeds["hand"],
            "recipe_steps_per_second": speeds["recipe"], "ratio": ratio,
            "params": params["recipe"], "precision": policy, "precision_reason": reason,
            "rounds": rounds, "steps": steps, "batch_size": batch_size}


def run(config: Config) -> dict[str, Any]:
    """Measure the overhead (and write ``config.result`` when given).

    Args:
        config: the settings; ``quick`` means 2 rounds of 10 steps.

    Returns:
        `measure_overhead`'s measurements.
    """
    rounds, steps = (2, 10) if config.quick else (config.rounds, config.steps)
    result = measure_overhead(rounds=rounds, steps=steps)
    if config.result:
        Path(config.result).write_text(json.dumps(result))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI.

    Args:
        argv: arguments. Defaults to `sys.argv[1:]`.

    Returns:
        The exit code.
    """
    return run_cli(Config, run, argv, prog="python -m bench.overhead", description=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
