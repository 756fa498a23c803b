"""float32 vs mixed_bfloat16 for the MNIST experiments' models, and for whole experiments.

Which of the chapter's MNIST models train faster in ``mixed_bfloat16`` on this CPU? For
each family of model the experiments train (the deep 100-unit MLPs, the book's 300-100
MLP, the small CNNs of `make recipe-cnn`, `make recipe-bn` and `make recipe-schedules`),
the same seeded model trains one warm-up epoch and one timed epoch of MNIST in each
policy, through `recipes.make_dataset`, 64 steps per call and one TensorFlow thread (as
the experiments do), in alternating order over two rounds (the median kept); the policy
the model was really built with is read back from its first layer with weights. With
``--recipes cnn schedules bn`` it also runs those experiments whole, each in a fresh
process, ``--precision float32`` then their default (``auto``), one after the other in
this sitting (their run folders in ``--runs-dir``, the default's last), and records their
wall time and headline.

Results: ``precision.json`` and ``precision.md`` in ``--out-dir``, and the table printed
with the CPU. Run: ``python -m bench.precision`` (about 2 minutes on 2 cores; with
``--recipes cnn schedules bn`` about 35 minutes more), ``--quick`` for a smoke run.

Reference: Géron, Hands-On ML (3rd ed.), ch. 11 (training speed) and ch. 19 (mixed
precision); the Keras mixed-precision guide.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import write_files
from ch11._config import MNIST_INTRA_OP_THREADS
from recipes.cli import option, run_cli

__all__ = ["FAMILIES", "RECIPES", "Config", "main", "run"]

POLICIES = ("float32", "mixed_bfloat16")
# family -> (what the MNIST experiments use it for, spec kind, spec arguments, batch size)
FAMILIES: dict[str, tuple[str, str, dict[str, Any], int]] = {
    "mlp_20x100": ("init, activations, bn, clipping (deep MLP, batch 32)", "mlp",
                   {"hidden_units": (100,) * 20}, 32),
    "mlp_20x100_bn": ("bn (BN before each activation, batch 32)", "mlp",
                      {"hidden_units": (100,) * 20, "batch_norm": "before"}, 32),
    "mlp_300_100": ("losses, imbalance, gd (the book's MLP, batch 32)", "mlp",
                    {"hidden_units": (300, 100)}, 32),
    "mlp_3x100_b128": ("schedules' MLP (batch 128)", "mlp", {"hidden_units": (100,) * 3}, 128),
    "cnn_16_32": ("recipe-cnn (16-32 filters, dense 64, batch 64)", "cnn",
                  {"filters": (16, 32), "dense_units": (64,)}, 64),
    "cnn_32_64": ("recipe-bn's CNN (32-64 filters, dense 128, batch 32)", "cnn",
                  {"filters": (32, 64), "dense_units": (128,)}, 32),
    "cnn_32_64_bn_b128": ("recipe-schedules' CNN (BN, batch 128)", "cnn",
                          {"filters": (32, 64), "dense_units": (128,), "batch_norm": "before",
                           "batch_norm_from": 1}, 128),
}
# make target -> the ch11 module it runs
RECIPES = {"cnn": "cnn_hparams", "schedules": "schedules", "bn": "batch_norm"}


@dataclass(frozen=True)
class Config:
    """The benchmark's settings."""

    images: int = option(20_000, "MNIST training images in each timed epoch")
    recipes: tuple[str, ...] = option((), "experiments also run whole in both precisions "
                                          "(make targets)", tuple(RECIPES))
    quick: bool = option(False, "two families on 512 images; recipes with --quick (a smoke "
                                "run)")
    runs_dir: str = option("runs", "the whole experiments' run folders (their --out-dir)")
    out_dir: str = option("bench", "where precision.json and precision.md go")

    def __post_init__(self) -> None:
        from recipes.checks import check_at_least

        check_at_least("images", self.images, 256)


