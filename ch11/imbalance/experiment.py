"""The class-imbalance experiment: make a digit rare, train each treatment, write the run."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11._config import check_digit, headline_seeds, seeds_why
from ch11._evidence import seed_summary, spread_figure
from ch11.imbalance import report
from ch11.imbalance.config import NAME, TREATMENTS, Config
from recipes.builders import build_mlp
from recipes.checks import check_fraction
from recipes.diagnosis.doctor import diagnose
from recipes.losses import class_weights, make_loss
from recipes.metrics import class_report, confusion_matrix
from recipes.specs import MLPSpec

__all__ = ["TREATMENTS", "make_imbalanced", "oversample", "run"]


def make_imbalanced(x: np.ndarray, y: np.ndarray, digit: int, keep_fraction: float,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Keep only a fraction of one digit's examples; every other example is kept, in order.

    ``ceil(keep_fraction * count)`` examples of `digit` survive (at least one), drawn at
    random with `seed`.

    Args:
        x: examples.
        y: their integer labels.
        digit: the class to make rare, 0-9.
        keep_fraction: the fraction of its examples to keep, in ``(0, 1]``.
        seed: seed of the draw. Defaults to `0`.

    Returns:
        ``(x, y)`` without the dropped examples.

    Raises:
        ValueError: a digit outside 0-9, a fraction outside ``(0, 1]``, mismatched
            lengths, or no example of `digit` at all.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3 (MNIST), ch. 10 (``class_weight``).
    """
    check_digit("digit", digit)
    check_fraction("keep_fraction", keep_fraction, include_low=False, include_high=True)
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"Got {len(x)} examples and {len(y)} labels.")
    where = np.flatnonzero(y == digit)
    if len(where) == 0:
        raise ValueError(f"There is no example of digit {digit} to make rare.")
    keep = math.ceil(round(keep_fraction * len(where), 9))  # 0.07 * 100 = 7.000000000000001
    rng = np.random.default_rng(seed)
    dropped = rng.choice(where, size=len(where) - keep, replace=False)
    mask = np.ones(len(y), dtype=bool)
    mask[dropped] = False
    return x[mask], y[mask]


