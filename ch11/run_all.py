"""Run the chapter experiments, one after another, and write ``runs/index.md``.

Hands-On ML, chapter 11, all sections. Each experiment runs with its book defaults (or
``--quick``); a failing experiment is reported in the index and does not stop the others.
The index links every report with its headline finding and wall time. ``--group``: the
chapter's fifteen MNIST experiments (the default, ``make recipes``), the four on the fish
photos (``make recipes-fish``, index ``runs/index-fish.md``) or all nineteen.

``--readme`` trains nothing: it writes the README's results table (between its
``readme-table`` markers) from the newest finished full run of each recipe, and the
records it read into ``readme_runs.json`` beside the README (``make readme-table``). A
recipe with no run in ``--out-dir`` newer than its row in ``readme_runs.json`` (``runs/`` is
not committed: a fresh clone has none), or one that ``--only`` leaves out, keeps that row,
and the table says which rows were kept.

Run: ``python -m ch11.run_all [--quick] [--group chapter|fish|all] [--only bn selu ...]``
(``make recipes``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ch11._config import check_names, option, out_dir_option
from recipes.checks import check_at_least, check_choice
from recipes.cli import module_prog, parse_config
from recipes.runs import is_finished

__all__ = ["GROUPS", "README_END", "README_START", "RECIPES", "Config", "collect_records", "main",
           "keep_recorded", "newest_run", "plan", "readme_table", "run", "run_record",
           "start_order", "write_index", "write_readme"]

# make target suffix -> module: the chapter's fifteen MNIST experiments in its order, then
# the four on the course's fish photos
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
# --group: which recipes a run without --only trains
GROUPS: dict[str, tuple[str, ...]] = {
    "chapter": tuple(t for t in RECIPES if not t.startswith("fish")),
    "fish": tuple(t for t in RECIPES if t.startswith("fish")),
    "all": tuple(RECIPES),
}


@dataclass(frozen=True)
class Config:
    """Which experiments to run, how, and where their run folders go."""

    quick: bool = option(False, "every experiment in quick mode")
    group: str = option("chapter", "the recipes to run without --only: the chapter's fifteen "
                                   "MNIST experiments (make recipes), the four fish ones "
                                   "(make recipes-fish), or all nineteen", tuple(GROUPS))
    only: tuple[str, ...] | None = option(
        None, f"run only these recipes, in this order (choices: {', '.join(RECIPES)}; "
              "--group's when omitted)", tuple(RECIPES), metavar="RECIPE")
    jobs: int = option(2, "experiments run at once, each in its own process (the MNIST ones "
                          "use one TensorFlow thread, so 2 keep 2 cores busy)")
    readme: bool = option(False, "train nothing: write the README's results table from the "
                                 "newest finished full run of each recipe in --out-dir (of "
                                 "--only's recipes when given; every other row, and a row "
                                 "whose run there is older, is kept from readme_runs.json)")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        check_choice("group", self.group, tuple(GROUPS))
        check_at_least("jobs", self.jobs, 1)
        if self.only is not None:
            check_names("only", self.only, tuple(RECIPES), "recipe")


def write_index(rows: Sequence[dict], out_dir: Path, name: str = "index.md") -> Path:
    """Write ``<out_dir>/<name>`` linking each experiment's report.

    Args:
        rows: dicts with target, module, status, headline, wall_s and report (a path).
        out_dir: the runs folder.
        name: the file's name. Defaults to `"index.md"`.

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
    path = out_dir / name
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def plan(config: Config) -> tuple[list[str], str]:
    """Which recipes a run trains, in order, and the name of its index.

    Args:
        config: which experiments.

    Returns:
        ``(targets, index_name)``: ``--only``'s recipes, else ``--group``'s; the index
        is ``index-fish.md`` for the fish group (so it leaves the chapter's index alone),
        ``index.md`` otherwise.
    """
    if config.only is not None:
        return list(config.only), "index.md"
    return list(GROUPS[config.group]), "index-fish.md" if config.group == "fish" else "index.md"


