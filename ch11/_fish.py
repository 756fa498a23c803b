"""The fish experiments' shared plumbing: load the splits, the CNN recipe, train, evaluate.

- `load_splits(config)`: `recipes.data.fish.load_fish_splits` on the config's folders, with
  the summary printed and bad input as `recipes.checks.InputError`.
- `recipe_spec(...)`: the from-scratch CNN, the chapter's way (He init, BN before ReLU, a
  stride-2 stem, global average pooling, dropout, horizontal flips in the model).
- `train_cnn(...)`: re-seed, build through `build_cnn`, pick the 1cycle peak with the LR
  range test, fit through `make_dataset` with early stopping on validation, against the
  imbalance with one of `REMEDIES`.
- `evaluate(trained, data)`: accuracies, per-class test metrics, macro AUC, confusion pairs.

Every fish experiment imports this module (never another experiment).

Reference: Géron, Hands-On ML (3rd ed.), chapter 11 (initialization, BN, 1cycle, early
stopping, regularization) and chapter 14 (CNNs, data augmentation).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pandas as pd

from ch11._fish_config import FishDataConfig
from recipes.builders import build_cnn, count_params
from recipes.callbacks import EpochTimer, tensorboard_callbacks
from recipes.checks import InputError
from recipes.data.fish import FishSplits, load_fish_splits
from recipes.data.pipeline import make_dataset
from recipes.hardware import choose_precision, clear_session
from recipes.losses import class_weights, make_loss
from recipes.lr_finder import find_learning_rate
from recipes.metrics import class_report, confusion_matrix
from recipes.optimizers import make_optimizer
from recipes.runs import set_seed
from recipes.schedules import OneCycle, make_schedule
from recipes.specs import CNNSpec

__all__ = ["PHOTOS", "REMEDIES", "Trained", "confusion_pairs", "evaluate", "load_splits",
           "oversample_indices", "precision_entry", "recipe_spec", "set_precision",
           "subset_classes", "test_confusion", "train_cnn"]

# What a training run can do against the class imbalance (the loss, the weights, the data).
REMEDIES = ("none", "class_weight", "focal", "oversample")
PHOTOS = "the course's fish photos"  # the data, in the reports' "book beside us" sections


def set_precision(requested: str = "auto") -> str:
    """Set Keras's dtype policy (bf16 where the CPU computes it natively) and return it.

    Args:
        requested: ``"auto"``, ``"float32"`` or ``"mixed_bfloat16"``.

    Returns:
        The policy name set.
    """
    policy, _ = choose_precision(requested)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def precision_entry(requested: str = "auto") -> dict[str, tuple[str, str]]:
    """The fish experiments' ``precision`` for `ch11._experiment.finish`: every model's policy.

    Args:
        requested: the ``--precision`` the run was given (the same as `set_precision`'s).

    Returns:
        ``{"every model": (policy, why)}``, as results.json and the report state it.
    """
    return {"every model": choose_precision(requested)}


def load_splits(config: FishDataConfig, *, log=print, min_per_class: int = 1,
                require_test: bool = True) -> FishSplits:
    """The config's photos as uint8 splits (decoded once, then read from the cache).

    Args:
        config: any fish experiment's config.
        log: where progress lines go. Defaults to `print`.
        min_per_class: photos each class needs in training and validation. Defaults to `1`.
        require_test: refuse an empty test split. Defaults to `True`.

    Returns:
        The `FishSplits`; its summary is printed.

    Raises:
        InputError: a missing or bad folder (the message names it and the fix).
    """
    train, val, test = config.folders()
    data = load_fish_splits(train, val, test, image_size=config.image_size,
                            validation_split=config.validation_split, test_from=config.test_from,
                            test_split=config.test_split, seed=config.seed,
                            min_per_class=min_per_class, log=log)
    log(data.summary())
    if data.duplicates:
        a = data.duplicates[0]
        log(f"WARNING: {len(data.duplicates)} photo(s) appear in two splits (same bytes), e.g. "
            f"{a[1]} ({a[0]}) = {a[3]} ({a[2]}): test figures on them are not held out.")
    if require_test and len(data.y["test"]) == 0:
        raise InputError("The test split is empty: give --test-dir DIR or --test-split > 0.")
    return data


def recipe_spec(*, quick: bool = False, filters: Sequence[int] = (32, 64, 128, 256),
                dense_units: Sequence[int] = (), dropout_rate: float = 0.3, l2: float = 0.0,
                augmentation: Sequence[str] = ("flip",)) -> CNNSpec:
    """The from-scratch fish CNN, built the chapter's way.

    He initialization (the ``auto`` table for ReLU), BN before each ReLU (momentum 0.9: a
    run is only a few hundred steps), a stride-2 first convolution (96x96 photos cost a
    quarter as much in the first block), max pooling, global average pooling, dropout
    before the output, random horizontal flips inside the model (training only; the cost
    of each augmentation layer is measured by `make bench-fish`), and
    pixels rescaled inside the model so it takes raw uint8 photos.

    Args:
        quick: a tiny network for smoke runs. Defaults to `False`.
        filters: filters per conv block. Defaults to `(32, 64, 128, 256)`.
        dense_units: hidden Dense layers after the pooling. Defaults to `()`.
        dropout_rate: dropout before the output (and after each Dense layer).
        l2: L2 weight penalty. Defaults to `0.0`.
        augmentation: augmentation layers (`recipes.specs.AUGMENTATIONS`).

    Returns:
        The `CNNSpec`.
    """
    return CNNSpec(filters=(8, 16) if quick else tuple(filters), first_stride=2,
                   dense_units=tuple(dense_units), global_pooling=True, batch_norm="before",
                   batch_norm_momentum=0.9, input_norm="rescale",
                   augmentation=tuple(augmentation), dropout_rate=dropout_rate, l2=l2)


def oversample_indices(y: np.ndarray, seed: int, target: float = 0.5) -> np.ndarray:
    """Indices that repeat each small class up to `target` x the median class size.

    Args:
        y: training labels.
        seed: seeds which photos are repeated.
        target: a class smaller than ``target * median`` is repeated up to that size.
            Defaults to `0.5`.

    Returns:
        Every index once, plus the repeats (shuffled by the pipeline).
    """
    counts = np.bincount(y)
    goal = int(target * np.median(counts[counts > 0]))
    rng = np.random.default_rng(seed)
    extra = [rng.choice(np.flatnonzero(y == c), goal - n, replace=True)
             for c, n in enumerate(counts) if 0 < n < goal]
    return np.concatenate([np.arange(len(y)), *extra]).astype(np.int64)


@dataclass
class Trained:
    """One trained model and what was measured on it."""

    name: str
    model: keras.Model
    history: dict[str, list]
    remedy: str
    seconds: float
    max_lr: float
    lr_note: str
    spec: CNNSpec | None = None
    first_step_s: float = float("nan")
    photos_per_s: float = float("nan")
    best_epoch: int = 0
    probs: dict[str, np.ndarray] = field(default_factory=dict)
    report: pd.DataFrame | None = None
    accuracy: dict[str, float] = field(default_factory=dict)
    macro_auc: float = float("nan")
    findings: list[str] = field(default_factory=list)
    lr_table: pd.DataFrame | None = None

    def row(self) -> dict[str, Any]:
        """One row of a results table."""
        params = count_params(self.model)
        rep = self.report
        return {"model": self.name, "remedy": self.remedy,
                "epochs": len(self.history.get("loss", [])), "best_epoch": self.best_epoch,
                "max_lr": self.max_lr, "train_acc": self.accuracy.get("train", np.nan),
                "val_acc": self.accuracy.get("validation", np.nan),
                "test_acc": self.accuracy.get("test", np.nan), "macro_auc": self.macro_auc,
                "min_class_recall": float(rep["recall"].min()) if rep is not None else np.nan,
                "train_s": self.seconds, "photos_per_s": self.photos_per_s,
                "params": params["trainable"] + params["non_trainable"]}


RANGE_TEST_STEPS = 300


def _range_test(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int,
                seed: int) -> tuple[float, str, pd.DataFrame]:
    # Up to 300 steps (4 epochs of a small set): measured on the fish photos at 64x64 with
    # AdamW, a one-epoch sweep of 83 steps put the loss minimum at 0.14 (suggestion 0.014,
    # a run that barely learned), 300 steps at 0.035 (suggestion 0.0035, the rate that
    # trains well); with Nesterov SGD both gave 0.11. Adam's moment estimates need steps.
    per_epoch = max(1, int(np.ceil(len(x) / batch_size)))
    result = find_learning_rate(model, make_dataset(x, y, batch_size, seed=seed),
                                min_lr=1e-5, max_lr=1.0,
                                steps=min(RANGE_TEST_STEPS, max(10, 4 * per_epoch)))
    peak = float(np.clip(result.suggestion, 1e-4, 1e-1))
    return peak, (f"LR range test: the loss was lowest at {result.min_loss_lr:.2g}; 1cycle "
                  f"peak = a tenth of it, {peak:.2g} (the book's rule)"), result.table


def train_cnn(
    spec: CNNSpec,
    data: FishSplits,
    *,
    remedy: str = "none",
    epochs: int = 30,
    patience: int | None = 6,
    batch_size: int = 64,
    max_lr: float | None = None,
    optimizer: str = "adamw",
    seed: int = 42,
    label: str = "",
    name: str = "cnn",
    train_indices: np.ndarray | None = None,
    class_weighted: bool = False,
    verbose: int | None = None,
    log_dir: str | os.PathLike | None = None,
) -> Trained:
    """Build the CNN from `spec` and train it on the training split, the chapter's way.

    1cycle over `epochs` (peak from the LR range test unless `max_lr` is given), early
    stopping on the validation loss from the cycle's second half on (the best weights of
    that half restored), the static input
    pipeline (`make_dataset`: no epoch-start stalls), and `remedy` against the imbalance:
    ``class_weight`` (inverse frequency), ``focal`` (focal loss, gamma 2), ``oversample``
    (small classes repeated up to half the median class; the model's augmentation makes
    each repeat differ).

    Args:
        spec: the `CNNSpec` (see `recipe_spec`).
        data: the `FishSplits`.
        remedy: one of `REMEDIES`. Defaults to `"none"`.
        epochs: the 1cycle's length in epochs, the most that run. Defaults to `30`.
        patience: epochs without a better validation loss before stopping; `None`: no
            early stopping (every epoch runs, the last epoch's weights are kept).
        batch_size: photos per step. Defaults to `64`.
        max_lr: the 1cycle peak; `None` runs the LR range test. Defaults to `None`.
        optimizer: a `recipes.names.OPTIMIZER_NAMES` name. Defaults to `"adamw"`.
        seed: re-seeded before building (every variant starts equal).
        label: printed before training.
        name: the model's name.
        train_indices: train on these rows of the training split only. Defaults to all.
        class_weighted: add class weights to another remedy (focal loss with weights).
        verbose: Keras's verbosity (default: a progress bar on a terminal, one line per
            epoch otherwise).
        log_dir: the model's TensorBoard folder (``ch11._experiment.tensorboard_dir``):
            per-epoch scalars, the learning rate, and gradient norms and dead units on 64
            random training photos (`recipes.callbacks.tensorboard_callbacks`). Defaults to
            `None` (no logs).

    Returns:
        The `Trained` model (best epoch's weights).
    """
    if remedy not in REMEDIES:
        raise ValueError(f"Unknown remedy {remedy!r}. Valid: {', '.join(REMEDIES)}.")
    if label:
        print(f"\n=== {label} ===", flush=True)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    k = len(data.class_names)
    rows = np.arange(len(data.y["train"])) if train_indices is None else train_indices
    y_all = data.y["train"][rows]
    if remedy == "oversample":
        rows = rows[oversample_indices(y_all, seed)]
    x, y = data.x["train"][rows], data.y["train"][rows]
    clear_session()  # keeps the dtype policy (recipes.hardware)
    set_seed(seed)
    model = build_cnn(spec, (data.image_size, data.image_size, 3), k, name=name)
    loss = make_loss("focal") if remedy == "focal" else make_loss("crossentropy")
    model.compile(optimizer=make_optimizer(optimizer), loss=loss, metrics=["accuracy"])
    lr_table = None
    if max_lr is None:
        max_lr, lr_note, lr_table = _range_test(model, x, y, batch_size, seed)
    else:
        lr_note = f"1cycle peak {max_lr:g} (given)"
    print(lr_note, flush=True)
    steps = int(np.ceil(len(y) / batch_size))
    schedule = make_schedule("1cycle", learning_rate=max_lr,
                             total_steps=max(OneCycle.MIN_STEPS, steps * epochs))
    model.compile(optimizer=make_optimizer(optimizer, learning_rate=schedule), loss=loss,
                  metrics=["accuracy"])
    weights = class_weights(y_all, k) if remedy == "class_weight" or class_weighted else None
    timer = EpochTimer()
    # Judged only after the 1cycle's peak: while the rate climbs, the validation loss jumps
    # around, and stopping there would keep a half-trained model.
    stop = ([keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                           restore_best_weights=True,
                                           start_from_epoch=epochs // 2)]
            if patience is not None else [])
    marks: dict[str, float] = {}
    first = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: marks.setdefault("first", time.perf_counter()))
    board = []
    if log_dir is not None:  # measured on 64 photos of every class (the split is sorted)
        pick = np.sort(np.random.default_rng(seed).permutation(len(y))[:64])
        board = tensorboard_callbacks(log_dir, (x[pick], y[pick]))
    started = time.perf_counter()
    history = model.fit(make_dataset(x, y, batch_size, seed=seed),
                        validation_data=make_dataset(data.x["validation"], data.y["validation"],
                                                     256, shuffle=False),
                        epochs=epochs, class_weight=weights,
                        callbacks=[timer, *stop, first, *board], verbose=verbose, shuffle=False)
    seconds = time.perf_counter() - started
    h = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    best = int(np.argmin(h["val_loss"])) + 1 if h.get("val_loss") else len(h.get("loss", []))
    train_time = sum(h.get("epoch_time", [])) or seconds
    return Trained(name, model, h, remedy, seconds, float(max_lr), lr_note, spec,
                   first_step_s=marks.get("first", started) - started,
                   photos_per_s=len(y) * len(h.get("loss", [])) / train_time, best_epoch=best,
                   lr_table=lr_table)


def confusion_pairs(matrix: pd.DataFrame, top: int = 5) -> list[tuple[str, str, int]]:
    """The most frequent mistakes of a confusion matrix.

    Args:
        matrix: `recipes.metrics.confusion_matrix` (rows true, columns predicted).
        top: how many pairs. Defaults to `5`.

    Returns:
        ``(true class, predicted class, count)``, most frequent first (diagonal excluded).
    """
    values = matrix.to_numpy().astype(int).copy()
    np.fill_diagonal(values, 0)
    order = np.argsort(values, axis=None)[::-1][:top]
    pairs = []
    for flat in order:
        i, j = np.unravel_index(flat, values.shape)
        if values[i, j] > 0:
            pairs.append((str(matrix.index[i]), str(matrix.columns[j]), int(values[i, j])))
    return pairs


def evaluate(m: Trained, data: FishSplits, splits: Sequence[str] = ("train", "validation",
                                                                    "test")) -> None:
    """Accuracy per split, the per-class test report and the macro AUC (in place).

    Args:
        m: the trained model.
        data: the `FishSplits`.
        splits: the splits to predict. Defaults to all three.
    """
    for split in splits:
        x, y = data.x[split], data.y[split]
        if split == "train" and len(y) > 2000:  # the gap needs no more than this
            pick = np.random.default_rng(0).choice(len(y), 2000, replace=False)
            x, y = x[pick], y[pick]
        probs = m.model.predict(x, batch_size=256, verbose=0).astype("float64")
        m.probs[split] = probs
        m.accuracy[split] = float(np.mean(probs.argmax(1) == y))
    m.report = class_report(data.y["test"], m.probs["test"], data.class_names)
    m.macro_auc = float(np.nanmean(m.report["auc"]))


def test_confusion(m: Trained, data: FishSplits) -> pd.DataFrame:
    """The test split's confusion matrix (rows true, columns predicted)."""
    return confusion_matrix(data.y["test"], m.probs["test"], data.class_names)


def subset_classes(data: FishSplits, names: Sequence[str],
                   per_class: int | None = None, seed: int = 0) -> FishSplits:
    """The splits restricted to some classes, relabelled 0..len(names)-1 in that order.

    Args:
        data: the `FishSplits`.
        names: the classes kept.
        per_class: keep at most this many training photos per class (seeded). Defaults to
            `None` (all).
        seed: which training photos. Defaults to `0`.

    Returns:
        A new `FishSplits` (its arrays are copies).
    """
    index = [data.class_names.index(n) for n in names]
    remap = {old: new for new, old in enumerate(index)}
    rng = np.random.default_rng(seed)
    x, y, files = {}, {}, {}
    for split in data.x:
        rows = np.flatnonzero(np.isin(data.y[split], index))
        if split == "train" and per_class is not None:
            rows = np.sort(np.concatenate([
                rng.choice(rows[data.y[split][rows] == c],
                           min(per_class, int(np.sum(data.y[split][rows] == c))), replace=False)
                for c in index]))
        x[split] = data.x[split][rows]
        y[split] = np.array([remap[int(v)] for v in data.y[split][rows]], dtype=np.int64)
        files[split] = [data.files[split][i] for i in rows]
    counts = pd.DataFrame({s: np.bincount(y[s], minlength=len(names)) for s in y},
                          index=pd.Index(list(names), name="class"))
    counts["total"] = counts.sum(axis=1)
    return dataclasses.replace(data, x=x, y=y, files=files, class_names=list(names),
                               counts=counts, duplicates=[])
