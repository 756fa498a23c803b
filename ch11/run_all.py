"""Run every chapter experiment, one after another, and write ``runs/index.md``.

Hands-On ML, chapter 11, all sections. Each experiment runs with its book defaults (or
``--quick``); a failing experiment is reported in the index and does not stop the others.
The index links every report with its headline finding and wall time.

Run: ``python -m ch11.run_all [--quick] [--only bn selu ...]`` (``make recipes``).
"""

from __future__ import annotations

import argparse
import importlib
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

__all__ = ["RECIPES", "main", "write_index"]

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
}


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
        headline = str(r["headline"]).replace("|", "\\|")
        lines.append(f"| {r['target']} | `make recipe-{r['target']}` | {headline} | "
                     f"{r['wall_s']:.0f} s | {link} |")
    path = out_dir / "index.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: run the experiments and write the index; exit 1 if any failed."""
    parser = argparse.ArgumentParser(prog="python -m ch11.run_all", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every experiment in quick mode")
    parser.add_argument("--only", nargs="+", choices=list(RECIPES), metavar="RECIPE",
                        help=f"run only these (choices: {', '.join(RECIPES)})")
    parser.add_argument("--out-dir", default="runs", help="runs folder (default: runs)")
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    rows = []
    targets = args.only or list(RECIPES)
    for k, target in enumerate(targets, 1):
        module = RECIPES[target]
        print(f"\n##### recipe {k}/{len(targets)}: {target} (ch11.{module}) #####", flush=True)
        started = time.perf_counter()
        row = {"target": target, "module": module, "report": None}
        try:
            mod = importlib.import_module(f"ch11.{module}")
            results = mod.run(mod.Config(quick=args.quick, out_dir=str(out_dir)))
            row.update(status="ok", report=results.run_dir / "report.md",
                       headline=results.notes[0] if results.notes else "")
        except Exception as e:  # keep going: one broken experiment must not hide the others
            traceback.print_exc()
            row.update(status="failed", headline=f"FAILED: {type(e).__name__}: {e}")
        row["wall_s"] = time.perf_counter() - started
        rows.append(row)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = write_index(rows, out_dir)
    print(f"\nIndex: {index}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
