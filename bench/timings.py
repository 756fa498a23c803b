"""The long commands, timed in one table: every ``make recipe-*``, the tests, the fish input.

Each step runs the command its ``make`` target runs, in a fresh process from this checkout
(``python -m ch11.<experiment>``, ``python -m pytest -n 2 --dist worksteal``,
``python -m bench.fish_input``), timed from start to exit. Its row records the exit code,
the commit, when it ran, the load average just before it (a busy machine inflates every
time: compare rows measured at a low load) and, for the fish input, the photos decoded per
second on a first run and the time to the first training step with and without the photo
cache. The machine (CPU model, cores, the SIMD and bf16 flags that change the speed) is
recorded once per refresh with the rows it measured.

The table is ``bench/timings.json`` and ``bench/timings.md``, committed so that the next
change has something to compare with; ``--only`` refreshes some rows and keeps the others
with their own date and commit. Run: ``python -m bench.timings`` (``make bench-all``,
about 2 hours on 2 cores), ``--only recipe-bn test``, ``--list-steps``. The totals of
``make recipes`` (the chapter's fifteen in one process) and ``make recipes-fish`` are
rows of their own, timed only when ``--only`` names them (``--only recipes``).

Reference: Géron, Hands-On ML (3rd ed.), ch. 11 ("Faster Optimizers": measure before
speeding up) and ch. 13 (the input pipeline's cost).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ch11._config import check_names, option
from recipes.cli import parse_config, print_error
from recipes.hardware import cpu_flags, machine_info

__all__ = ["DEFAULT_STEPS", "STEPS", "Config", "Step", "machine_key", "main", "markdown",
           "merge_rows", "run", "steps"]

ROOT = Path(__file__).resolve().parents[1]
PROG = "python -m bench.timings"
# The flags that change TensorFlow's CPU speed the most (bf16 and AMX: the recipes' precision).
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


@dataclass(frozen=True)
class Step:
    """One timed command.

    Args:
        name: the row's name (the ``make`` target without ``make``).
        argv: the command after ``python -m``.
        make: the ``make`` command a user types for the same work.
        quick_argv: the command's ``--quick`` form (`None`: no quick form).
        default: timed by a run without ``--only``. Defaults to `True` (`False`: the
            ``make recipes`` totals, which repeat the per-recipe rows' work).
    """

    name: str
    argv: tuple[str, ...]
    make: str
    quick_argv: tuple[str, ...] | None = None
    default: bool = True


def steps() -> dict[str, Step]:
    """Every timed step, in the order `run` takes them: the recipes, the tests, the fish input,
    then the two ``make recipes`` totals (only with ``--only``).

    Returns:
        ``{name: Step}``.
    """
    from ch11.run_all import RECIPES  # the ``make recipe-*`` targets and their modules

    table = {f"recipe-{target}": Step(f"recipe-{target}", (f"ch11.{module}",),
                                      f"make recipe-{target}", (f"ch11.{module}", "--quick"))
             for target, module in RECIPES.items()}
    table["test"] = Step("test", ("pytest", "-q", "-n", "2", "--dist", "worksteal",
                                  "-p", "no:cacheprovider"), "make test",
                         ("pytest", "-q", "-n", "2", "-m", "not slow", "-p", "no:cacheprovider"))
    table["bench-fish"] = Step("bench-fish", ("bench.fish_input",), "make bench-fish",
                               ("bench.fish_input", "--quick"))
    for group, make in (("chapter", "make recipes"), ("fish", "make recipes-fish")):
        name = make.removeprefix("make ")
        table[name] = Step(name, ("ch11.run_all", "--group", group), make,
                           ("ch11.run_all", "--group", group, "--quick"), default=False)
    return table


STEPS = tuple(steps())
DEFAULT_STEPS = tuple(name for name, step in steps().items() if step.default)


@dataclass(frozen=True)
class Config:
    """The timing run's settings."""

    only: tuple[str, ...] | None = option(None, "time only these steps, in this order "
                                                "(--list-steps shows them; when omitted, all "
                                                "but the make recipes totals)",
                                          metavar="STEP")
    quick: bool = option(False, "each step's smoke form (recipes --quick, the tests without "
                                "the slow ones): checks the tool, times nothing useful")
    list_steps: bool = option(False, "print the steps and exit")
    out_dir: str = option("bench", "where timings.json and timings.md are (rows are merged)")
    runs_dir: str | None = option(None, "the recipes' run folders (their --out-dir; default: "
                                        "their own, runs/)")

    def __post_init__(self) -> None:
        if self.only is not None:
            check_names("only", self.only, STEPS, "step")


def merge_rows(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]],
               order: Sequence[str] = STEPS) -> list[dict[str, Any]]:
    """The old rows with the new ones in their place, in `order` (unknown names last).

    Args:
        old: rows of an earlier table.
        new: rows just measured (they replace the old rows of the same ``step``).
        order: the steps' order.

    Returns:
        The merged rows.
    """
    rows = {r["step"]: dict(r) for r in old}
    rows.update({r["step"]: dict(r) for r in new})
    rank = {name: k for k, name in enumerate(order)}
    return sorted(rows.values(), key=lambda r: (rank.get(r["step"], len(rank)), r["step"]))


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _detail(row: Mapping[str, Any]) -> str:
    fish = row.get("fish_input")
    if not fish:
        return ""
    first, cached = fish["first_run"], fish["cached_run"]
    return (f"{first['photos']:,} photos decoded at {first['decoded_per_s']:,.0f}/s; first "
            f"training step {first['first_step_s']:.1f} s after start (cached: "
            f"{cached['first_step_s']:.1f} s)")


