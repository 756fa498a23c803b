"""Class imbalance on purpose: MNIST with one digit made rare, then four treatments.

Hands-On ML, chapter 10, "Using the Sequential API" (``class_weight`` in ``fit``) and
chapter 3, "Performance Measures" (confusion matrix, precision/recall, ROC AUC), with the
focal loss of Lin et al. (2017). Only a small fraction of one digit's training images is
kept (the validation and test sets are untouched), and the same MLP trains from the same
seed with the plain cross-entropy, with balanced class weights
(``recipes.losses.class_weights``), with the focal loss (``make_loss("focal")``) and on a
training set where the rare digit's images are repeated (oversampling). The run reports
per-class recall and one-vs-rest AUC, the confusion matrices, and what
``recipes.doctor.diagnose`` finds (a lagging class or not).

Run: ``python -m ch11.imbalance`` (``make recipe-imbalance``), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pandas as pd

from ch11._experiment import Results, cli, finish, mnist_splits, start
from recipes.builders import build_mlp
from recipes.doctor import diagnose
from recipes.losses import class_weights, make_loss
from recipes.metrics import class_report, confusion_matrix
from recipes.optimizers import OPTIMIZER_NAMES, make_optimizer
from recipes.runs import EpochTimer, save_figure, set_seed
from recipes.specs import MLPSpec

__all__ = ["TREATMENTS", "Config", "main", "make_imbalanced", "oversample", "run"]

NAME = "imbalance"
TREATMENTS = ("plain", "class_weights", "focal", "oversampling")


def _check(digit: int, keep_fraction: float | None = None) -> None:
    if isinstance(digit, bool) or not isinstance(digit, int | np.integer) or not 0 <= digit <= 9:
        raise ValueError(f"digit must be an MNIST digit 0-9, got {digit!r}.")
    if keep_fraction is not None and not 0 < keep_fraction <= 1:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction!r}.")


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
    _check(digit, keep_fraction)
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
    _check(digit)
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


@dataclass(frozen=True)
class Config:
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seed: int = field(default=42, metadata={"help": "seed, re-applied before each variant"})
    quick: bool = field(default=False, metadata={"help": "small slice, one epoch (tests)"})
    digit: int = field(default=5, metadata={"help": "the digit made rare in training, 0-9"})
    keep_fraction: float = field(default=0.01, metadata={
        "help": "fraction of that digit's training images kept, in (0, 1]"})
    treatments: tuple[str, ...] = field(default=TREATMENTS, metadata={
        "help": "what to compare", "choices": TREATMENTS})
    focal_gamma: float = field(default=2.0, metadata={
        "help": "the focal loss's focusing parameter (Lin et al.'s 2)"})
    hidden_units: tuple[int, ...] = field(default=(300, 100),
                                          metadata={"help": "the MLP's hidden layers"})
    epochs: int = field(default=5, metadata={"help": "epochs for every variant"})
    optimizer: str = field(default="adam", metadata={
        "help": "optimizer for every variant", "choices": OPTIMIZER_NAMES})
    learning_rate: float = field(default=1e-3, metadata={"help": "learning rate"})
    batch_size: int = field(default=32, metadata={"help": "mini-batch size"})
    out_dir: str = field(default="runs", metadata={"help": "where run folders go"})

    def __post_init__(self) -> None:
        _check(self.digit, self.keep_fraction)
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}.")
        if self.focal_gamma < 0:
            raise ValueError(f"focal_gamma must be >= 0, got {self.focal_gamma}.")
        if not self.treatments:
            raise ValueError(f"treatments must name at least one of {', '.join(TREATMENTS)}.")
        for t in self.treatments:
            if t not in TREATMENTS:
                raise ValueError(f"Unknown treatment {t!r}. Valid: {', '.join(TREATMENTS)}.")


def _fit(build, compile_kwargs: Mapping[str, Any], data: Mapping[str, np.ndarray], config: Config,
         label: str, class_weight: Mapping[int, float] | None = None):
    """`ch11._experiment.train_variant` plus ``class_weight`` (which it does not forward)."""
    print(f"\n=== {label} ===", flush=True)
    keras.backend.clear_session()
    set_seed(config.seed)
    model = build()
    model.compile(**compile_kwargs)
    history = model.fit(
        data["x_train"], data["y_train"], epochs=config.epochs, batch_size=config.batch_size,
        validation_data=(data["x_valid"], data["y_valid"]), class_weight=class_weight,
        callbacks=[EpochTimer()], verbose=1 if sys.stdout.isatty() else 2)
    return model, history


def run(config: Config) -> Results:
    """Make the digit rare, train one variant per treatment and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per treatment; per-class numbers in per_class.csv).
    """
    if config.quick:
        config = dataclasses.replace(config, epochs=1)
    run_dir, started = start(NAME, config)
    full = mnist_splits(config.quick, flat=False)
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
        model, history = _fit(
            lambda: build_mlp(spec, (28, 28), 10),
            {"optimizer": make_optimizer(config.optimizer, learning_rate=config.learning_rate),
             "loss": loss, "metrics": ["accuracy"]},
            train, config, f"variant {k}/{len(config.treatments)}: {treatment}", weights)
        histories[treatment] = history
        probs = model.predict(data["x_test"], verbose=0)
        report = class_report(data["y_test"], probs).assign(treatment=treatment)
        per_class.append(report)
        confusions[treatment] = confusion_matrix(data["y_test"], probs, num_classes=10)
        found = diagnose(model, train["x_train"][:2000], train["y_train"][:2000],
                         data["x_valid"], data["y_valid"], history=history,
                         class_counts=np.bincount(train["y_train"], minlength=10))
        findings[treatment] = found
        rows.append(_row(treatment, report, found, model, history, data, train, config))

    table = pd.DataFrame(rows)
    classes = pd.concat(per_class, ignore_index=True)
    classes.to_csv(run_dir / "per_class.csv", index=False)
    for treatment, matrix in confusions.items():
        matrix.to_csv(run_dir / f"confusion_{treatment}.csv")
    figures = _figures(run_dir, classes, confusions, config)
    notes = _notes(table, config)
    return finish(NAME, config, run_dir, started, table,
                  title=f"Class imbalance on MNIST: digit {config.digit} made rare",
                  intro=_intro(config, counts), histories=histories, figures=figures,
                  notes=notes, metrics=_metrics(table, counts, config),
                  sections=_sections(counts, confusions, findings, config))


def _row(treatment: str, report: pd.DataFrame, found, model, history, data, train,
         config: Config) -> dict:
    d = config.digit
    minority = report.set_index("index").loc[d]
    others = report[report["index"] != d]
    _, test_acc = model.evaluate(data["x_test"], data["y_test"], verbose=0)
    lagging = [f.evidence.get("class") for f in found if f.kind == "lagging_class"]
    return {
        "treatment": treatment, "train_images": len(train["y_train"]),
        "minority_train": int(np.sum(train["y_train"] == d)), "test_acc": test_acc,
        "minority_recall": minority["recall"], "minority_precision": minority["precision"],
        "minority_auc": minority["auc"], "others_min_recall": others["recall"].min(),
        "others_median_auc": others["auc"].median(), "lowest_recall_class": int(
            report.loc[report["recall"].idxmin(), "index"]),
        "lagging_found": ",".join(map(str, lagging)) or "none",
        "s_per_epoch": float(np.mean(history.history["epoch_time"])),
    }


def _figures(run_dir, classes: pd.DataFrame, confusions: Mapping[str, pd.DataFrame],
             config: Config) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt

    treatments = list(confusions)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    width = 0.8 / len(treatments)
    for i, t in enumerate(treatments):
        part = classes[classes["treatment"] == t]
        for ax, col in zip(axes, ("recall", "auc")):
            ax.bar(part["index"] + (i - (len(treatments) - 1) / 2) * width, part[col],
                   width, label=t)
    for ax, col in zip(axes, ("recall", "one-vs-rest AUC")):
        ax.set_xticks(range(10))
        ax.set_xlabel(f"digit (digit {config.digit} is the rare one)")
        ax.set_ylabel(f"test {col}")
        ax.grid(alpha=0.3, axis="y")
    lows = classes["auc"].min()
    axes[1].set_ylim(min(0.5, lows - 0.01), 1.0)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(treatments), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    save_figure(fig, run_dir / "per_class.png")

    fig, axes = plt.subplots(1, len(treatments), figsize=(4.2 * len(treatments), 4),
                             squeeze=False)
    for ax, t in zip(axes[0], treatments):
        m = confusions[t].to_numpy()
        rates = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(m):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black")
        ax.set_title(t)
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    fig.suptitle("Test confusion matrices (colour: fraction of the true row)")
    fig.tight_layout()
    save_figure(fig, run_dir / "confusion.png")
    return [("Per-class test recall and one-vs-rest AUC, per treatment", "per_class.png"),
            ("Test confusion matrices (counts; colour = share of the true class)",
             "confusion.png")]


def _sections(counts: pd.DataFrame, confusions: Mapping[str, pd.DataFrame],
              findings: Mapping[str, list], config: Config) -> list[tuple[str, str]]:
    lines = ["| digit | train (before) | train | valid | test |", "|---|---|---|---|---|"]
    lines += [f"| {r.digit} | {r.train_before} | {r.train} | {r.valid} | {r.test} |"
              for r in counts.itertuples()]
    rows = ["| treatment | " + " | ".join(f"pred {j}" for j in range(10)) + " |",
            "|---|" + "---|" * 10]
    for t, m in confusions.items():
        rows.append(f"| {t} | " + " | ".join(str(v) for v in m.iloc[config.digit]) + " |")
    diag = [f"- **{t}**: " + (" ".join(f"[{f.severity}] {f.kind}: {f.message}" for f in found)
                              or "nothing found.") for t, found in findings.items()]
    return [("Class counts", "\n".join(lines)),
            (f"Where the test images of digit {config.digit} go", "\n".join(rows)),
            ("What `recipes.doctor.diagnose` finds (validation set)", "\n".join(diag))]


def _notes(table: pd.DataFrame, config: Config) -> list[str]:
    t = table.set_index("treatment")
    d = config.digit
    notes = []
    if "plain" in t.index:
        p = t.loc["plain"]
        gap = p["others_median_auc"] - p["minority_auc"]
        if p["minority_auc"] <= 0.6 and p["others_median_auc"] >= 0.85:
            verdict = ("reproduces the course's 'one class stuck near chance AUC while the "
                       "others pass 0.85'")
        elif gap >= 0.15:
            verdict = (f"shows a clearly lagging class ({gap:.2f} below the others' median), "
                       "though not stuck at chance like the course's 0.55")
        else:
            verdict = ("does NOT reproduce an AUC stuck near 0.55: the net still ranks the "
                       "rare digit's images high (AUC is about ranking) but puts another digit "
                       f"first for {1 - p['minority_recall']:.0%} of them (recall is where the "
                       "imbalance shows)")
        notes.append(
            f"Plain cross-entropy with {p['minority_train']} training images of digit {d}: "
            f"its test recall is {p['minority_recall']:.3f} (lowest other digit: "
            f"{p['others_min_recall']:.3f}) and its AUC {p['minority_auc']:.4f} (median of the "
            f"others {p['others_median_auc']:.4f}); this {verdict}. "
            + (f"diagnose() flags as lagging: {p['lagging_found']}." if p["lagging_found"] != "none"
               else f"diagnose() flags no lagging class: it compares AUCs (a class 0.15 or more "
                    f"below the others' median), and digit {d}'s is only {gap:.3f} below; the "
                    f"lowest recall, though, is digit {p['lowest_recall_class']}'s."))
    for name in t.index.drop("plain", errors="ignore"):
        r = t.loc[name]
        base = t.loc["plain"] if "plain" in t.index else None
        change = (f" ({r['minority_recall'] - base['minority_recall']:+.3f} vs plain; test "
                  f"accuracy {r['test_acc'] - base['test_acc']:+.4f})" if base is not None else "")
        notes.append(f"{name}: digit {d}'s recall {r['minority_recall']:.3f}{change}, precision "
                     f"{r['minority_precision']:.3f}, AUC {r['minority_auc']:.4f}; lagging "
                     f"class found: {r['lagging_found']}.")
    best = t["minority_recall"].idxmax()
    plain_precision = (f" (plain: {t.loc['plain', 'minority_precision']:.3f})"
                       if "plain" in t.index else "")
    cost = ""
    if "plain" in t.index and np.isfinite(t.loc["plain", "minority_precision"]):
        drop = t.loc["plain", "minority_precision"] - t.loc[best, "minority_precision"]
        cost = (f": the recall was bought with {drop:.3f} of precision, as the model predicts "
                f"digit {d} more often" if drop > 0.02 else
                ": at almost no cost in precision here")
    notes.append(f"Best treatment for the rare digit's recall here: {best} "
                 f"({t.loc[best, 'minority_recall']:.3f}); its precision on digit {d} is "
                 f"{t.loc[best, 'minority_precision']:.3f}{plain_precision}{cost}.")
    if config.quick:
        notes.append("Quick mode: a small slice and one epoch; the numbers only smoke-test.")
    return notes


def _metrics(table: pd.DataFrame, counts: pd.DataFrame, config: Config) -> dict:
    out = {f"{r.treatment}_{c}": getattr(r, c) for r in table.itertuples()
           for c in ("minority_recall", "minority_auc", "test_acc")}
    out["train_counts"] = counts["train"].tolist()
    out["test_counts"] = counts["test"].tolist()
    return out


def _intro(config: Config, counts: pd.DataFrame) -> str:
    c = counts.set_index("digit").loc[config.digit]
    return (
        f"Digit {config.digit} keeps {config.keep_fraction:g} of its training images "
        f"({c['train']} of {c['train_before']}); every other digit, the validation set and the "
        f"test set are untouched. MLP {'-'.join(map(str, config.hidden_units))} (ReLU, He "
        f"init), optimizer {config.optimizer} at {config.learning_rate:g}, batch "
        f"{config.batch_size}, {config.epochs} epoch(s), seed {config.seed} re-applied before "
        f"each treatment. class_weights: `class_weights(y_train)` in `fit(class_weight=...)`; "
        f"focal: `make_loss('focal', gamma={config.focal_gamma:g})`; oversampling: the rare "
        "digit's images repeated up to the median count of the other digits. Per-class "
        "numbers from `recipes.metrics.class_report` on the test set.")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m ch11.imbalance [--quick] [--digit D] [--keep-fraction F] ...``."""
    return cli(Config, run, argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
