"""What a search found: the trials table and its plots.

`trials_table` reads Keras Tuner's oracle (every trial's status, hyperparameters, score and
best step) and this package's trial records (worker, epochs run, seconds) into one pandas
table, one row per trial and one column per hyperparameter (inactive conditional ones
empty). Hyperband's bookkeeping values ``tuner/epochs`` etc. become ``hb_epochs``,
``hb_initial_epoch``, ``hb_bracket``, ``hb_round`` and ``hb_from_trial``.

Example:

```python
table = trials_table(tuner.oracle, tuner.project_dir)
table.to_csv("trials.csv", index=False)
save_figure(plot_objective(table, "val_accuracy"), "objective_per_trial.png")
```

The best model's test-set AUC is `recipes.metrics.roc_auc_per_class` (`tuning.final`).

Reference: Géron, Hands-On ML (3rd ed.), ch. 10 (comparing hyperparameter searches).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras_tuner as kt
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tuning.tuners import read_record

__all__ = [
    "TABLE_FIXED_COLUMNS",
    "hyperparameter_columns",
    "plot_hyperparameters",
    "plot_objective",
    "trials_table",
]

TABLE_FIXED_COLUMNS = ("trial_id", "status", "worker", "best_objective", "best_epoch",
                       "epochs_run", "seconds")
_HYPERBAND = {"tuner/epochs": "hb_epochs", "tuner/initial_epoch": "hb_initial_epoch",
              "tuner/bracket": "hb_bracket", "tuner/round": "hb_round",
              "tuner/trial_id": "hb_from_trial"}


def trials_table(oracle: Any, project_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per trial: id, status, worker, hyperparameters, objective, epochs, seconds.

    Args:
        oracle: the tuner's oracle (local or the chief's).
        project_dir: the project folder with the ``trial_<id>`` folders.

    Returns:
        A DataFrame ordered by trial id. Columns: ``trial_id``, ``status``, ``worker``,
        every hyperparameter of the search space in declaration order, Hyperband's
        columns when present, ``best_objective`` (the trial's score), ``best_epoch``
        (1-based, counted from the model's first epoch, so a Hyperband trial continued
        from epoch 3 that peaks in its first epoch says 4), ``epochs_run`` (epochs this
        trial trained, summed over its executions), ``seconds``, then the other metrics
        at the best epoch.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10.
    """
    names = [hp.name for hp in oracle.get_space().space]
    rows = []
    metric_names: list[str] = []
    for trial_id in sorted(oracle.trials, key=lambda t: int(t)):
        trial = oracle.trials[trial_id]
        record = read_record(Path(project_dir) / f"trial_{trial_id}")
        values = trial.hyperparameters.values
        row: dict[str, Any] = {"trial_id": trial_id, "status": trial.status,
                               "worker": record.get("worker", "")}
        row.update({name: values.get(name, np.nan) for name in names})
        row.update({col: values[key] for key, col in _HYPERBAND.items() if key in values})
        row["best_objective"] = np.nan if trial.score is None else float(trial.score)
        row["best_epoch"] = np.nan if trial.best_step is None or trial.score is None \
            else int(values.get("tuner/initial_epoch", 0)) + int(trial.best_step) + 1
        row["epochs_run"] = record.get("epochs_run", np.nan)
        row["seconds"] = record.get("seconds", np.nan)
        for metric, history in trial.metrics.metrics.items():
            if metric not in metric_names:
                metric_names.append(metric)
            value = history.get_last_value()  # reported once, at the best epoch
            row[metric] = np.nan if value is None else float(value)
        rows.append(row)
    hb_cols = [c for c in _HYPERBAND.values() if any(c in r for r in rows)]
    columns = ["trial_id", "status", "worker", *names, *hb_cols, "best_objective",
               "best_epoch", "epochs_run", "seconds", *metric_names]
    table = pd.DataFrame(rows, columns=columns)
    integer_hps = [hp.name for hp in oracle.get_space().space if _is_integer_hp(hp)]
    for name in [*integer_hps, *hb_cols, "best_epoch", "epochs_run"]:
        if name in table and name != "hb_from_trial":  # ints stay ints beside empty cells
            table[name] = pd.to_numeric(table[name]).astype("Int64")
    return table


