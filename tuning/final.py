"""The end of a search: trials table, plots, best model retrained and tested, report.

`finish_search` runs once the trials are over (in a local search, or on the chief of a
distributed one): it writes ``trials.csv`` and prints the best rows, draws the two
plots, rebuilds the best hyperparameters, trains them on train + validation for the
best trial's epoch count, saves ``best_model.keras``, evaluates it on the test set
(accuracy and one-vs-rest AUC per class), writes ``results.json`` and ``report.md``, and
last deletes the project's ``UNFINISHED`` marker (`recipes.runs.mark_finished`).

Reference: Géron, Hands-On ML (3rd ed.), ch. 10 ("retrain the best model on the full
training set"), ch. 2 (evaluate once on the test set).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from recipes.metrics import roc_auc_per_class
from recipes.runs import library_versions, mark_finished, save_figure, write_json, write_report
from tuning.config import SearchConfig
from tuning.data import TuningData
from tuning.results import (
    hyperparameter_columns,
    plot_hyperparameters,
    plot_objective,
    trials_table,
)

__all__ = ["evaluate", "finish_search", "retrain_best"]


def retrain_best(tuner: Any, hypermodel: Any, data: TuningData, *,
                 fit_extra: dict[str, Any] | None = None, strategy: Any = None,
                 verbose: int = 0) -> tuple[keras.Model, Any, int]:
    """Train the best trial's hyperparameters on train + validation.

    Epochs: the best trial's best epoch, counted from the start (Hyperband's continued
    trials add their ``tuner/initial_epoch``). No validation data, so no early stopping.

    Args:
        tuner: the tuner after the search.
        hypermodel: its hypermodel.
        data: the data.
        fit_extra: more `fit` arguments (``class_weight``).
        strategy: the `tf.distribute` strategy of the search, or `None`.
        verbose: Keras's verbosity.

    Returns:
        ``(model, best trial, epochs)``.

    Raises:
        RuntimeError: no trial completed.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10.
    """
    completed = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    if not completed:
        raise RuntimeError("No trial completed, so there is no best model: see the trial "
                           "errors above (or trial_*/trial.json).")
    best = tuner.oracle.get_best_trials(1)[0]
    hp = best.hyperparameters
    epochs = int(hp.values.get("tuner/initial_epoch", 0)) + int(best.best_step or 0) + 1
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    keras.backend.clear_session()
    hypermodel.execution = 0
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model = hypermodel.build(hp)
    hypermodel.fit(hp, model, x, y, epochs=epochs, verbose=verbose, **(fit_extra or {}))
    return model, best, epochs


def evaluate(model: keras.Model, data: TuningData) -> dict[str, Any]:
    """Test-set accuracy and one-vs-rest AUC per class (`recipes.metrics.roc_auc_per_class`).

    Args:
        model: a trained classifier with softmax outputs.
        data: the data (its test split is used).

    Returns:
        ``{"accuracy", "per_class_auc": {class: auc}, "mean_auc", "test_size"}``; the AUC
        of a class absent from the test set is NaN, and so is every AUC when the model's
        outputs are not finite (a retraining that diverged), with a ``note`` saying so.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3 (accuracy, ROC AUC).
    """
    proba = model.predict(data.x_test, batch_size=256, verbose=0)
    accuracy = float(np.mean(proba.argmax(axis=1) == data.y_test))
    test: dict[str, Any] = {}
    if np.isfinite(proba).all():
        aucs = roc_auc_per_class(data.y_test, proba)["auc"].to_numpy(dtype=float)
    else:
        aucs = np.full(proba.shape[1], np.nan)
        test["note"] = (f"{int(np.sum(~np.isfinite(proba)))} model outputs are not finite "
                        "(the retraining diverged): AUC undefined.")
    return {
        "accuracy": accuracy,
        "per_class_auc": {name: float(a) for name, a in zip(data.class_names, aucs)},
        "mean_auc": float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan"),
        "test_size": int(len(data.y_test)),
        **test,
    }


def _top(table: pd.DataFrame, k: int, direction: str) -> pd.DataFrame:
    ranked = table.sort_values("best_objective", ascending=direction == "min",
                               na_position="last", kind="stable")
    keep = ["trial_id", "status", "worker", *hyperparameter_columns(table),
            "best_objective", "best_epoch", "epochs_run", "seconds"]
    return ranked[[c for c in keep if c in ranked.columns]].head(k)


def finish_search(tuner: Any, hypermodel: Any, data: TuningData, config: SearchConfig,
                  *, fit_extra: dict[str, Any], strategy: Any, started: float) -> dict[str, Any]:
    """Write every output of a finished search into the project folder.

    Args:
        tuner: the tuner (local, or the chief's).
        hypermodel: its hypermodel.
        data: the data.
        config: the search's (resolved) settings.
        fit_extra: more `fit` arguments for the retraining.
        strategy: the `tf.distribute` strategy, or `None`.
        started: `time.perf_counter()` at the start.

    Returns:
        ``{"project_dir", "table", "best_hyperparameters", "best_trial", "test"}``.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10.
    """
    project = Path(tuner.project_dir)
    objective = tuner.oracle.objective.name
    direction = tuner.oracle.objective.direction
    table = trials_table(tuner.oracle, project)
    table.to_csv(project / "trials.csv", index=False)
    top = _top(table, config.top_k, direction)
    with pd.option_context("display.width", 200, "display.max_columns", 40):
        print(f"\n{len(table)} trial(s); top {len(top)} by {objective}:\n"
              + top.to_string(index=False), flush=True)
    figures = [("Objective per trial", "objective_per_trial.png"),
               ("Each hyperparameter vs the objective", "hyperparameters_vs_objective.png")]
    save_figure(plot_objective(table, objective, direction), project / figures[0][1])
    save_figure(plot_hyperparameters(table, objective), project / figures[1][1], dpi=80)
    summary: dict[str, Any] = {"project_dir": project, "table": table}
    test: dict[str, Any] = {}
    sections = []
    if config.retrain:
        t0 = time.perf_counter()
        model, best, epochs = retrain_best(tuner, hypermodel, data, fit_extra=fit_extra,
                                           strategy=strategy, verbose=2 if config.verbose else 0)
        model.save(project / "best_model.keras")
        test = {**evaluate(model, data), "retrain_epochs": epochs,
                "retrain_seconds": round(time.perf_counter() - t0, 1)}
        values = {k: v for k, v in best.hyperparameters.values.items()
                  if not k.startswith("tuner/")}
        summary.update(best_trial=best.trial_id, best_hyperparameters=values)
        auc_rows = "\n".join(f"| {name} | {auc:.4f} |"
                             for name, auc in test["per_class_auc"].items())
        sections = [
            ("Best hyperparameters", "\n".join(f"- `{k}`: {v}" for k, v in values.items())
             + f"\n\nSpec: `{hypermodel.spec(best.hyperparameters.copy())!r}`"),
            ("Best model on the test set",
             f"Trial {best.trial_id} ({objective} {best.score:.4f}) retrained on train + "
             f"validation for {epochs} epoch(s), saved as `best_model.keras` "
             f"(raw pixels in, `import recipes; keras.models.load_model(path)`).\n\n"
             f"- test accuracy: **{test['accuracy']:.4f}** on {test['test_size']:,} images\n"
             f"- mean one-vs-rest AUC: {test['mean_auc']:.4f}\n\n"
             f"| class | AUC |\n|---|---|\n{auc_rows}"),
        ]
        print(f"\nBest trial {best.trial_id}: {objective}={best.score:.4f}; retrained "
              f"{epochs} epoch(s); test accuracy {test['accuracy']:.4f}, mean AUC "
              f"{test['mean_auc']:.4f}", flush=True)
    summary["test"] = test
    wall = time.perf_counter() - started
    write_json(project / "results.json", {
        "config": config, "seed": config.seed, "objective": objective,
        "direction": direction, "trials": len(table),
        "completed": int((table["status"] == "COMPLETED").sum()),
        "best_trial": summary.get("best_trial"),
        "best_hyperparameters": summary.get("best_hyperparameters"),
        "best_objective": float(top["best_objective"].iloc[0]) if len(top) else None,
        "test": test, "wall_time_s": round(wall, 1), "versions": library_versions(),
    })
    workers = sorted(w for w in table["worker"].unique() if w)
    notes = [f"{data.description}.",
             f"{len(table)} trial(s) by the {config.tuner} tuner; workers: "
             f"{', '.join(workers) or 'unknown'}; each trial stops early after "
             f"{config.patience} epoch(s) without progress of {objective}.",
             f"Wall time {wall:.0f} s."]
    if config.quick:
        notes.append("--quick: a small slice and one epoch, a smoke run, not a result.")
    write_report(project, f"Hyperparameter search: {config.model} on {config.data}", top,
                 intro=f"Top {len(top)} of {len(table)} trials by `{objective}` "
                       f"({direction}); every trial is in `trials.csv`.",
                 figures=figures, notes=notes, sections=sections)
    mark_finished(project)  # last: the search is finished
    print(f"Trials: {project / 'trials.csv'}\nReport: {project / 'report.md'}", flush=True)
    return summary