def _run_dirs(out_dir: Path, module: str) -> set[Path]:
    folder = out_dir / module
    return {p for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set()


def _headline(run_dir: Path) -> str:
    try:
        notes = json.loads((run_dir / "results.json").read_text()).get("notes") or [""]
    except (OSError, ValueError):
        return ""
    return str(notes[0])


def start_order(targets: Sequence[str], out_dir: Path) -> list[str]:
    """The order to start recipes in: the longest first, so parallel jobs end together.

    A recipe's length is the wall time of its newest finished full run in `out_dir`; one
    never run there starts before the others, and ties keep the given order.

    Args:
        targets: the recipes (make target suffixes).
        out_dir: the runs folder.

    Returns:
        `targets`, reordered.
    """
    def seconds(target: str) -> float:
        run_dir = newest_run(out_dir, RECIPES[target])
        try:
            results = json.loads((run_dir / "results.json").read_text())  # type: ignore[operator]
            return float(results["metrics"]["wall_time_s"])
        except (TypeError, OSError, ValueError, KeyError):
            return float("inf")

    return sorted(targets, key=lambda t: -seconds(t))


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _say(message: str) -> None:
    print(message, flush=True)  # a log file (make recipes > log) sees each line at once


def run(config: Config, log: Callable[[str], None] = _say) -> list[dict]:
    """Run the experiments, ``--jobs`` at a time, each in a process of its own; write the index.

    With several jobs the longest start first, judged by each recipe's newest full run in
    ``out_dir`` (a recipe never run there starts before those), so the jobs end close
    together; with one, they run in the given order.

    Each runs as ``python -m ch11.<module> [--quick] --out-dir <out_dir>`` (the command of
    its ``make recipe-*``, so its numbers are those of a run on its own: the MNIST ones
    use one TensorFlow thread either way). With one job its output streams here; with
    more, it goes to ``<out_dir>/logs/<recipe>.log`` and a line tells when each starts
    and ends, with a line every minute on what is running. A failing one is listed as
    failed (with its log's last lines) and the others still run.

    Args:
        config: which experiments, how, and where.
        log: progress output. Defaults to printing each line at once.

    Returns:
        One row per experiment: target, module, status, headline, wall_s, report.
    """
    out_dir = Path(config.out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    targets, index_name = plan(config)
    rows = [{"target": t, "module": RECIPES[t], "report": None, "status": "pending",
             "headline": "", "wall_s": None} for t in targets]
    write_index(rows, out_dir, index_name)
    logs = out_dir / "logs"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
           "MPLBACKEND": "Agg"}
    order = start_order(targets, out_dir) if config.jobs > 1 else targets
    waiting = sorted(enumerate(rows, 1), key=lambda kr: order.index(kr[1]["target"]))
    active: dict[int, dict] = {}
    begun = last_report = time.perf_counter()
    try:
        while waiting or active:
            while waiting and len(active) < config.jobs:
                k, row = waiting.pop(0)
                target, module = row["target"], row["module"]
                argv = [sys.executable, "-m", f"ch11.{module}", "--out-dir", str(out_dir),
                        *(["--quick"] if config.quick else [])]
                job = {"row": row, "before": _run_dirs(out_dir, module),
                       "started": time.perf_counter(), "log": None}
                if config.jobs == 1:
                    log(f"\n##### recipe {k}/{len(rows)}: {target} (ch11.{module}) #####")
                    job["proc"] = subprocess.Popen(argv, env=env)
                else:
                    logs.mkdir(exist_ok=True)
                    job["log"] = logs / f"{target}.log"
                    with open(job["log"], "w") as out:
                        job["proc"] = subprocess.Popen(argv, env=env, stdout=out,
                                                       stderr=subprocess.STDOUT)
                    log(f"[{k}/{len(rows)}] {target} started (python -m ch11.{module}; "
                        f"log: {job['log']})")
                row["status"] = "running"
                active[k] = job
                write_index(rows, out_dir, index_name)
            time.sleep(0.5)
            for k, job in list(active.items()):
                code = job["proc"].poll()
                if code is None:
                    continue
                del active[k]
                row = job["row"]
                row["wall_s"] = time.perf_counter() - job["started"]
                new = sorted(_run_dirs(out_dir, row["module"]) - job["before"])
                run_dir = new[-1] if new else None
                if code == 0 and run_dir is not None and is_finished(run_dir):
                    row.update(status="ok", report=run_dir / "report.md",
                               headline=_headline(run_dir))
                    log(f"[{k}/{len(rows)}] {row['target']} finished in "
                        f"{_duration(row['wall_s'])}: {row['headline'][:160]}")
                else:
                    row.update(status="failed", headline=f"FAILED: exit code {code}")
                    log(f"[{k}/{len(rows)}] {row['target']} FAILED (exit code {code}) after "
                        f"{_duration(row['wall_s'])}"
                        + (f"; the end of {job['log']}:\n{_tail(job['log'])}" if job["log"]
                           else ""))
                write_index(rows, out_dir, index_name)
            if config.jobs > 1 and active and time.perf_counter() - last_report >= 60:
                last_report = time.perf_counter()
                now = time.perf_counter()
                log(f"... {_duration(now - begun)} in; running: " + ", ".join(
                    f"{j['row']['target']} ({_duration(now - j['started'])})"
                    for j in active.values()) + f"; {len(waiting)} waiting")
    except BaseException:  # Ctrl-C or a crash here: stop the experiments it started
        for job in active.values():
            job["proc"].terminate()
        raise
    done = sum(r["status"] == "ok" for r in rows)
    log(f"\n{done} of {len(rows)} recipes finished in {_duration(time.perf_counter() - begun)} "
        f"({config.jobs} at a time). Index: {out_dir / index_name}")
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
    if config.readme:
        fresh = collect_records(Path(config.out_dir), config.only or tuple(RECIPES))
        records = keep_recorded(fresh, README.with_name(SNAPSHOT))
        path = write_readme(records)
        found = sum(r["run"] is not None for r in fresh)
        kept = [r["target"] for r in records if r.get("kept")]
        print(f"{path}: the results table from {found} of {len(fresh)} recipes' runs"
              + (f", {len(kept)} row(s) kept from {SNAPSHOT} ({', '.join(kept)})" if kept
                 else "") + f" (records in {path.with_name(SNAPSHOT)})")
        return 0
    rows = run(config)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


README = Path(__file__).resolve().parents[1] / "README.md"
SNAPSHOT = "readme_runs.json"  # beside the README: the records its table was written from
README_START = ("<!-- readme-table:start (written by `make readme-table` from the runs' "
                "results.json; edits here are overwritten) -->")
README_END = "<!-- readme-table:end -->"
_STAMP = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")


def newest_run(out_dir: Path, module: str) -> Path | None:
    """The newest finished full (not ``--quick``) run folder of an experiment.

    Args:
        out_dir: the runs folder (``runs/<module>/<UTC timestamp>_s<seed>/``).
        module: the experiment's package name, e.g. ``"batch_norm"``.

    Returns:
        The folder, or `None` when there is none.
    """
    folder = Path(out_dir) / module
    if not folder.is_dir():
        return None
    for run_dir in sorted((p for p in folder.iterdir() if p.is_dir()), reverse=True):
        if not is_finished(run_dir):
            continue
        try:
            results = json.loads((run_dir / "results.json").read_text())
        except (OSError, ValueError):
            continue
        if not results.get("quick", False):
            return run_dir
    return None


def run_record(target: str, module: str, run_dir: Path) -> dict:
    """What the README table says about one run, copied from its results.json.

    A run written before the ``evidence`` entry existed (or a fish study) gives its first
    note as the headline and the seeds of its config; its book figure is then unknown.

    Args:
        target: the make target suffix, e.g. ``"bn"``.
        module: the experiment's package name.
        run_dir: the run folder.

    Returns:
        A JSON-ready dict: target, module, run (``<module>/<folder>``), started (UTC),
        headline, seeds, seeds_note, book, book_claim, agrees, wall_time_s, commit, machine.
    """
    results = json.loads((run_dir / "results.json").read_text())
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    evidence = results.get("evidence") or {}
    seeds = evidence.get("seeds") or config.get("seeds")
    if not isinstance(seeds, list):
        seeds = [results.get("seed")]
    notes = results.get("notes") or [""]
    book = evidence.get("book") or {}
    m = _STAMP.match(run_dir.name)
    return {
        "target": target, "module": module, "run": f"{module}/{run_dir.name}",
        "started": (f"{m[1]}-{m[2]}-{m[3]} {m[4]}:{m[5]}" if m else "unknown"),
        "headline": evidence.get("headline", notes[0]),
        "seeds": seeds,
        "seeds_note": evidence.get("seeds_note", f"seed{'s' if len(seeds) > 1 else ''} "
                                                  f"{', '.join(map(str, seeds))}"),
        "book": book.get("figure", "not recorded by this run"),
        "book_claim": book.get("claim", ""),
        "agrees": evidence.get("agrees", ""),
        "wall_time_s": (results.get("metrics") or {}).get("wall_time_s"),
        "commit": results.get("commit", "unknown"),
        "machine": results.get("machine") or {},
    }


def collect_records(out_dir: Path, targets: Sequence[str] = tuple(RECIPES)) -> list[dict]:
    """One record per recipe: its newest finished full run's, or one saying there is none.

    Args:
        out_dir: the runs folder.
        targets: the recipes, in order. Defaults to all.

    Returns:
        The records (`run_record`; ``run`` is `None` where no run was found).
    """
    records = []
    for target in targets:
        module = RECIPES[target]
        run_dir = newest_run(out_dir, module)
        records.append(run_record(target, module, run_dir) if run_dir else
                       {"target": target, "module": module, "run": None})
    return records


def keep_recorded(records: Sequence[dict], snapshot: Path) -> list[dict]:
    """Fill the rows the runs folder cannot give from the README table's saved records.

    ``runs/`` is not committed, so a fresh clone, or a checkout where only some recipes
    were rerun, has no run (or only an older one) for the others: their rows stay as
    ``readme_runs.json`` has them, marked ``"kept": True`` (the table names them), instead
    of turning into "no run" rows or going back to an older run.

    Args:
        records: `collect_records` output, for the recipes read from the runs folder.
        snapshot: the saved records (``readme_runs.json``); absent: none; unreadable: none,
            with a warning on stderr naming the file.

    Returns:
        One record per recipe of `RECIPES` that has a run or a saved record, in its order:
        the newer of the two by start time (a recipe of `records` with neither keeps its
        "no run" record).
    """
    saved: dict[str, dict] = {}
    path = Path(snapshot)
    if path.is_file():
        try:
            saved = {r["target"]: r for r in json.loads(path.read_text()) if r.get("run")}
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            print(f"warning: {path} is not a list of table records ({err}); every row without "
                  "a run is written as 'no finished full run'. Restore it with "
                  f"`git checkout {path.name}`.", file=sys.stderr)
    fresh = {r["target"]: r for r in records}
    merged = []
    for target in RECIPES:
        record = fresh.get(target)
        old = saved.get(target)
        if old is not None and (record is None or record["run"] is None
                                or str(old.get("started", "")) > str(record.get("started", ""))):
            record = {**old, "kept": True}
        if record is not None:
            merged.append(record)
    return merged


_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def _cell(text: object) -> str:
    """A table cell: pipes escaped, one line, Markdown links flattened to their text (a
    report's relative link would point elsewhere from the README)."""
    return _LINK.sub(r"\1", str(text)).replace("|", "\\|").replace("\n", " ")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def readme_table(records: Sequence[dict]) -> str:
    """The README's results table (Markdown) and the line saying where it comes from.

    Args:
        records: `collect_records` output (or the README's ``readme_runs.json``).

    Returns:
        The text between the README's markers.
    """
    runs = [r for r in records if r.get("run")]
    if not runs:
        return ("No finished full run recorded yet: run `make recipes` on an idle machine, "
                "then `make readme-table`.")
    lines = ["| recipe | command | headline (mean ± std over seeds) | seeds | the book "
             "(Fashion-MNIST) | ours vs the book | wall time | commit |",
             "|---|---|---|---|---|---|---|---|"]
    for r in records:
        if not r.get("run"):
            lines.append(f"| {r['target']} | `make recipe-{r['target']}` | no finished full "
                         "run | - | - | - | - | - |")
            continue
        lines.append(
            f"| {r['target']} | `make recipe-{r['target']}` | {_cell(r['headline'])} | "
            f"{_cell(r['seeds_note'])} | {_cell(r['book'])} | {_cell(r['agrees'] or '-')} | "
            f"{_duration(r['wall_time_s'])} | `{str(r['commit'])[:7]}` |")
    started = sorted(r["started"] for r in runs)
    commits = sorted({str(r["commit"])[:7] for r in runs})
    machines = sorted({f"{r['machine'].get('cpu', 'unknown CPU')}, "
                       f"{r['machine'].get('cpus', '?')} cores" for r in runs})
    loads = [r["machine"].get("load_1min") for r in runs if r["machine"].get("load_1min")
             is not None]
    total = sum(r["wall_time_s"] or 0 for r in runs)
    lines += ["", f"Written by `make readme-table` from the newest finished full run of each "
                  f"recipe (runs started {started[0]} to {started[-1]} UTC, at commit(s) "
                  f"{', '.join(commits)}; {_duration(total)} of runs in all) on "
                  f"{'; '.join(machines)}"
                  + (f", 1-minute load average {min(loads):g}-{max(loads):g} at the runs' "
                     "ends" if loads else "") + "."]
    kept = [r["target"] for r in runs if r.get("kept")]
    if kept:
        lines[-1] += (f" {len(kept)} row(s) kept from `{SNAPSHOT}` because the runs folder "
                      f"held no newer run of theirs when the table was written: "
                      f"{', '.join(kept)}.")
    return "\n".join(lines)


def write_readme(records: Sequence[dict], readme: Path | None = None) -> Path:
    """Replace the README's table between its markers, and save the records beside it.

    Args:
        records: `collect_records` output.
        readme: the README. Defaults to `None` (the repository's ``README.md``, `README`).

    Returns:
        The README's path.

    Raises:
        ValueError: if the README lacks the ``readme-table`` markers.
    """
    readme = Path(readme) if readme is not None else README
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no results-table markers: add the lines "
                         f"{README_START!r} and {README_END!r} where the table goes.")
    body = readme_table(records)
    text = text[:start + len(README_START)] + "\n" + body + "\n" + text[end:]
    (readme.with_name(SNAPSHOT)).write_text(json.dumps(list(records), indent=2) + "\n")
    readme.write_text(text)
    return readme


if __name__ == "__main__":
    raise SystemExit(main())
