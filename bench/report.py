"""Summaries, `results.json`, `report.md` and the accuracy-vs-seconds plot of the benchmark."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from recipes.runs import library_versions, save_figure

__all__ = ["BASELINES", "headline", "median_range", "speedups", "stall_seconds", "summarize",
           "write_outputs"]

PLOT_NAME = "time_to_accuracy.png"


def median_range(values: Sequence[float | None]) -> dict[str, Any]:
    """Median and range over seeds; `None` (target never reached) counts as +infinity.

    Args:
        values: one value per seed.

    Returns:
        `{"median", "min", "max", "reached", "n"}`; `median`/`max` are `None` when
        infinite (not reached by half or more of the seeds / by some seed).
    """
    finite = [float(v) for v in values if v is not None]
    ordered = sorted(finite) + [math.inf] * (len(values) - len(finite))
    med = statistics.median(ordered) if ordered else math.inf
    return {"median": None if math.isinf(med) else med,
            "min": min(ordered) if finite else None,
            "max": None if not ordered or math.isinf(ordered[-1]) else ordered[-1],
            "reached": len(finite), "n": len(values)}


def stall_seconds(points: Sequence[dict], factor: float = 3.0) -> float:
    """Seconds lost in stalls: check intervals over `factor` x the median interval.

    With tf.data's autotuning on (as in Keras's numpy input adapter), the finished
    epoch's iterator waits for the autotuning thread as it is destroyed: an idle pause of
    up to ~10 s at some epoch starts on a 2-core CPU (see `recipes.data.pipeline`). This
    measures it from the clock's points: the excess of each outlying interval over the
    median one.

    Args:
        points: the clock's points, in order (the first interval starts at 0 s).
        factor: how many median intervals make a stall. Defaults to `3.0`.

    Returns:
        The total excess seconds (0.0 without stalls).
    """
    times = [0.0] + [p["seconds"] for p in points]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    if len(gaps) < 3:
        return 0.0
    typical = statistics.median(gaps)
    return float(sum(g - typical for g in gaps[1:] if g > factor * typical))


def summarize(configs: Sequence[dict]) -> dict[str, dict[str, Any]]:
    """Median and range of each headline figure, per configuration.

    Args:
        configs: the per-configuration records of `run_config`.

    Returns:
        `{name: {figure: median_range(...)}}` plus `process_seconds`.
    """
    out: dict[str, dict[str, Any]] = {}
    for c in configs:
        seeds = c["seeds"]
        row: dict[str, Any] = {}
        for target, _ in seeds[0]["time_to"].items():
            pts = [s["time_to"][target] for s in seeds]
            row[f"seconds_to_{target}"] = median_range([p and p["seconds"] for p in pts])
            row[f"epochs_to_{target}"] = median_range([p and p["epoch"] for p in pts])
        for key in ("images_per_second", "final_test_accuracy", "train_seconds"):
            row[key] = median_range([s[key] for s in seeds])
        row["stall_seconds"] = median_range([stall_seconds(s["points"]) for s in seeds])
        row["process_seconds"] = c.get("process_seconds")
        out[c["name"]] = row
    return out


def _fmt(stat: dict, digits: int = 1, pct: bool = False) -> str:
    if stat["median"] is None:
        return f"not reached ({stat['reached']}/{stat['n']} seeds)"

    def f(v: float | None) -> str:
        if v is None:
            return "never"
        return f"{100 * v:.2f}%" if pct else f"{v:.{digits}f}"

    if stat["n"] == 1:
        return f(stat["median"])
    extra = "" if stat["reached"] == stat["n"] else f", {stat['reached']}/{stat['n']} seeds"
    return f"{f(stat['median'])} ({f(stat['min'])}-{f(stat['max'])}{extra})"


BASELINES = (("keras_io", "the keras.io convnet as published"),
             ("keras_io_pipeline", "the same convnet fed by the recipes' input pipeline"))


def speedups(summary: dict, target: float) -> dict[str, float | None]:
    """The headline's two ratios as numbers, for ``results.json``'s top level.

    Args:
        summary: `summarize`'s output.
        target: the accuracy the ratios are about (the first of the targets).

    Returns:
        ``{"speedup_vs_published": keras_io / recipe_fast, "speedup_like_for_like":
        keras_io_pipeline / recipe_fast}``: medians of the seconds to `target`, rounded
        to 0.1; `None` where a configuration did not run or did not reach `target`.
    """
    key = f"seconds_to_{target:.3f}"

    def median(name: str) -> float | None:
        return summary.get(name, {}).get(key, {}).get("median")

    fast = median("recipe_fast")
    out = {}
    for field, base in (("speedup_vs_published", "keras_io"),
                        ("speedup_like_for_like", "keras_io_pipeline")):
        slow = median(base)
        out[field] = round(slow / fast, 1) if fast and slow is not None else None
    return out


def headline(results: dict) -> str:
    """The one-line result: how much sooner the fast recipe reaches 99.0%.

    The first ratio is against the keras.io convnet as published (`fit(x, y)` on numpy
    arrays, stalls included), the second, when it ran, against the same convnet on the
    same input pipeline as the recipe (the like-for-like figure).

    Args:
        results: the benchmark results.

    Returns:
        The sentence.
    """
    summary = results["summary"]
    bases = [(name, label) for name, label in BASELINES if name in summary]
    if not bases or "recipe_fast" not in summary:
        return "headline needs recipe_fast and keras_io (or keras_io_pipeline) in the run"
    key = f"seconds_to_{results['targets'][0]:.3f}"
    target = f"{results['targets'][0]:.1%}"
    quick = " (quick mode: too little data)" if results["quick"] else ""
    fast = summary["recipe_fast"][key]["median"]
    if fast is None:
        return (f"the recipe did not reach {target} (median over seeds) in this run, so "
                f"there is no ratio{quick}")
    parts = []
    for k, (name, label) in enumerate(bases):
        base = summary[name][key]["median"]
        if base is None:
            parts.append(f"{label} did not reach {target} (median over seeds){quick}")
        elif k == 0:
            parts.append(f"{base / fast:.1f}x sooner than {label} ({fast:.1f} s vs "
                         f"{base:.1f} s of training, median of "
                         f"{summary['recipe_fast'][key]['n']} seeds)")
        else:
            parts.append(f"{base / fast:.1f}x sooner than {label} ({base:.1f} s)")
    return f"recipe reaches {target} " + "; ".join(parts)


def _plot(results: dict) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for k, c in enumerate(results["configs"]):
        for j, s in enumerate(c["seeds"]):
            pts = s["points"]
            ax.plot([p["seconds"] for p in pts], [100 * p["test_accuracy"] for p in pts],
                    color=f"C{k}", alpha=0.8, lw=1.4, label=c["name"] if j == 0 else None)
    for target in results["targets"]:
        ax.axhline(100 * target, color="grey", ls="--", lw=0.8)
    ax.set_ylim(97.0, 99.7)
    ax.set_xscale("log")
    ax.set_xlabel("seconds of training (evaluation excluded, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("MNIST test accuracy vs training time (one line per seed)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def _table(results: dict) -> list[str]:
    t0, t1 = (f"{t:.3f}" for t in results["targets"][:2])
    lines = ["| configuration | input | precision | s to 99.0% | epochs to 99.0% | s to 99.3% | "
             "images/s | final test acc | training s | of which stalls | process s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in results["configs"]:
        s = results["summary"][c["name"]]
        lines.append(
            f"| `{c['name']}` | {c.get('input', 'numpy')} | {c['precision']} | "
            f"{_fmt(s[f'seconds_to_{t0}'])} | "
            f"{_fmt(s[f'epochs_to_{t0}'], 2)} | {_fmt(s[f'seconds_to_{t1}'])} | "
            f"{_fmt(s['images_per_second'], 0)} | {_fmt(s['final_test_accuracy'], pct=True)} | "
            f"{_fmt(s['train_seconds'])} | {_fmt(s['stall_seconds'])} | "
            f"{s['process_seconds']:.0f} |")
    return lines


def write_outputs(results: dict, out_dir: Path) -> None:
    """Write `results.json`, `report.md` and the plot into `out_dir`.

    Args:
        results: the benchmark results.
        out_dir: the folder (created if needed).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    results["versions"] = library_versions()
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    save_figure(_plot(results), out_dir / PLOT_NAME)
    m, o, v = results["machine"], results["overhead"], results["versions"]
    seeds = sorted({s["seed"] for c in results["configs"] for s in c["seeds"]})
    lines = [
        "# Time to accuracy on MNIST: the chapter's recipes vs the keras.io convnet", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, bf16 flags: "
        f"{', '.join(m['bf16_flags']) or 'none'}"
        + (f", SIMD flags: {', '.join(m['speed_flags']) or 'none'}" if "speed_flags" in m else "")
        + f"; TensorFlow {v.get('tensorflow')}, "
        f"Keras {v.get('keras')}. Seeds {seeds}"
        + (" (**quick mode: a data slice, not the benchmark**)" if results["quick"] else "") + ".",
        "", "Command: `make bench` (`python -m bench.time_to_accuracy`). Test accuracy is "
        "checked every 1/8 epoch on the 10,000 test images; evaluation and validation time "
        "are off the clock. Figures are the median over seeds (range in brackets).", "",
        *[f"- `{c['name']}`: {c['title']} ({c['precision_reason']})"
          for c in results["configs"]],
        "", *_table(results), "", f"**{headline(results)}.**", "",
        "*Input*: `numpy` is `fit(x, y)` on arrays, as keras.io publishes it; `pipeline` is "
        "`recipes.make_dataset`, the same shuffled batches with tf.data's autotuning off. "
        "*Stalls*: check intervals more than 3x the median one. With autotuning on (Keras's "
        "numpy adapter turns it on), the iterator of the finished epoch waits, as it is "
        "destroyed, for the autotuning thread to wake up: an idle pause of up to ~10 s at "
        "some epoch starts on this CPU. It is counted, as every user of `fit(x, y)` pays "
        "it; the second ratio of the headline compares the models on the same input.", "",
        f"![test accuracy vs seconds]({PLOT_NAME})", "",
        "## Builder overhead", "",
        f"The same {o['params']:,}-parameter CNN built by hand in plain Keras and by "
        f"`recipes.build_cnn` ({o['precision']}), {o['rounds']} alternated rounds of "
        f"{o['steps']} training steps: hand {statistics.median(o['hand_steps_per_second']):.1f} "
        f"steps/s, recipes {statistics.median(o['recipe_steps_per_second']):.1f} steps/s, "
        f"ratio **{o['ratio']:.3f}** (1.00 = no overhead).", "",
    ]
    (out_dir / "report.md").write_text("\n".join(lines))
