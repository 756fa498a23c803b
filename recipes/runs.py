"""Run folders: seeding, ``runs/<experiment>/<UTC timestamp>_s<seed>/`` and its files.

Every experiment writes the same files: ``config.json``, ``results.json`` (with the seed
and the library versions), ``history_<variant>.csv``, PNG figures and a ``report.md`` that
shows the results table and embeds the figures. These writers are the one place that
knows the layout; experiments, the tuner and the benchmarks call them. `read_history` is
the one reader of per-epoch values (a ``History``, a dict, a history CSV read back), for
the writers, the plots and the doctor's checks. Importing this module imports neither
Keras nor TensorFlow.

A run folder says whether it finished: `make_run_dir` creates it with an ``UNFINISHED``
file (`mark_unfinished`: when and by which process it started), and `mark_finished`
deletes that file once every result is written, as the run's last step. A run that
failed, was killed or is still going keeps it; `is_finished` tells the two apart (a
folder without ``results.json``, from before this marker, is unfinished too). JSON files
are written whole or not at all (`write_json` renames a complete temporary file).

Example:

```python
run_dir = make_run_dir("batch_norm", seed=42)    # holds UNFINISHED
write_json(run_dir / "config.json", config)
save_figure(fig, run_dir / "learning_curves.png")
write_json(run_dir / "results.json", results)
write_report(run_dir, "Batch normalization", table, figures=["learning_curves.png"])
mark_finished(run_dir)                           # is_finished(run_dir) is now True
```
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import platform
import socket
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import keras

UNFINISHED = "UNFINISHED"  # the marker file of a run folder that has not finished

__all__ = [
    "UNFINISHED",
    "git_commit",
    "intra_op_threads",
    "is_finished",
    "library_versions",
    "machine_info",
    "markdown_table",
    "make_run_dir",
    "mark_finished",
    "mark_unfinished",
    "read_history",
    "set_seed",
    "save_figure",
    "to_jsonable",
    "write_history",
    "write_json",
    "write_report",
]


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the backend (``keras.utils.set_random_seed``).

    That is all a CPU rerun needs to repeat its numbers bit for bit at the same
    `intra_op_threads` count. TensorFlow's op determinism
    (``tf.config.experimental.enable_op_determinism``) is not enabled: on the CPU it
    is not needed for that, does not remove the dependence on the thread count, and
    made ``python -m ch11.batch_norm --quick`` 1.11x slower in CPU time (1.17x in wall
    time; two runs each, interleaved, on 2 shared cores; issue 16).

    Args:
        seed: the seed; part of every config and of ``results.json``.
    """
    import keras

    keras.utils.set_random_seed(int(seed))


def make_run_dir(experiment: str, seed: int, root: str | os.PathLike = "runs") -> Path:
    """Create ``<root>/<experiment>/<UTC timestamp>_s<seed>/`` and return it.

    Args:
        experiment: the experiment's name (a folder name).
        seed: the run's seed, part of the folder name.
        root: the runs folder. Defaults to `"runs"` (ignored by git).

    Returns:
        The new folder (a ``-2``, ``-3`` ... suffix avoids collisions), holding only the
        ``UNFINISHED`` marker (`mark_unfinished`) until `mark_finished`.
    """
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    base = Path(root) / experiment / f"{stamp}_s{seed}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    mark_unfinished(path)
    return path


def mark_unfinished(run_dir: str | os.PathLike) -> Path:
    """Write the ``UNFINISHED`` marker: the run started and its results are not complete.

    `make_run_dir` calls it; call it yourself for a folder made otherwise (the tuner's
    project folder) or reused (a resumed search).

    Args:
        run_dir: the run folder (it must exist).

    Returns:
        The marker's path. It says when, where and by which process the run started.
    """
    path = Path(run_dir) / UNFINISHED
    path.write_text(
        f"This run started {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC (pid {os.getpid()} "
        f"on {socket.gethostname()}) and has not finished: it is still running, or it failed "
        "or was killed, and its results are incomplete. The run deletes this file as its "
        "last step.\n")
    return path


