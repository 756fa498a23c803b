"""The fish photos' input speed: decoding once, the cache, the first step, each augmentation.

Hands-On ML, chapter 13's advice (preprocess once, cache, prefetch) measured on the course's
fish photos, for `ch11.fish`:

1. **First run vs cached run**: a fresh process loads every split (decoding the JPEGs into
   an empty photo cache, then, in a second process, reading that cache back), builds the
   recipe's CNN and takes its first training step; each phase is timed from the process's
   start, so the "time to the first training step" includes Python's and TensorFlow's
   start-up.
2. **The cost of each augmentation**: the recipe's CNN trains a fixed number of steps with
   no augmentation, with each augmentation layer alone, and with the recipe's own set;
   photos per second, two rounds in alternating order, the median kept. Every figure comes
   from one run on one machine, whose CPU and flags are recorded.

Results: ``fish_input.json`` and ``fish_input.md`` in ``--out-dir`` (git-ignored), the
table printed. Run: ``python -m bench.fish_input`` (``make bench-fish``), ``--quick`` for a
smoke run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import write_files
from ch11._fish_config import DEFAULT_TRAIN_DIR, DEFAULT_VAL_DIR
from recipes.checks import check_at_least
from recipes.cli import option, run_cli
from recipes.hardware import PRECISIONS

__all__ = ["Config", "first_step", "main", "run"]

_STARTED = time.perf_counter()  # the worker's clock starts when this module is imported
AUGMENTATIONS = ("none", "flip", "rotation", "zoom", "contrast", "translation", "recipe")
PROG = "python -m bench.fish_input"


@dataclass(frozen=True)
class Config:
    """The benchmark's settings."""

    train_dir: str = option(DEFAULT_TRAIN_DIR, "training photos (one subfolder per class)")
    val_dir: str = option(DEFAULT_VAL_DIR, "validation photos")
    image_size: int = option(96, "photos are resized to this square (ch11.fish's default)")
    batch_size: int = option(64, "photos per training step")
    steps: int = option(40, "training steps timed per augmentation and round")
    augmentations: tuple[str, ...] = option(AUGMENTATIONS, "what to time ('none': no "
                                                           "augmentation; 'recipe': ch11.fish's "
                                                           "set)", AUGMENTATIONS)
    precision: str = option("auto", "dtype policy", PRECISIONS)
    quick: bool = option(False, "32x32 photos, 5 steps (tests)")
    out_dir: str = option("bench", "output folder")
    worker_cache: str | None = option(None, "run the first-step worker with this photo cache",
                                      hidden=True)

    def __post_init__(self) -> None:
        check_at_least("image_size", self.image_size, 8)
        check_at_least("batch_size", self.batch_size, 1)
        check_at_least("steps", self.steps, 1)


def _model(size: int, augmentation: tuple[str, ...] | None, quick: bool) -> Any:
    import dataclasses

    from ch11._fish import recipe_spec
    from recipes.builders import build_cnn
    from recipes.optimizers import make_optimizer

    spec = recipe_spec(quick=quick)
    if augmentation is not None:
        spec = dataclasses.replace(spec, augmentation=augmentation)
    model = build_cnn(spec, (size, size, 3), 11)
    model.compile(optimizer=make_optimizer("adamw", learning_rate=1e-3),
                  loss="sparse_categorical_crossentropy")
    return model


def first_step(config: Config) -> dict[str, float]:
    """In this process: load the splits, build the CNN, take one step; seconds since start.

    Args:
        config: the settings (``worker_cache`` is the photo cache folder).

    Returns:
        ``tensorflow_s``, ``loaded_s``, ``built_s``, ``first_step_s`` (each since the start
        of the process's import of this module), ``decoded_per_s`` and ``from_cache``.
    """
    from recipes._startup import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    from recipes.data.fish import load_fish_splits
    from recipes.data.pipeline import make_dataset
    from recipes.hardware import choose_precision

    out: dict[str, float] = {"tensorflow_s": time.perf_counter() - _STARTED}
    keras.mixed_precision.set_global_policy(choose_precision(config.precision)[0])
    data = load_fish_splits(config.train_dir, config.val_dir, image_size=config.image_size,
                            test_split=0.0, cache_dir=config.worker_cache)
    out["loaded_s"] = time.perf_counter() - _STARTED
    out["load_s"] = data.load_seconds
    out["decoded_per_s"] = data.decoded_per_s
    out["from_cache"] = data.from_cache
    out["photos"] = int(sum(len(y) for y in data.y.values()))
    model = _model(config.image_size, None, config.quick)
    out["built_s"] = time.perf_counter() - _STARTED
    batch = next(iter(make_dataset(data.x["train"], data.y["train"], config.batch_size,
                                   seed=0)))
    model.train_on_batch(*batch)
    out["first_step_s"] = time.perf_counter() - _STARTED
    return out


