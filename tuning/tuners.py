"""Keras Tuner's four tuners with per-trial records and progress, and the chief's server.

The tuners are Keras Tuner's own (`RandomSearch`, `Hyperband`, `BayesianOptimization`,
`GridSearch`) with one mixin that, for every trial, prints a progress line, seeds
execution ``k`` with ``seed + k``, and writes ``trial_<id>/recipes_trial.json`` (which
worker ran it, when, how many epochs, how many seconds) beside Keras Tuner's own
``trial.json``. A resumed search never reruns a trial whose ``trial.json`` says it
completed. The distributed pieces are in `tuning.cluster`.

Example:

```python
tuner = make_tuner("random", hypermodel, objective="val_accuracy", max_trials=5,
                   max_epochs=3, directory="runs/tuning", project_name="demo")
tuner.search(x, y, validation_data=(xv, yv), epochs=3)
```

Reference: O'Malley et al., "KerasTuner" (2019); Li et al., "Hyperband" (2018).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt

from recipes.checks import check_choice
from recipes.runs import write_json

__all__ = [
    "RECORD_NAME",
    "TUNERS",
    "BayesianTuner",
    "GridTuner",
    "HyperbandTuner",
    "RandomTuner",
    "make_tuner",
    "read_record",
]

RECORD_NAME = "recipes_trial.json"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


class _TrialRecorder:
    """Mixin for a Keras Tuner `Tuner`: progress lines, trial records, execution seeds."""

    progress_total: int | None = None

    def on_trial_begin(self, trial) -> None:  # noqa: D102
        super().on_trial_begin(trial)
        values = {k: v for k, v in trial.hyperparameters.values.items()
                  if not k.startswith("tuner/")}
        epochs = trial.hyperparameters.values.get("tuner/epochs")
        extra = f" (hyperband: to epoch {epochs})" if epochs else ""
        total = f"/{self.progress_total}" if self.progress_total else ""
        print(f"[{self.tuner_id}] trial {trial.trial_id}{total} start{extra}: "
              + " ".join(f"{k}={_fmt(v)}" for k, v in values.items()), flush=True)

    def run_trial(self, trial, *args: Any, **kwargs: Any):  # noqa: D102
        started = time.time()
        self._execution = 0
        histories: list = []
        try:
            histories = super().run_trial(trial, *args, **kwargs)
            return histories
        finally:
            epochs = sum(len(h.epoch) for h in histories
                         if isinstance(h, keras.callbacks.History))
            write_json(Path(self.get_trial_dir(trial.trial_id)) / RECORD_NAME, {
                "trial_id": trial.trial_id, "worker": self.tuner_id, "pid": os.getpid(),
                "started": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(),
                "seconds": round(time.time() - started, 2), "epochs_run": epochs,
            })

    def _build_and_fit_model(self, trial, *args: Any, **kwargs: Any):
        # Execution k of a trial is seeded seed + k (the hypermodel re-seeds in build).
        self.hypermodel.execution = getattr(self, "_execution", 0)
        self._execution = self.hypermodel.execution + 1
        return super()._build_and_fit_model(trial, *args, **kwargs)

    def on_trial_end(self, trial) -> None:  # noqa: D102
        super().on_trial_end(trial)
        ended = self.oracle.get_trial(trial.trial_id)
        record = read_record(self.get_trial_dir(trial.trial_id))
        best = self.oracle.get_best_trials(1)
        best_score = best[0].score if best else None
        name = self.oracle.objective.name
        score = "none" if ended.score is None else f"{ended.score:.4f}"
        best_text = "none" if best_score is None else f"{best_score:.4f}"
        print(f"[{self.tuner_id}] trial {trial.trial_id} {ended.status.lower()}: "
              f"{name}={score} after {record.get('epochs_run', '?')} epoch(s) in "
              f"{record.get('seconds', float('nan')):.1f} s; best so far {best_text}",
              flush=True)
        if ended.status != "COMPLETED" and trial.message:
            print(f"[{self.tuner_id}] trial {trial.trial_id} error:\n{trial.message}",
                  flush=True)


class RandomTuner(_TrialRecorder, kt.RandomSearch):
    """Keras Tuner's `RandomSearch` with trial records and progress lines."""


