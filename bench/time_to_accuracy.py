"""Time to 99.0% (and 99.3%) MNIST test accuracy: the chapter's recipes vs the keras.io convnet.

Hands-On ML, chapter 11 promises that He init, batch norm, better optimizers and 1cycle
make training converge much faster. This benchmark measures it on the full MNIST: each
configuration of `bench.configs` runs in its own process (so no TensorFlow state or
dtype policy leaks between them), over several seeds, checking test accuracy every
1/8 epoch with the evaluation time off the clock. Then `bench.overhead` checks that the
`recipes` builders cost nothing at run time. Results: `results.json`, `report.md` and
`time_to_accuracy.png` in the output folder, the headline ratio printed last.

Run: ``python -m bench.time_to_accuracy [--quick] [--configs keras_io recipe_fast]``
(``make bench``); the settings go to ``config.json`` beside the results.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.configs import CONFIGS
from recipes.checks import check_at_least, check_choice
from recipes.cli import option, run_cli
from recipes.hardware import PRECISIONS, choose_precision, clear_session

__all__ = ["QUICK", "TARGETS", "Config", "load_data", "main", "parse_seeds", "run",
           "run_benchmark", "run_config"]

TARGETS = (0.990, 0.993)
QUICK = {"train": 3000, "test": 1000, "epochs": 1}
VALIDATION_FRACTION = 0.1  # keras.io's validation_split=0.1: the last 6,000 images
PROG = "python -m bench.time_to_accuracy"


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)``.

    Args:
        text: comma-separated integers.

    Returns:
        The seeds.

    Raises:
        ValueError: not integers, or none.
    """
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"seeds must be like 0,1,2, got {text!r}") from None
    if not seeds:
        raise ValueError("give at least one seed")
    return seeds


@dataclass(frozen=True)
class Config:
    """The benchmark's settings (``--worker`` runs one configuration, for the benchmark)."""

    configs: tuple[str, ...] = option(tuple(CONFIGS), "configurations to run, in order",
                                      tuple(CONFIGS), default_text="all")
    seeds: tuple[int, ...] | None = option(None, "comma-separated seeds", parse=parse_seeds,
                                           metavar="SEEDS", default_text="0,1,2; 0 with --quick")
    quick: bool = option(False, f"smoke test: {QUICK['train']} training images, one epoch")
    precision: str | None = option(None, "override the recipes' precision", PRECISIONS,
                                   default_text="each configuration's own")
    out_dir: str = option("bench", "output folder")
    worker: str | None = option(None, "run this configuration here and write --result",
                                tuple(CONFIGS), hidden=True)
    result: str | None = option(None, "the worker's JSON output", hidden=True)

    def __post_init__(self) -> None:
        if not self.configs:
            raise ValueError("configs must name at least one configuration.")
        for name in (*self.configs, *([self.worker] if self.worker else [])):
            check_choice("configuration", name, CONFIGS)
        if self.seeds is not None:
            if not self.seeds:
                raise ValueError("give at least one seed")
            for seed in self.seeds:
                check_at_least("seeds", seed, 0)
        if self.precision is not None:
            check_choice("precision", self.precision, PRECISIONS)
        if (self.worker is None) != (self.result is None):
            raise ValueError("--worker and --result go together (the benchmark sets both).")

    @property
    def seed_list(self) -> tuple[int, ...]:
        """The seeds: the given ones, or 0, 1, 2 (0 with ``quick``)."""
        return self.seeds or ((0,) if self.quick else (0, 1, 2))


def load_data(quick: bool = False) -> dict[str, np.ndarray]:
    """MNIST as keras.io prepares it: floats in [0, 1], shape (28, 28, 1), 10% validation.

    Args:
        quick: a small slice (`QUICK`) for smoke tests.

    Returns:
        `x_train, y_train, x_val, y_val, x_test, y_test` (integer labels).
    """
    from recipes.data import load_mnist

    (x_train, y_train), (x_test, y_test) = load_mnist(log=lambda msg: print(msg, flush=True))
    if quick:
        x_train, y_train = x_train[: QUICK["train"]], y_train[: QUICK["train"]]
        x_test, y_test = x_test[: QUICK["test"]], y_test[: QUICK["test"]]
    split = int(math.ceil(len(x_train) * (1.0 - VALIDATION_FRACTION)))

    def prep(x: np.ndarray) -> np.ndarray:
        return (x.astype("float32") / 255.0)[..., None]

    return {"x_train": prep(x_train[:split]), "y_train": y_train[:split].astype("int64"),
            "x_val": prep(x_train[split:]), "y_val": y_train[split:].astype("int64"),
            "x_test": prep(x_test), "y_test": y_test.astype("int64")}