def mark_finished(run_dir: str | os.PathLike) -> Path:
    """Delete the ``UNFINISHED`` marker: call it last, once every result is written.

    Args:
        run_dir: the run folder.

    Returns:
        The run folder.
    """
    (Path(run_dir) / UNFINISHED).unlink(missing_ok=True)
    return Path(run_dir)


def is_finished(run_dir: str | os.PathLike) -> bool:
    """Whether a run folder holds a finished run.

    Args:
        run_dir: the run folder.

    Returns:
        `True` when it has ``results.json`` and no ``UNFINISHED`` marker; `False` for a
        run still going, failed or killed (marker present), and for a folder without
        ``results.json`` (a run from before the marker that never got that far).
    """
    run_dir = Path(run_dir)
    return (run_dir / "results.json").is_file() and not (run_dir / UNFINISHED).exists()


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on.

    Returns:
        A dict name -> version string.
    """
    import keras
    import matplotlib
    import tensorflow as tf

    versions = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "matplotlib": matplotlib.__version__,
    }
    try:
        import keras_tuner

        versions["keras_tuner"] = keras_tuner.__version__
    except ImportError:  # pragma: no cover - keras_tuner is in requirements.txt
        pass
    return versions


def intra_op_threads() -> int:
    """The threads TensorFlow splits one operation over (its intra-op parallelism).

    TensorFlow's CPU kernels (matrix products, convolutions, batch-norm sums) cut their
    sums into one part per thread, so a result's last digits depend on this count, and
    a long training turns them into different accuracies. Nothing else varies between
    reruns on one machine: the same seed and the same count give the same numbers,
    whatever the load and the cores the run may use (measured: ``taskset``, 1 or 2
    threads, ``TF_NUM_INTEROP_THREADS``). The count defaults to the cores the process may
    use (``taskset``, a container's cpuset change it); the environment variable
    ``TF_NUM_INTRAOP_THREADS=N``, read when TensorFlow starts, pins it, e.g. to repeat
    a run made on more or fewer cores. The experiments write it to ``results.json``.

    Returns:
        The count in effect: ``tf.config.threading``'s setting, else the environment
        variable's, else the number of cores the process may run on.
    """
    import tensorflow as tf

    configured = tf.config.threading.get_intra_op_parallelism_threads()
    if configured > 0:
        return int(configured)
    env = os.environ.get("TF_NUM_INTRAOP_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    if hasattr(os, "sched_getaffinity"):  # what TensorFlow counts on Linux
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, numpy values, paths and DataFrames to JSON-ready values.

    Args:
        obj: any nested structure.

    Returns:
        The same structure made of dicts, lists, str, int, float, bool and None
        (NaN and infinities become None, which JSON lacks).
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, pd.DataFrame):
        return to_jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as indented JSON (through `to_jsonable`), whole or not at all.

    The text goes to a temporary file beside `path`, renamed over it once complete, so
    a run killed mid-write never leaves half a JSON file.

    Args:
        path: the file.
        obj: what to write.

    Returns:
        The path.
    """
    path = Path(path)
    text = json.dumps(to_jsonable(obj), indent=2) + "\n"
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def read_history(history: Any) -> dict[str, list[float]]:
    """The per-epoch values of a training run, whatever holds them.

    Example:

    ```python
    read_history(model.fit(x, y, epochs=2, initial_epoch=1))
    # {"epoch": [2], "loss": [0.31]}
    ```

    Args:
        history: a Keras ``History``, a dict of per-epoch lists, a DataFrame (e.g. a
            ``history_<variant>.csv`` read back), or ``None``.

    Returns:
        Name -> list of floats, one per epoch (empty for ``None``). The ``epoch`` key holds
        the 1-based epoch numbers when the source has them: a ``History``'s ``epoch``
        list (so the second ``fit`` of `recipes.transfer.fine_tune`, which starts at
        ``initial_epoch``, is numbered after the first) or an ``epoch`` column or key.
    """
    if history is None:
        return {}
    epochs = None
    if hasattr(history, "history"):  # a keras.callbacks.History
        epochs = getattr(history, "epoch", None)
        history = history.history
    if isinstance(history, pd.DataFrame):
        history = history.to_dict(orient="list")
    data = {str(k): [float(v) for v in values] for k, values in dict(history).items()}
    if "epoch" in data:
        data["epoch"] = [int(e) for e in data["epoch"]]
    elif epochs is not None:
        data = {"epoch": [int(e) + 1 for e in epochs], **data}
    return data


def write_history(
    run_dir: str | os.PathLike, variant: str, history: keras.callbacks.History | Mapping
) -> Path:
    """Write one variant's per-epoch history as ``history_<variant>.csv``.

    Args:
        run_dir: the run folder.
        variant: the variant's name (used in the file name).
        history: a Keras ``History`` or a dict of per-epoch lists (see `read_history`).

    Returns:
        The CSV path; its first column is the 1-based ``epoch``.
    """
    data = read_history(history)
    epochs = data.pop("epoch", None)
    frame = pd.DataFrame(data)
    if epochs is None or len(epochs) != len(frame):
        epochs = np.arange(1, len(frame) + 1)
    frame.insert(0, "epoch", epochs)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in variant)
    path = Path(run_dir) / f"history_{safe}.csv"
    frame.to_csv(path, index=False)
    return path


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG and close it.

    Args:
        fig: the figure.
        path: the PNG path.
        dpi: resolution. Defaults to `110`.

    Returns:
        The path.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def markdown_table(table: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (floats to 4 significant digits, ``|`` escaped).

    Args:
        table: the table (its index is not shown: ``reset_index()`` first to keep it).

    Returns:
        The Markdown text.
    """

    def fmt(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return "nan" if not math.isfinite(v) else f"{v:.4g}"
        return str(v).replace("|", "\\|")

    header = "| " + " | ".join(str(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def write_report(
    run_dir: str | os.PathLike,
    title: str,
    table: pd.DataFrame | None = None,
    *,
    intro: str = "",
    figures: Sequence[str | tuple[str, str]] = (),
    notes: Iterable[str] = (),
    sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write ``report.md``: title, intro, results table, findings, extra sections, figures.

    Args:
        run_dir: the run folder; figure paths are relative to it.
        title: the report's title.
        table: the results table.
        intro: a paragraph under the title (what was compared, on what data).
        figures: PNG file names, or ``(caption, file name)`` pairs.
        notes: bullet points (what the run shows, caveats).
        sections: extra ``(heading, markdown)`` sections.

    Returns:
        The report's path.
    """
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro.strip(), ""]
    if table is not None:
        lines += ["## Results", "", markdown_table(table), ""]
    notes = list(notes)
    if notes:
        lines += ["## What this run shows", ""] + [f"- {n}" for n in notes] + [""]
    for heading, body in sections:
        lines += [f"## {heading}", "", body.strip(), ""]
    if figures:
        lines += ["## Figures", ""]
        for fig in figures:
            caption, name = (fig, fig) if isinstance(fig, str) else fig
            lines += [f"![{caption}]({name})", ""]
    lines.append(f"_Written {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC._")
    path = Path(run_dir) / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def git_commit(path: str | os.PathLike | None = None) -> str:
    """The commit the code runs at: ``git rev-parse HEAD``, ``-dirty`` when files changed.

    Args:
        path: a folder inside the repository. Defaults to `None` (this package's folder).

    Returns:
        The 40-character hash (with ``-dirty`` when tracked files differ from it), or
        ``"unknown"`` outside a git checkout or without git.
    """
    import subprocess

    cwd = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                 cwd=cwd, capture_output=True, text=True, timeout=10,
                                 check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if changed else head or "unknown"


def machine_info() -> dict[str, Any]:
    """What a run's wall time depends on: the host, CPU, core count and load at the end.

    Returns:
        A dict with ``host``, ``cpu`` (model name where Linux says it), ``cpus`` and
        ``load_1min`` (the 1-minute load average, NaN where unavailable).
    """
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        load = math.nan
    return {"host": socket.gethostname(), "cpu": cpu, "cpus": os.cpu_count(), "load_1min": load}