def oversample(x: np.ndarray, y: np.ndarray, digit: int, target: int,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Repeat one class's examples until it has `target` of them, then shuffle.

    The copies cycle through the class's examples, so each appears equally often (give
    or take one).

    Args:
        x: examples.
        y: their integer labels.
        digit: the class to repeat, 0-9.
        target: the class's count afterwards (at least its current count).
        seed: seed of the shuffle. Defaults to `0`.

    Returns:
        ``(x, y)`` with the copies added, shuffled.

    Raises:
        ValueError: a digit outside 0-9, no example of it, or a target below its count.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10; He & Garcia, "Learning from
    Imbalanced Data" (2009), random oversampling.
    """
    check_digit("digit", digit)
    y = np.asarray(y)
    where = np.flatnonzero(y == digit)
    if len(where) == 0:
        raise ValueError(f"There is no example of digit {digit} to oversample.")
    if target < len(where):
        raise ValueError(f"target must be at least the {len(where)} examples digit {digit} "
                         f"already has, got {target}.")
    extra = np.resize(where, target - len(where))
    order = np.random.default_rng(seed).permutation(len(y) + len(extra))
    return np.concatenate([x, x[extra]])[order], np.concatenate([y, y[extra]])[order]


def run(config: Config) -> ex.Results:
    """Make the digit rare, train one variant per treatment and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per treatment; per-class numbers in per_class.csv).
    """
    if config.quick:
        config = dataclasses.replace(config, epochs=1)
    run_dir, started = ex.start(NAME, config)
    full = ex.mnist_splits(config.quick, flat=False)
    data = dict(full)
    data["x_train"], data["y_train"] = make_imbalanced(
        full["x_train"], full["y_train"], config.digit, config.keep_fraction, config.seed)
    counts = pd.DataFrame({
        "digit": range(10), "train_before": np.bincount(full["y_train"], minlength=10),
        "train": np.bincount(data["y_train"], minlength=10),
        "valid": np.bincount(data["y_valid"], minlength=10),
        "test": np.bincount(data["y_test"], minlength=10)})
    counts.to_csv(run_dir / "class_counts.csv", index=False)
    spec = MLPSpec(hidden_units=config.hidden_units)
    rows, histories, per_class, confusions, findings = [], {}, [], {}, {}
    for k, treatment in enumerate(config.treatments, 1):
        train, weights, loss = _treatment(treatment, data, counts, config)
        model, history = ex.train_variant(
            lambda: build_mlp(spec, (28, 28), 10),
            ex.classifier_compile(config.optimizer, config.learning_rate, loss=loss), train,
            seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
            label=f"variant {k}/{len(config.treatments)}: {treatment}",
            fit_kwargs={"class_weight": weights}, log_dir=ex.tensorboard_dir(run_dir, treatment))
        histories[treatment] = history
        probs = model.predict(data["x_test"], verbose=0)
        per_digit = class_report(data["y_test"], probs).assign(treatment=treatment)
        per_class.append(per_digit)
        confusions[treatment] = confusion_matrix(data["y_test"], probs, num_classes=10)
        found = diagnose(model, train["x_train"][:2000], train["y_train"][:2000],
                         data["x_valid"], data["y_valid"], history=history,
                         class_counts=np.bincount(train["y_train"], minlength=10))
        findings[treatment] = found
        rows.append(_row(treatment, per_digit, found, model, history, data, train, config))

    table = pd.DataFrame(rows)
    classes = pd.concat(per_class, ignore_index=True)
    classes.to_csv(run_dir / "per_class.csv", index=False)
    for treatment, matrix in confusions.items():
        matrix.to_csv(run_dir / f"confusion_{treatment}.csv")
    figures = report.figures(run_dir, classes, confusions, config)
    notes = report.notes(table, config)
    seeds = headline_seeds(config)
    main_rows = [{"treatment": r.treatment, **{c: getattr(r, c)
                                               for c in report.HEADLINE_COLUMNS}}
                 for r in table.itertuples()]
    per_seed = ex.over_seeds(seeds, config.seed, main_rows,
                             lambda s: _rerun(config, data, counts, spec, s))
    summary = seed_summary(per_seed, "treatment", report.HEADLINE_COLUMNS)
    evidence = report.evidence(summary, per_seed, seeds, seeds_why(config), config)
    figures.append(spread_figure(run_dir, per_seed, "treatment",
                                 ["minority_recall", "minority_auc"],
                                 f"Digit {config.digit}: recall and AUC per treatment and seed"))
    return ex.finish(NAME, config, run_dir, started, table,
                     title=f"Class imbalance on MNIST: digit {config.digit} made rare",
                     intro=report.intro(config, counts), histories=histories, figures=figures,
                     notes=[evidence.headline, *notes],
                     metrics=report.metrics(table, counts, config),
                     sections=report.sections(counts, confusions, findings, config),
                     evidence=evidence)


def _treatment(treatment: str, data: dict, counts: pd.DataFrame,
               config: Config) -> tuple[dict, dict | None, Any]:
    """(training data, class weights or None, loss) of one treatment."""
    train, weights, loss = data, None, make_loss("crossentropy")
    if treatment == "class_weights":
        weights = class_weights(data["y_train"], num_classes=10)
    elif treatment == "focal":
        loss = make_loss("focal", gamma=config.focal_gamma)
    elif treatment == "oversampling":
        others = counts.loc[counts["digit"] != config.digit, "train"]
        train = dict(data)
        train["x_train"], train["y_train"] = oversample(
            data["x_train"], data["y_train"], config.digit, int(np.median(others)),
            config.seed)
    return train, weights, loss


def _rerun(config: Config, data: dict, counts: pd.DataFrame, spec: MLPSpec,
           seed: int) -> list[dict]:
    """Every treatment again with another training seed (the same rare images)."""
    rows = []
    for treatment in config.treatments:
        train, weights, loss = _treatment(treatment, data, counts, config)
        model, _ = ex.train_variant(
            lambda: build_mlp(spec, (28, 28), 10),
            ex.classifier_compile(config.optimizer, config.learning_rate, loss=loss), train,
            seed=seed, epochs=config.epochs, batch_size=config.batch_size,
            label=f"seed {seed}: {treatment}", fit_kwargs={"class_weight": weights})
        per_digit = class_report(data["y_test"], model.predict(data["x_test"], verbose=0))
        minority = per_digit.set_index("index").loc[config.digit]
        rows.append({"treatment": treatment, "minority_recall": minority["recall"],
                     "minority_precision": minority["precision"],
                     "minority_auc": minority["auc"], "test_acc": ex.test_accuracy(model, data)})
    return rows


def _row(treatment: str, per_digit: pd.DataFrame, found, model, history, data, train,
         config: Config) -> dict:
    d = config.digit
    minority = per_digit.set_index("index").loc[d]
    others = per_digit[per_digit["index"] != d]
    lagging = [f.evidence.get("class") for f in found if f.kind == "lagging_class"]
    return {
        "treatment": treatment, "train_images": len(train["y_train"]),
        "minority_train": int(np.sum(train["y_train"] == d)),
        "test_acc": ex.test_accuracy(model, data),
        "minority_recall": minority["recall"], "minority_precision": minority["precision"],
        "minority_auc": minority["auc"], "others_min_recall": others["recall"].min(),
        "others_median_auc": others["auc"].median(), "lowest_recall_class": int(
            per_digit.loc[per_digit["recall"].idxmin(), "index"]),
        "lagging_found": ",".join(map(str, lagging)) or "none",
        "s_per_epoch": float(np.mean(history.history["epoch_time"])),
    }