class HyperbandTuner(_TrialRecorder, kt.Hyperband):
    """Keras Tuner's `Hyperband` with trial records and progress lines."""


class BayesianTuner(_TrialRecorder, kt.BayesianOptimization):
    """Keras Tuner's `BayesianOptimization` with trial records and progress lines."""


class GridTuner(_TrialRecorder, kt.GridSearch):
    """Keras Tuner's `GridSearch` with trial records and progress lines."""


TUNERS = {"random": RandomTuner, "hyperband": HyperbandTuner, "bayesian": BayesianTuner,
          "grid": GridTuner}  # keyed by tuning.names.TUNER_NAMES


def make_tuner(
    kind: str,
    hypermodel: kt.HyperModel,
    *,
    objective: str,
    max_trials: int | None,
    max_epochs: int,
    directory: str | os.PathLike,
    project_name: str,
    seed: int = 42,
    executions_per_trial: int = 1,
    overwrite: bool = False,
    distribution_strategy: Any = None,
) -> kt.Tuner:
    """Return a tuner by name: `random`, `hyperband`, `bayesian` or `grid`.

    Args:
        kind: the tuner's name.
        hypermodel: the search space.
        objective: the metric to optimize, e.g. `"val_accuracy"` or `"val_macro_auc"`
            (lower is better for a loss, higher for anything else).
        max_trials: trials at most; for Hyperband a cap on top of its own schedule
            (`None`: the schedule alone).
        max_epochs: Hyperband's largest epoch budget (factor 3).
        directory: the tuning folder.
        project_name: the project's folder inside it.
        seed: the oracle's seed.
        executions_per_trial: models trained per trial (their metrics are averaged).
        overwrite: delete an existing project instead of resuming it.
        distribution_strategy: a `tf.distribute.Strategy` for each trial, or `None`.

    Returns:
        The tuner.

    Raises:
        ValueError: unknown name.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Fine-Tuning Neural Network
    Hyperparameters".
    """
    check_choice("tuner", kind, TUNERS)
    # Keras Tuner infers the direction of Keras's metrics only, not of val_macro_auc.
    goal = kt.Objective(objective, "min" if "loss" in objective else "max")
    common = dict(hypermodel=hypermodel, objective=goal, seed=seed,
                  directory=str(directory), project_name=project_name, overwrite=overwrite,
                  executions_per_trial=executions_per_trial,
                  distribution_strategy=distribution_strategy)
    if kind == "hyperband":
        tuner = HyperbandTuner(max_epochs=max_epochs, factor=3, **common)
        if max_trials and hasattr(tuner.oracle, "trials"):  # a cap, on the real oracle
            tuner.oracle.max_trials = int(max_trials)
    elif kind == "bayesian":
        try:  # Keras Tuner's Gaussian process needs them
            import scipy  # noqa: F401
            import sklearn  # noqa: F401
        except ImportError:
            raise RuntimeError("The bayesian tuner needs scipy and scikit-learn (Keras "
                               "Tuner's keras-tuner[bayesian] extra): pip install scipy "
                               "scikit-learn.") from None
        tuner = BayesianTuner(max_trials=max_trials,
                              num_initial_points=max(2, (max_trials or 6) // 3), **common)
    else:
        tuner = TUNERS[kind](max_trials=max_trials, **common)
    tuner.progress_total = max_trials
    if hasattr(tuner.oracle, "trials"):  # the real oracle (not a worker's client)
        _keep_completed(tuner.oracle)
    return tuner


def _keep_completed(oracle: Any) -> None:
    """After a reload, never retry a trial whose own file says it completed.

    Keras Tuner saves ``trial.json`` before ``oracle.json``; a search killed between the
    two reloads that trial as still running and would run it again.
    """
    done = [t for t in oracle._retry_queue
            if t in oracle.trials and oracle.trials[t].status == "COMPLETED"]
    for trial_id in done:
        oracle._retry_queue.remove(trial_id)
        if trial_id not in oracle.end_order:
            oracle.end_order.append(trial_id)


def read_record(trial_dir: str | os.PathLike) -> dict[str, Any]:
    """Read a trial's ``recipes_trial.json`` (an empty dict when there is none).

    Args:
        trial_dir: the ``trial_<id>`` folder.

    Returns:
        The record.
    """
    path = Path(trial_dir) / RECORD_NAME
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
