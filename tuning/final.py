"""The end of a search: trials table, plots, best model retrained and tested, report.

`finish_search` runs once the trials are over (in a local search, or on the chief of a
distributed one): it writes ``trials.csv`` and prints the best rows, draws the two
plots, rebuilds the best hyperparameters, trains them on train + validation for the
best trial's epoch count, saves ``best_model.keras``, evaluates it on the test set
(accuracy, and `recipes.metrics.class_report` per class: AUC, precision, recall), writes
``results.json`` and ``report.md``, and last deletes the project's ``UNFINISHED`` marker
(`recipes.runs.mark_finished`). For the fish photos the report also says where each split
came from (a test folder, or a held-out part), names the rare class, and compares the best
model with the hand recipe of ``make recipe-fish`` on the same test photos
(`tuning.compare`).

Reference: Géron, Hands-On ML (3rd ed.), ch. 10 ("retrain the best model on the full
training set"), ch. 2 (evaluate once on the test set).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from recipes.metrics import class_report
from recipes.runs import (
    library_versions,
    machine_info,
    mark_finished,
    markdown_table,
    save_figure,
    write_json,
    write_report,
)
from tuning.compare import comparison_section, find_compare_run, score_hand_recipe
from tuning.config import SearchConfig
from tuning.data import TuningData, load_data
from tuning.results import (
    hyperparameter_columns,
    plot_hyperparameters,
    plot_objective,
    trials_table,
)

__all__ = ["evaluate", "finish_search", "retrain_best", "score_checkpoint", "trial_data"]


def trial_data(data: TuningData | Mapping[int, TuningData], hp: Any) -> TuningData:
    """The data a trial trained on: `data`, or its ``image_size``'s from a mapping of sizes.

    Args:
        data: one `TuningData`, or ``{image_size: TuningData}`` (the fish search).
        hp: the trial's hyperparameters.

    Returns:
        The `TuningData`.
    """
    if isinstance(data, Mapping):
        return data[int(hp.get("image_size"))]
    return data


def retrain_best(tuner: Any, hypermodel: Any, data: TuningData | Mapping[int, TuningData], *,
                 fit_extra: dict[str, Any] | None = None, strategy: Any = None,
                 verbose: int = 0) -> tuple[keras.Model, Any, int]:
    """Train the best trial's hyperparameters on train + validation.

    Epochs: the best trial's best epoch, counted from the start (Hyperband's continued
    trials add their ``tuner/initial_epoch``). No validation data, so no early stopping.

    Args:
        tuner: the tuner after the search.
        hypermodel: its hypermodel.
        data: the data (or ``{image_size: TuningData}``: the best trial's size is used).
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
    data = trial_data(data, hp)
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    keras.backend.clear_session(free_memory=False)
    hypermodel.execution = 0
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model = hypermodel.build(hp)
    hypermodel.fit(hp, model, x, y, epochs=epochs, verbose=verbose, **(fit_extra or {}))
    return model, best, epochs


def evaluate(model: keras.Model, data: TuningData) -> dict[str, Any]:
    """Test-set accuracy and, per class, `recipes.metrics.class_report` (AUC, P, R, F1).

    Args:
        model: a trained classifier with softmax outputs.
        data: the data (its test split is used).

    Returns:
        ``{"accuracy", "correct", "per_class_auc": {class: auc}, "mean_auc", "test_size",
        "per_class": [{class, auc, precision, recall, f1, support}, ...]}``; the AUC of a
        class absent from the test set is NaN, and so is every AUC when the model's
        outputs are not finite (a retraining that diverged), with a ``note`` saying so.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3 (accuracy, precision/recall, ROC AUC).
    """
    proba = np.asarray(model.predict(data.x_test, batch_size=256, verbose=0), dtype="float64")
    correct = int(np.sum(proba.argmax(axis=1) == data.y_test))
    test: dict[str, Any] = {}
    finite = np.isfinite(proba).all()
    if not finite:
        test["note"] = (f"{int(np.sum(~np.isfinite(proba)))} model outputs are not finite "
                        "(the retraining diverged): AUC undefined.")
    report = class_report(data.y_test, np.where(np.isfinite(proba), proba, 0.0),
                          data.class_names)
    if not finite:
        report["auc"] = np.nan
    aucs = report["auc"].to_numpy(dtype=float)
    return {
        "accuracy": correct / len(data.y_test),
        "correct": correct,
        "per_class_auc": {name: float(a) for name, a in zip(data.class_names, aucs)},
        "mean_auc": float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan"),
        "test_size": int(len(data.y_test)),
        "per_class": report[["class", "auc", "precision", "recall", "f1", "support"]]
        .to_dict("records"),
        **test,
    }


def score_checkpoint(tuner: Any, trial: Any, data: TuningData) -> dict[str, Any]:
    """The best trial's own checkpoint scored on the test set, beside its retraining.

    Keras Tuner keeps, per trial, the weights of its best epoch on the validation split
    (trained on the training split only): the like-for-like counterpart of a model
    chosen by early stopping, such as the hand recipe. The retraining on train +
    validation has no validation split to stop on, so it ends wherever its last epoch
    lands; a report that shows both says how much that costs.

    Args:
        tuner: the tuner after the search.
        trial: its best trial.
        data: the data that trial trained on (its test split is used).

    Returns:
        `evaluate`'s dict, or ``{"error": why}`` when the checkpoint cannot be read (e.g.
        a worker's file missing from a chief's non-shared folder).
    """
    try:
        with warnings.catch_warnings():  # the file holds the trial's optimizer state too; a
            # model that only predicts has no use for it, and Keras says it skips it
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
            model = tuner.load_model(trial)
    except Exception as error:  # noqa: BLE001 - reported, the retrained model still counts
        return {"error": f"trial {trial.trial_id}'s checkpoint could not be loaded: "
                         f"{type(error).__name__}: {error}"}
    return evaluate(model, data)


def _top(table: pd.DataFrame, k: int, direction: str) -> pd.DataFrame:
    ranked = table.sort_values("best_objective", ascending=direction == "min",
                               na_position="last", kind="stable")
    keep = ["trial_id", "status", "worker", *hyperparameter_columns(table),
            "best_objective", "best_epoch", "epochs_run", "seconds"]
    return ranked[[c for c in keep if c in ranked.columns]].head(k)


def _checkpoint_text(test: dict[str, Any], trial_id: str) -> str:
    """The report's paragraph on the best trial's own checkpoint (see `score_checkpoint`)."""
    ckpt = test["checkpoint"]
    if "error" in ckpt:
        return f"The search's own checkpoint was not scored: {ckpt['error']}."
    gap = test["correct"] - ckpt["correct"]
    why = ("it has more photos but no validation split to stop on, so it keeps whatever its "
           "last epoch gives" if gap < 0 else
           "the validation photos it also trains on make up for having no split to stop on")
    return (f"Trial {trial_id}'s own checkpoint (trained on the training split only, the "
            f"weights of its best validation epoch) on the same test photos: accuracy "
            f"**{ckpt['accuracy']:.4f}** ({ckpt['correct']:,} of {ckpt['test_size']:,}), mean "
            f"AUC {ckpt['mean_auc']:.4f}. The retraining on train + validation scores "
            f"{gap:+d} photo(s) against it: {why}.")


def _fish_sections(config: SearchConfig, data: TuningData | Mapping[int, TuningData],
                   best_data: TuningData, test: dict[str, Any], report: Any,
                   rare: int | None) -> tuple[list[tuple[str, str]], dict[str, Any], list[str]]:
    """The fish report's sections: the splits, the rare class, the hand recipe beside the best.

    Returns:
        ``(sections, facts for results.json, notes)``.
    """
    sections, facts, notes = [], {}, []
    counts = best_data.counts.reset_index()
    sources = "\n".join(f"- {split}: {text}" for split, text in best_data.sources.items())
    if not best_data.sources.get("test", "").startswith("folder"):
        notes.append("No --test-dir: the test figures come from a held-out part of the "
                     f"{'training' if config.test_from == 'train' else 'validation'} split, "
                     "not from a separate test folder.")
    sections.append(("Photos", f"{sources}\n\n{markdown_table(counts)}"))
    if rare is not None:
        name = best_data.class_names[rare]
        n = {split: int((y == rare).sum()) for split, y in
             (("train", best_data.y_train), ("validation", best_data.y_val),
              ("test", best_data.y_test))}
        facts["rare_class"] = name
        sections.append(("The rare class", (
            f"The smallest class of the training split is **{name}**: {n['train']} training, "
            f"{n['validation']} validation and {n['test']} test photo(s). "
            f"`--objective val_rare_recall` optimizes its validation recall; every trial's "
            f"per-class validation AUC (`val_auc_<class>`) is in `trials.csv`.")))
    if report is None or rare is None:
        return sections, facts, notes
    folder, why = find_compare_run(config)
    if folder is None:
        notes.append(why)
        facts["hand_recipe"] = None
        return sections, facts, notes

    def test_at(size: int) -> tuple[Any, Any]:
        if isinstance(data, Mapping) and size in data:
            return data[size].x_test, data[size].y_test
        train, val, test_dir = config.fish_folders()
        other = load_data("fish", train_dir=train, val_dir=val, test_dir=test_dir,
                          test_from=config.test_from, test_split=config.test_split,
                          validation_split=config.validation_split, image_size=size,
                          seed=config.seed)
        return other.x_test, other.y_test

    hand = score_hand_recipe(folder, test_at, best_data.class_names)
    best = {**test, "report": report}
    body, verdict = comparison_section(best, hand, best_data.class_names[rare])
    sections.append(("Best trial vs the hand recipe", f"{why}\n\n{body}"))
    notes.append(verdict)
    facts["hand_recipe"] = {"run": hand["run"], "image_size": hand["image_size"],
                            "accuracy": hand["accuracy"], "macro_auc": hand["macro_auc"],
                            "per_class": hand["report"][["class", "auc", "precision", "recall",
                                                         "f1", "support"]].to_dict("records"),
                            "verdict": verdict}
    print(f"\n{verdict}", flush=True)
    return sections, facts, notes


def finish_search(tuner: Any, hypermodel: Any, data: TuningData | Mapping[int, TuningData],
                  config: SearchConfig, *, fit_extra: dict[str, Any], strategy: Any,
                  started: float, rare: int | None = None) -> dict[str, Any]:
    """Write every output of a finished search into the project folder.

    Args:
        tuner: the tuner (local, or the chief's).
        hypermodel: its hypermodel.
        data: the data (or ``{image_size: TuningData}`` for the fish search).
        config: the search's (resolved) settings.
        fit_extra: more `fit` arguments for the retraining.
        strategy: the `tf.distribute` strategy, or `None`.
        started: `time.perf_counter()` at the start.
        rare: the index of the rare class (the smallest of the training split).

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
    report = None
    best_data = next(iter(data.values())) if isinstance(data, Mapping) else data
    if config.retrain:
        t0 = time.perf_counter()
        model, best, epochs = retrain_best(tuner, hypermodel, data, fit_extra=fit_extra,
                                           strategy=strategy, verbose=2 if config.verbose else 0)
        best_data = trial_data(data, best.hyperparameters)
        model.save(project / "best_model.keras")
        test = {**evaluate(model, best_data), "retrain_epochs": epochs,
                "retrain_seconds": round(time.perf_counter() - t0, 1)}
        test["checkpoint"] = score_checkpoint(tuner, best, best_data)
        report = pd.DataFrame(test["per_class"])
        values = {k: v for k, v in best.hyperparameters.values.items()
                  if not k.startswith("tuner/")}
        summary.update(best_trial=best.trial_id, best_hyperparameters=values)
        per_class = report.rename(columns={"auc": "AUC"})
        sections = [
            ("Best hyperparameters", "\n".join(f"- `{k}`: {v}" for k, v in values.items())
             + f"\n\nSpec: `{hypermodel.spec(best.hyperparameters.copy())!r}`"),
            ("Best model on the test set",
             f"Trial {best.trial_id} ({objective} {best.score:.4f}) retrained on train + "
             f"validation for {epochs} epoch(s), saved as `best_model.keras` "
             f"(raw pixels in, `import recipes; keras.models.load_model(path)`).\n\n"
             f"- test accuracy: **{test['accuracy']:.4f}** ({test['correct']:,} of "
             f"{test['test_size']:,} images)\n"
             f"- mean one-vs-rest AUC: {test['mean_auc']:.4f}\n\n"
             f"{markdown_table(per_class)}\n\n{_checkpoint_text(test, best.trial_id)}"),
        ]
        print(f"\nBest trial {best.trial_id}: {objective}={best.score:.4f}; retrained "
              f"{epochs} epoch(s); test accuracy {test['accuracy']:.4f}, mean AUC "
              f"{test['mean_auc']:.4f}", flush=True)
        if "error" not in test["checkpoint"]:
            print(f"Its own checkpoint (training split only, best validation epoch): test "
                  f"accuracy {test['checkpoint']['accuracy']:.4f}, mean AUC "
                  f"{test['checkpoint']['mean_auc']:.4f}", flush=True)
    facts: dict[str, Any] = {}
    fish_notes: list[str] = []
    if config.data == "fish":
        fish_sections, facts, fish_notes = _fish_sections(config, data, best_data, test,
                                                          report, rare)
        sections = fish_sections[:1] + sections + fish_sections[1:]
    summary["test"] = test
    summary.update(facts)
    wall = time.perf_counter() - started
    write_json(project / "results.json", {
        "config": config, "seed": config.seed, "objective": objective,
        "direction": direction, "trials": len(table),
        "completed": int((table["status"] == "COMPLETED").sum()),
        "best_trial": summary.get("best_trial"),
        "best_hyperparameters": summary.get("best_hyperparameters"),
        "best_objective": float(top["best_objective"].iloc[0]) if len(top) else None,
        "test": test, **facts, "wall_time_s": round(wall, 1), "versions": library_versions(),
        "precision": hypermodel.precision, "machine": machine_info(),
    })
    workers = sorted(w for w in table["worker"].unique() if w)
    notes = [f"{best_data.description}.",
             f"{len(table)} trial(s) by the {config.tuner} tuner; workers: "
             f"{', '.join(workers) or 'unknown'}; each trial stops early after "
             f"{config.patience} epoch(s) without progress of {objective}; dtype policy "
             f"{hypermodel.precision} (--precision {config.precision}).",
             *fish_notes,
             f"Wall time {wall:.0f} s."]
    if config.quick:
        notes.append("--quick: " + ("small photos and short trials" if config.data == "fish"
                                    else "a small slice and one epoch")
                     + ", a smoke run, not a result.")
    write_report(project, f"Hyperparameter search: {config.model} on {config.data}", top,
                 intro=f"Top {len(top)} of {len(table)} trials by `{objective}` "
                       f"({direction}); every trial is in `trials.csv`.",
                 figures=figures, notes=notes, sections=sections)
    mark_finished(project)  # last: the search is finished
    print(f"Trials: {project / 'trials.csv'}\nReport: {project / 'report.md'}", flush=True)
    return summary