def _is_integer_hp(hp: Any) -> bool:
    if isinstance(hp, kt.engine.hyperparameters.Int):
        return True
    values = getattr(hp, "values", None)
    return isinstance(hp, kt.engine.hyperparameters.Choice) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in values or [None])


def hyperparameter_columns(table: pd.DataFrame) -> list[str]:
    """The hyperparameter columns of a `trials_table` (not the fixed or metric ones).

    Args:
        table: a `trials_table`.

    Returns:
        The column names between ``worker`` and ``best_objective``.
    """
    cols = list(table.columns)
    return cols[cols.index("worker") + 1: cols.index("best_objective")]


def plot_objective(table: pd.DataFrame, objective: str, direction: str = "max") -> Figure:
    """The objective of each trial in order, the running best, colored by worker.

    Args:
        table: a `trials_table`.
        objective: the objective's name (axis label).
        direction: `"max"` or `"min"`, for the running best.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    order = np.arange(1, len(table) + 1)
    scores = table["best_objective"].to_numpy(dtype=float)
    for worker in sorted(table["worker"].fillna("").unique()):
        mask = (table["worker"].fillna("") == worker).to_numpy()
        ax.scatter(order[mask], scores[mask], label=worker or "unknown", zorder=3)
    filled = np.where(np.isnan(scores), -np.inf if direction == "max" else np.inf, scores)
    best = np.maximum.accumulate(filled) if direction == "max" else np.minimum.accumulate(filled)
    best = np.where(np.isfinite(best), best, np.nan)
    ax.step(order, best, where="post", color="black", alpha=0.6, label="best so far")
    ax.set_xlabel("trial (in creation order)")
    ax.set_ylabel(objective)
    ax.set_title(f"{objective} per trial")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def _label(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))  # 16.0 (a column with empty cells) -> 16
    return str(value)


def _is_log_scale(values: np.ndarray) -> bool:
    positive = values[values > 0]
    return len(positive) == len(values) and len(values) > 1 and \
        positive.max() / positive.min() >= 20


def plot_hyperparameters(table: pd.DataFrame, objective: str,
                         names: Sequence[str] | None = None) -> Figure:
    """Each hyperparameter against the objective, one panel each.

    Numbers are scattered (log x axis for rates spanning 20x or more), categories are
    shown as jittered points per value with their mean marked.

    Args:
        table: a `trials_table`.
        objective: the objective's name (axis label).
        names: the hyperparameters to show. Defaults to all of them.

    Returns:
        The figure.
    """
    names = list(names) if names is not None else hyperparameter_columns(table)
    cols = min(4, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    rng = np.random.default_rng(0)
    y_all = table["best_objective"].to_numpy(dtype=float)
    for ax, name in zip(axes.flat, names):
        col = table[name]
        keep = col.notna().to_numpy() & ~np.isnan(y_all)
        values, y = col[keep], y_all[keep]
        ax.set_title(name, fontsize="medium")
        if values.empty:
            ax.text(0.5, 0.5, "inactive in every trial", ha="center", va="center",
                    transform=ax.transAxes, fontsize="small")
            ax.set_xticks([])
            continue
        numeric = pd.api.types.is_numeric_dtype(values) and values.nunique() > 4
        if numeric:
            x = values.to_numpy(dtype=float)
            ax.scatter(x, y, s=18)
            if _is_log_scale(x):
                ax.set_xscale("log")
        else:
            cats = sorted(values.unique(), key=lambda v: (str(type(v)), v))
            pos = {c: i for i, c in enumerate(cats)}
            x = np.array([pos[v] for v in values], dtype=float)
            ax.scatter(x + rng.uniform(-0.12, 0.12, len(x)), y, s=18, alpha=0.8)
            means = [y[x == i].mean() for i in range(len(cats))]
            ax.scatter(range(len(cats)), means, marker="_", s=300, color="black")
            ax.set_xticks(range(len(cats)), [_label(c) for c in cats], fontsize="small")
            ax.set_xlim(-0.5, len(cats) - 0.5)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(objective)
    fig.suptitle(f"Hyperparameters vs {objective}")
    fig.tight_layout()
    return fig