def _epoch(family: str, policy: str, x: Any, y: Any) -> tuple[float, str]:
    """Seconds of one epoch after a warm-up epoch, and the policy the model was built with."""
    import keras

    from recipes.builders import build_cnn, build_mlp
    from recipes.data import make_dataset
    from recipes.hardware import clear_session, model_policy
    from recipes.specs import CNNSpec, MLPSpec

    _, kind, kwargs, batch = FAMILIES[family]
    clear_session(policy)
    keras.utils.set_random_seed(0)
    if kind == "mlp":
        model = build_mlp(MLPSpec(**kwargs), (28, 28), 10)
    else:
        model = build_cnn(CNNSpec(**kwargs), (28, 28, 1), 10)
    built = model_policy(model)
    keras.config.set_dtype_policy("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy",
                  steps_per_execution=64)
    train = make_dataset(x, y, batch, seed=0)
    model.fit(train, epochs=1, verbose=0, shuffle=False)  # warm-up: tracing, first allocation
    start = time.perf_counter()
    model.fit(train, epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - start, built


def _families(names: Sequence[str], images: int) -> list[dict[str, Any]]:
    from recipes.data import load_mnist

    (x, y), _ = load_mnist()
    x, y = x[:images].astype("float32") / 255.0, y[:images].astype("int64")
    rows = []
    for family in names:
        times: dict[str, list[float]] = {p: [] for p in POLICIES}
        built: dict[str, str] = {}
        for order in (POLICIES, POLICIES[::-1]):
            for policy in order:
                seconds, built[policy] = _epoch(family, policy, x, y)
                times[policy].append(seconds)
        f32, bf16 = (round(statistics.median(times[p]), 4) for p in POLICIES)
        rows.append({"family": family, "used_by": FAMILIES[family][0],
                     "batch_size": FAMILIES[family][3], "seconds_float32": f32,
                     "seconds_bf16": bf16, "speedup": round(f32 / bf16, 2),
                     "built_float32": built["float32"], "built_bf16": built["mixed_bfloat16"]})
        print(f"{family:>18}: float32 {f32:6.2f} s, mixed_bfloat16 {bf16:6.2f} s per epoch of "
              f"{images:,} -> {f32 / bf16:.2f}x  (built as {built['mixed_bfloat16']})",
              flush=True)
    return rows


def _recipe(target: str, precision: str, quick: bool, runs: Path) -> dict[str, Any]:
    """Run one experiment whole in a fresh process; its wall time and headline."""
    module = RECIPES[target]
    cmd = [sys.executable, "-m", f"ch11.{module}", "--precision", precision,
           "--out-dir", str(runs), *(["--quick"] if quick else [])]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
           "MPLBACKEND": "Agg"}
    print(f"\n$ {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed (exit {done.returncode}):\n"
                           f"{done.stderr[-2000:]}")
    run_dir = max(p for p in (runs / module).iterdir() if p.is_dir())
    results = json.loads((run_dir / "results.json").read_text())
    headline = results.get("evidence", {}).get("headline") or (results["notes"] or [""])[0]
    policies = {k: v["policy"] for k, v in results["precision"].items()}
    print(f"  {seconds:.0f} s; {policies}", flush=True)
    return {"target": f"recipe-{target}", "precision": precision, "seconds": round(seconds, 1),
            "policies": policies, "headline": headline}


def _threads(result: dict[str, Any]) -> str:
    n = result.get("intra_op_threads", 1)
    return "one TensorFlow thread" if n == 1 else f"{n} TensorFlow threads"


def _markdown(result: dict[str, Any]) -> str:
    machine = result["machine"]
    command = " ".join(["python -m bench.precision",
                        *(["--recipes", *result["recipes"]] if result["recipes"] else [])])
    flags = ", ".join(machine.get("bf16_flags") or []) or "none"
    lines = [
        "# float32 vs mixed_bfloat16 for the MNIST experiments",
        "",
        f"`{command}` on {result['when']} at commit {result['commit'][:7]}: {machine.get('cpu')}, "
        f"{machine.get('cores')} cores, bf16 flags: {flags}.",
        "",
        f"One epoch of {result['images']:,} MNIST images per model after a warm-up epoch, "
        f"{_threads(result)}, 64 steps per call, median of two rounds in alternating order:",
        "",
        "| model | used by | float32 s | mixed_bfloat16 s | speedup | built as |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["families"]:
        lines.append(f"| `{r['family']}` | {r['used_by']} | {r['seconds_float32']:.2f} | "
                     f"{r['seconds_bf16']:.2f} | {r['speedup']:.2f}x | {r['built_bf16']} |")
    if result["recipe_rows"]:
        lines += ["", "Whole experiments, each in a fresh process, one after the other in this "
                      "sitting (`--precision float32`, then the default `auto`):", "",
                  "| command | --precision | wall time | dtype policies | headline |",
                  "|---|---|---|---|---|"]
        for r in result["recipe_rows"]:
            pol = ", ".join(f"{k} {v}" for k, v in r["policies"].items())
            minutes, seconds = divmod(round(r["seconds"]), 60)
            lines.append(f"| `make {r['target']}` | {r['precision']} | "
                         f"{minutes} min {seconds:02d} s | {pol} | {r['headline']} |")
    return "\n".join(lines) + "\n"


def run(config: Config) -> dict[str, Any]:
    """Time each model family in both policies (and the experiments asked for).

    Args:
        config: the settings.

    Returns:
        ``{"machine", "images", "families": [{"family", "used_by", "seconds_float32",
        "seconds_bf16", "speedup", "built_bf16", ...}], "recipe_rows": [...]}``.
    """
    from recipes.hardware import machine_info
    from recipes.runs import git_commit, intra_op_threads

    names = ("mlp_20x100", "cnn_16_32") if config.quick else tuple(FAMILIES)
    images = 512 if config.quick else config.images
    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": git_commit(),
        "images": images, "recipes": list(config.recipes), "machine": machine_info(),
        "intra_op_threads": intra_op_threads(),
        "families": _families(names, images), "recipe_rows": [],
    }
    for target in config.recipes:  # float32 first: the default's run is the newest
        for precision in ("float32", "auto"):
            result["recipe_rows"].append(
                _recipe(target, precision, config.quick, Path(config.runs_dir)))
    out = write_files(config.out_dir, {"precision.json": result,
                                       "precision.md": _markdown(result)})
    machine = result["machine"]
    print(f"{machine.get('cpu')}, {machine.get('cores')} cores; wrote {out / 'precision.md'}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m bench.precision [--quick] [--images N] [--recipes cnn schedules bn]``.

    Args:
        argv: the arguments. Defaults to `None` (``sys.argv[1:]``).

    Returns:
        The exit code: 0, or 2 for a bad option.
    """
    if "tensorflow" not in sys.modules:  # as the MNIST experiments: read when TensorFlow starts
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(MNIST_INTRA_OP_THREADS))
    return run_cli(Config, run, argv, prog="python -m bench.precision", description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