def _progress(log: Callable[[str], None], prefix: str) -> Callable[[dict], None]:
    crossed: set[float] = set()

    def on_check(point: dict) -> None:
        for target in TARGETS:
            if target not in crossed and point["test_accuracy"] >= target:
                crossed.add(target)
                log(f"{prefix} reached {target:.1%} at epoch {point['epoch']:.3f}, "
                    f"{point['seconds']:.1f} s of training")
        if abs(point["epoch"] - round(point["epoch"])) < 1e-9:
            log(f"{prefix} epoch {point['epoch']:.0f}: {point['seconds']:6.1f} s of training, "
                f"test accuracy {point['test_accuracy']:.4f}")

    return on_check


def run_seed(config: Any, data: dict, seed: int, epochs: float,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train one configuration from one seed and return its measurements.

    Args:
        config: a `bench.configs.BenchConfig`.
        data: `load_data()` output.
        seed: the random seed.
        epochs: epochs to train (the config's, or fewer in quick mode); a fraction
            stops within the last epoch.
        log: progress output.

    Returns:
        The seed's record: the clock's points, time to each target (or `None`), images
        per second of training, final test accuracy, validation accuracy per epoch, and
        the compute dtype the first weighted layer really used.
    """
    import keras

    from bench.clock import StopAfterSteps, TestAccuracyClock, time_to
    from bench.models import build_and_compile

    clear_session()  # Keras's alone would reset the dtype policy to float32
    keras.utils.set_random_seed(seed)
    n = len(data["x_train"])
    steps = int(math.ceil(n / config.batch_size))
    begin = time.perf_counter()
    model = build_and_compile(config if epochs == config.epochs else
                              _with_epochs(config, epochs), steps)
    build_seconds = time.perf_counter() - begin
    one_hot = config.model == "keras_io"  # as published: categorical crossentropy

    def labels(y: np.ndarray) -> np.ndarray:
        return keras.utils.to_categorical(y, 10) if one_hot else y

    fit_epochs = math.ceil(epochs)
    callbacks = [StopAfterSteps(round(epochs * steps))] if fit_epochs != epochs else []
    clock = TestAccuracyClock(data["x_test"], data["y_test"], steps_per_epoch=steps,
                              on_check=_progress(log, f"  {config.name} seed {seed}:"))
    if config.input == "numpy":  # as keras.io publishes it
        history = model.fit(data["x_train"], labels(data["y_train"]),
                            batch_size=config.batch_size, epochs=fit_epochs,
                            validation_data=(data["x_val"], labels(data["y_val"])),
                            callbacks=[clock, *callbacks], verbose=0)
    else:
        from recipes import make_dataset

        train = make_dataset(data["x_train"], labels(data["y_train"]), config.batch_size,
                             seed=seed)
        val = make_dataset(data["x_val"], labels(data["y_val"]), 1000, shuffle=False)
        history = model.fit(train, epochs=fit_epochs, validation_data=val, shuffle=False,
                            callbacks=[clock, *callbacks], verbose=0)  # it shuffles itself
    train_seconds = clock.points[-1]["seconds"]
    return {
        "seed": seed,
        "epochs": epochs,
        "steps_per_epoch": steps,
        "params": int(model.count_params()),
        "compute_dtype": next(layer for layer in model.layers if layer.weights).compute_dtype,
        "build_seconds": build_seconds,
        "train_seconds": train_seconds,
        "eval_seconds": clock.eval_seconds,
        "images_per_second": clock.points[-1]["step"] * config.batch_size / train_seconds,
        "final_test_accuracy": clock.points[-1]["test_accuracy"],
        "val_accuracy": [float(v) for v in history.history.get("val_accuracy", [])],
        "time_to": {f"{t:.3f}": time_to(clock.points, t) for t in TARGETS},
        "points": clock.points,
    }


def _with_epochs(config: Any, epochs: int) -> Any:
    import dataclasses

    return dataclasses.replace(config, epochs=epochs)


def run_config(name: str, seeds: Sequence[int], quick: bool = False,
               precision: str | None = None, log: Callable[[str], None] = print
               ) -> dict[str, Any]:
    """Run one configuration over `seeds` in this process.

    Args:
        name: a key of `bench.configs.CONFIGS`.
        seeds: the seeds.
        quick: a small data slice and one epoch.
        precision: override the config's precision (`PRECISIONS`).
        log: progress output.

    Returns:
        `{"name", "title", "precision", "precision_reason", "seeds": [...]}`.

    Raises:
        ValueError: an unknown configuration or precision.
    """
    import keras

    config = CONFIGS[check_choice("configuration", name, CONFIGS)]
    policy, reason = choose_precision(precision or config.precision)
    data = load_data(quick)
    epochs = min(config.epochs, QUICK["epochs"]) if quick else config.epochs
    log(f"{name}: {config.title}; {policy} ({reason}); {len(data['x_train'])} training "
        f"images, {epochs} epoch(s), seeds {list(seeds)}")
    previous = keras.config.dtype_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        records = [run_seed(config, data, s, epochs, log) for s in seeds]
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return {"name": name, "title": config.title, "precision": policy, "input": config.input,
            "precision_reason": reason, "epochs": epochs, "batch_size": config.batch_size,
            "seeds": records}


def _subprocess(args: list[str], log: Callable[[str], None]) -> tuple[dict, float]:
    """Run ``python -m <args>`` writing JSON to a temp file; return it and the wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        begin = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", *args, "--result", str(out)], env=env)
        wall = time.perf_counter() - begin
        if proc.returncode != 0:
            raise RuntimeError(f"`python -m {' '.join(args)}` failed with exit code "
                               f"{proc.returncode}; its output is above.")
        return json.loads(out.read_text()), wall


def run_benchmark(names: Sequence[str], seeds: Sequence[int], out_dir: str | os.PathLike,
                  quick: bool = False, precision: str | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run each configuration in its own process, then the builder-overhead check.

    Args:
        names: configuration names, run in this order.
        seeds: seeds for every configuration.
        out_dir: where `results.json`, `report.md` and the plot go.
        quick: the smoke-test mode.
        precision: override every recipe's precision.
        log: progress output.

    Returns:
        The results dict written to `results.json`.
    """
    from bench.report import speedups, summarize, write_outputs
    from bench.timings import machine_key

    seed_arg = ",".join(str(s) for s in seeds)
    configs = []
    for k, name in enumerate(names, 1):
        log(f"[{k}/{len(names) + 1}] {name}: one process, seeds {seed_arg}")
        args = ["bench.time_to_accuracy", "--worker", name, "--seeds", seed_arg]
        args += ["--quick"] * quick + (["--precision", precision] if precision else [])
        record, wall = _subprocess(args, log)
        record["process_seconds"] = wall
        configs.append(record)
    log(f"[{len(names) + 1}/{len(names) + 1}] builder overhead: hand-built Keras vs "
        "recipes.build_cnn, alternated")
    overhead, wall = _subprocess(["bench.overhead"] + ["--quick"] * quick, log)
    overhead["process_seconds"] = wall
    summary = summarize(configs)
    results = {**speedups(summary, TARGETS[0]), "machine": machine_key()[1], "quick": quick,
               "targets": list(TARGETS), "configs": configs, "summary": summary,
               "overhead": overhead}
    write_outputs(results, Path(out_dir))
    return results


def _log(msg: str) -> None:
    print(msg, flush=True)


def run(config: Config) -> dict[str, Any]:
    """Run the benchmark the config describes (or, with ``worker``, one configuration).

    Args:
        config: the settings.

    Returns:
        The results written to ``results.json`` (a worker: its configuration's record,
        written to ``config.result``).
    """
    from bench.report import headline
    from recipes.runs import write_json

    seeds = config.seed_list
    if config.worker:
        record = run_config(config.worker, seeds, config.quick, config.precision, _log)
        Path(config.result).write_text(json.dumps(record))
        return record
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", dataclasses.replace(config, seeds=seeds))
    results = run_benchmark(config.configs, seeds, out, config.quick, config.precision, _log)
    _log(f"results: {out / 'results.json'}, report: {out / 'report.md'}")
    _log(headline(results))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI: run the benchmark (or, with ``--worker``, one configuration).

    Args:
        argv: arguments. Defaults to `sys.argv[1:]`.

    Returns:
        The exit code.
    """
    return run_cli(Config, run, argv, prog=PROG, description=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