def markdown(table: Mapping[str, Any]) -> str:
    """The table as Markdown: one row per step, then the machines the rows were measured on.

    Args:
        table: ``{"rows": [...], "machines": {id: machine_info}}`` (`run`'s output).

    Returns:
        The Markdown text.
    """
    lines = ["# Timings", "",
             f"Written by `{PROG}` (`make bench-all`); each row from a fresh process at the "
             "commit and time it names. Load = the 1-minute load average just before the "
             "step (2 cores: above 2, the times are inflated by other work).", "",
             "| step | command | wall time | exit | load | machine | commit | when | notes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table["rows"]:
        lines.append(f"| {r['step']} | `{r['make']}{' ARGS=--quick' * r['quick']}` | "
                     f"{_minutes(r['seconds'])} | {r['returncode']} | {r['load_before']:.1f} | "
                     f"{r['machine']} | {r['commit'][:10]} | {r['when']} | {_detail(r)} |")
    lines += ["", "Machines:", ""]
    for key, m in table["machines"].items():
        lines.append(f"- `{key}`: {m['cpu']}, {m['cores']} cores, flags "
                     f"{', '.join(m['speed_flags']) or 'none of ' + ', '.join(SPEED_FLAGS)}; "
                     f"Python {m['python']}")
    return "\n".join(lines) + "\n"


def machine_key(cpuinfo: str | None = None) -> tuple[str, dict[str, Any]]:
    """This machine's id (CPU model, cores, speed flags) and its description.

    Args:
        cpuinfo: the text of ``/proc/cpuinfo``. Defaults to reading the file.

    Returns:
        ``(key, info)``: `recipes.hardware.machine_info` with ``speed_flags``, the
        `SPEED_FLAGS` the CPU has.
    """
    info = machine_info(cpuinfo)
    flags = cpu_flags(cpuinfo)
    info["speed_flags"] = [f for f in SPEED_FLAGS if f in flags]
    key = f"{info['cpu']} / {info['cores']} cores / {'+'.join(info['speed_flags']) or '-'}"
    return key, info


def _time_step(step: Step, config: Config, log: Callable[[str], None]) -> dict[str, Any]:
    """Run one step in a fresh process and return its row (without the machine)."""
    from recipes.runs import git_commit

    argv = list(step.quick_argv if config.quick else step.argv)
    if argv[0].startswith("ch11.") and config.runs_dir:
        argv += ["--out-dir", config.runs_dir]
    out = Path(config.out_dir)
    if argv[0] == "bench.fish_input":
        argv += ["--out-dir", str(out)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
           "MPLBACKEND": "Agg"}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    log(f"{step.name}: python -m {' '.join(argv)} (load {load:.1f}) ...")
    begin = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - begin
    row = {"step": step.name, "make": step.make, "quick": config.quick,
           "seconds": round(seconds, 1), "returncode": proc.returncode,
           "load_before": round(load, 2), "commit": git_commit(ROOT),
           "when": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}
    if proc.returncode != 0:
        log(f"{step.name} failed with exit code {proc.returncode}; its last lines:\n"
            + "\n".join(proc.stdout.splitlines()[-15:]))
    elif step.name == "bench-fish":
        fish = json.loads((out / "fish_input.json").read_text())
        row["fish_input"] = {k: fish[k] for k in ("first_run", "cached_run")}
    log(f"{step.name}: {_minutes(seconds)}, exit code {proc.returncode}")
    return row


def run(config: Config, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Time the steps, merge their rows into ``timings.json`` and write ``timings.md``.

    Args:
        config: the settings.
        log: progress output.

    Returns:
        The whole table: ``{"rows": [...], "machines": {...}}``.
    """
    all_steps = steps()
    if config.list_steps:
        for step in all_steps.values():
            log(f"{step.name:24s} {step.make}" + ("" if step.default else "  (--only)"))
        return {"rows": [], "machines": {}}
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "timings.json"
    table = json.loads(path.read_text()) if path.is_file() else {"rows": [], "machines": {}}
    key, machine = machine_key()
    table["machines"][key] = machine
    for name in config.only or DEFAULT_STEPS:
        row = {**_time_step(all_steps[name], config, log), "machine": key}
        table["rows"] = merge_rows(table["rows"], [row])
        used = {r["machine"] for r in table["rows"]}
        table["machines"] = {k: v for k, v in table["machines"].items() if k in used}
        path.write_text(json.dumps(table, indent=2) + "\n")  # after every step: a crash
        (out / "timings.md").write_text(markdown(table))     # keeps what was measured
    log(f"wrote {path} and {out / 'timings.md'}")
    failed = [r["step"] for r in table["rows"] if r["returncode"] != 0
              and r["step"] in (config.only or DEFAULT_STEPS)]
    if failed:
        raise RuntimeError(f"These steps failed: {', '.join(failed)} (their rows say so).")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point.

    Args:
        argv: arguments (defaults to ``sys.argv[1:]``).

    Returns:
        The exit code: 0, 1 when a step failed, 2 for a bad option.
    """
    config = parse_config(Config, argv, prog=PROG, description=__doc__)
    try:
        run(config)
    except RuntimeError as e:
        print_error(e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