def _worker(config: Config, cache: Path) -> dict[str, float]:
    """`first_step` in a fresh process (so TensorFlow's start-up is counted)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    argv = [sys.executable, "-m", "bench.fish_input", "--worker-cache", str(cache),
            "--train-dir", config.train_dir, "--val-dir", config.val_dir,
            "--image-size", str(config.image_size), "--precision", config.precision,
            "--out-dir", config.out_dir] + (["--quick"] if config.quick else [])
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"The first-step worker failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _photos_per_s(model: Any, dataset: Any, steps: int) -> float:
    it = iter(dataset.repeat())
    for _ in range(3):  # warm-up: tracing and the first batches
        model.train_on_batch(*next(it))
    started = time.perf_counter()
    n = 0
    for _ in range(steps):
        x, y = next(it)
        model.train_on_batch(x, y)
        n += len(y)
    return n / (time.perf_counter() - started)


def run(config: Config) -> dict[str, Any]:
    """Measure, write ``fish_input.json`` and ``fish_input.md``, print the tables.

    Args:
        config: the settings.

    Returns:
        The results (also written as JSON).
    """
    if config.worker_cache:
        print(json.dumps(first_step(config)))
        return {}
    from recipes.checks import InputError

    for folder in (config.train_dir, config.val_dir):
        if not Path(folder).is_dir():
            raise InputError(f"Photo folder '{folder}' does not exist: give --train-dir and "
                             "--val-dir.")
    if config.quick:
        import dataclasses

        config = dataclasses.replace(config, image_size=min(config.image_size, 32), steps=5)
    from recipes.hardware import machine_info

    with tempfile.TemporaryDirectory(prefix="fish-cache-") as cache:
        print("first run (empty photo cache) ...", flush=True)
        first = _worker(config, Path(cache))
        print("second run (the cache written by the first) ...", flush=True)
        cached = _worker(config, Path(cache))
    import keras

    from recipes.data.fish import load_fish_splits
    from recipes.data.pipeline import make_dataset
    from recipes.hardware import choose_precision, clear_session

    policy = choose_precision(config.precision)[0]
    keras.mixed_precision.set_global_policy(policy)
    data = load_fish_splits(config.train_dir, config.val_dir, image_size=config.image_size,
                            test_split=0.0)
    dataset = make_dataset(data.x["train"], data.y["train"], config.batch_size, seed=0)
    speeds: dict[str, list[float]] = {a: [] for a in config.augmentations}
    for round_ in range(2):
        order = config.augmentations if round_ == 0 else config.augmentations[::-1]
        for aug in order:
            clear_session()  # keeps the dtype policy (recipes.hardware)
            augmentation = None if aug == "recipe" else (() if aug == "none" else (aug,))
            speed = _photos_per_s(_model(config.image_size, augmentation, config.quick),
                                  dataset, config.steps)
            speeds[aug].append(speed)
            print(f"  round {round_ + 1}: {aug:<12s} {speed:8.1f} photos/s", flush=True)
    base = statistics.median(speeds["none"]) if "none" in speeds else float("nan")
    augment = {a: {"photos_per_s": statistics.median(v), "rounds": v,
                   "relative_to_none": statistics.median(v) / base} for a, v in speeds.items()}
    results = {"machine": machine_info(), "policy": policy, "image_size": config.image_size,
               "batch_size": config.batch_size, "steps": config.steps,
               "first_run": first, "cached_run": cached, "augmentation": augment}
    text = _markdown(results)
    write_files(config.out_dir, {"fish_input.json": results, "fish_input.md": text})
    print("\n" + text)
    return results


def _markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"# Fish photos: input speed ({r['image_size']}x{r['image_size']}, batch "
             f"{r['batch_size']}, {r['policy']})", "",
             f"CPU: {m['cpu']}, {m['cores']} cores, bf16 flags: "
             f"{', '.join(m['bf16_flags']) or 'none'}.", "",
             "| run | photos | decoded photos/s | load s | TensorFlow ready s | data ready s | "
             "first training step s |", "|---|---|---|---|---|---|---|"]
    for name in ("first_run", "cached_run"):
        f = r[name]
        decoded = "cache" if f["from_cache"] else f"{f['decoded_per_s']:,.0f}"
        lines.append(f"| {name.replace('_', ' ')} | {f['photos']:,} | {decoded} | "
                     f"{f['load_s']:.2f} | {f['tensorflow_s']:.1f} | {f['loaded_s']:.1f} | "
                     f"{f['first_step_s']:.1f} |")
    lines += ["", "Seconds since the process started (Python and TensorFlow start-up included).",
              "", "| augmentation | photos/s (median of 2 rounds) | x no augmentation |",
              "|---|---|---|"]
    for aug, a in r["augmentation"].items():
        lines.append(f"| {aug} | {a['photos_per_s']:,.0f} | {a['relative_to_none']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m bench.fish_input [options]``; returns the exit code."""
    return run_cli(Config, run, argv, prog=PROG, description=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
