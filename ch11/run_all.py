"""Run every chapter experiment, one after another, and write ``runs/index.md``.

Hands-On ML, chapter 11, all sections. Each experiment runs with its book defaults (or
``--quick``); a failing experiment is reported in the index and does not stop the others.
The index links every report with its headline finding and wall time.

Run: ``python -m ch11.run_all [--quick] [--only bn selu ...]`` (``make recipes``).
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ch11._config import check_names, option, out_dir_option
from recipes.cli import module_prog, parse_config
from recipes.runs import is_finished

__all__ = ["RECIPES", "Config", "main", "run", "write_index"]

# make target suffix -> module, in the chapter's order
RECIPES: dict[str, str] = {
    "gradients": "gradients",
    "init": "initialization",
    "activations": "activations",
    "selu": "selu",
    "bn": "batch_norm",
    "clipping": "clipping",
    "transfer": "transfer",
    "optimizers": "optimizers",
    "schedules": "schedules",
    "regularization": "regularization",
    "cnn": "cnn_hparams",
    "gd": "gradient_descent",
    "losses": "losses",
    "imbalance": "imbalance",
    "residual": "residual",
    "fish": "fish",
    "fish-imbalance": "fish_imbalance",
    "fish-capacity": "fish_capacity",
    "fish-transfer": "fish_transfer",
}


@dataclass(frozen=True)
class Config:
    """Which experiments to run, how, and where their run folders go."""

    quick: bool = option(False, "every experiment in quick mode")
    only: tuple[str, ...] | None = option(
        None, f"run only these recipes, in this order (choices: {', '.join(RECIPES)}; all "
              "when omitted)", tuple(RECIPES), metavar="RECIPE")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        if self.only is not None:
            check_names("only", self.only, tuple(RECIPES), "recipe")


def write_index(rows: Sequence[dict], out_dir: Path) -> Path:
    """Write ``<out_dir>/index.md`` linking each experiment's report.

    Args:
        rows: dicts with target, module, status, headline, wall_s and report (a path).
        out_dir: the runs folder.

    Returns:
        The index path.
    """
    lines = ["# Chapter 11 experiments", "",
             "| recipe | command | headline | wall time | report |", "|---|---|---|---|---|"]
    for r in rows:
        report = Path(r["report"]).relative_to(out_dir) if r.get("report") else None
        link = f"[report]({report.as_posix()})" if report else r["status"]
        headline = str(r.get("headline", "")).replace("|", "\\|")
        wall = f"{r['wall_s']:.0f} s" if r.get("wall_s") is not None else "-"
        lines.append(f"| {r['target']} | `make recipe-{r['target']}` | {headline} | "
                     f"{wall} | {link} |")
    unfinished = [r["target"] for r in rows if r["status"] in ("pending", "running")]
    if unfinished:
        lines += ["", f"Not finished (yet): {', '.join(unfinished)}: this index is rewritten "
                      "after every experiment, so a stopped `make recipes` leaves it saying so."]
    path = out_dir / "index.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def run(config: Config) -> list[dict]:
    """Run the experiments one after another (by package name) and write the index.

    Each runs as ``ch11.<module>.run(ch11.<module>.Config(quick=..., out_dir=...))``; a
    failing one is printed and listed as failed, and the others still run.

    Args:
        config: which experiments, how, and where.

    Returns:
        One row per experiment: target, module, status, headline, wall_s, report.
    """
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = list(config.only or RECIPES)
    rows = [{"target": t, "module": RECIPES[t], "report": None, "status": "pending",
             "headline": "", "wall_s": None} for t in targets]
    for k, row in enumerate(rows, 1):
        target, module = row["target"], row["module"]
        print(f"\n##### recipe {k}/{len(targets)}: {target} (ch11.{module}) #####", flush=True)
        row["status"] = "running"
        write_index(rows, out_dir)
        started = time.perf_counter()
        try:
            mod = importlib.import_module(f"ch11.{module}")
            results = mod.run(mod.Config(quick=config.quick, out_dir=str(out_dir)))
            done = is_finished(results.run_dir)
            row.update(status="ok" if done else "unfinished",
                       report=results.run_dir / "report.md" if done else None,
                       headline=results.notes[0] if results.notes else "")
        except Exception as e:  # keep going: one broken experiment must not hide the others
            traceback.print_exc()
            row.update(status="failed", headline=f"FAILED: {type(e).__name__}: {e}")
        row["wall_s"] = time.perf_counter() - started
        write_index(rows, out_dir)
    index = out_dir / "index.md"
    print(f"\nIndex: {index}")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: run the experiments and write the index; exit 1 if any failed.

    The options are parsed (``--help`` answers) before any experiment imports TensorFlow.

    Args:
        argv: the arguments. Defaults to `None` (``sys.argv[1:]``).

    Returns:
        0 when every experiment finished, 1 when one failed (2: bad options, from argparse).
    """
    config = parse_config(Config, argv, prog=module_prog(__name__), description=__doc__)
    from recipes._startup import import_tensorflow_quietly

    import_tensorflow_quietly()
    rows = run(config)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
