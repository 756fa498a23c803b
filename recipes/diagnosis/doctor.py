"""Why does training fail? `diagnose` a model from its weights, a few batches and its history.

`examine` measures (gradient norms, activation statistics, weights, per-class AUC, the
train-validation gap, optionally a learning-rate probe) and turns what is wrong into
`Finding`s: the kind, the evidence (the numbers) and the chapter's remedy. `diagnose`
returns just the findings; an empty list means nothing was found.

Kinds: ``non_finite``, ``vanishing``, ``exploding``, ``dead``, ``saturated``,
``lagging_class``, ``overfitting``, ``lr_too_high``, ``lr_too_low``. The thresholds are
the fields of `Thresholds`.

Example:

```python
for finding in diagnose(model, x_train[:1000], y_train[:1000], x_valid, y_valid,
                        history=history, probe_steps=20):
    print(finding)
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Training Deep Neural Networks".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pandas as pd

from recipes.diagnosis.checks import (
    check_activations,
    check_classes,
    check_gradients,
    check_non_finite,
    check_overfitting,
    check_probe,
)
from recipes.diagnosis.findings import REMEDIES, Finding, Thresholds
from recipes.diagnosis.lr_probe import probe_learning_rate
from recipes.diagnosis.measures import activation_stats, gradient_norms, weight_stats
from recipes.diagnosis.probing import check_input_shape, resolve_loss
from recipes.metrics import class_report, confusion_matrix

__all__ = ["Examination", "Finding", "Thresholds", "diagnose", "examine"]


@dataclass
class Examination:
    """What `examine` measured, and the findings drawn from it.

    Attributes:
        findings: the problems found (empty: healthy).
        gradients: `gradient_norms` on the first batch (None when it could not be computed).
        activations: `activation_stats` on the examples (None without activation layers).
        weights: `weight_stats`.
        classes: `class_report` on the validation data (else the training data).
        confusion: the matching `confusion_matrix`.
        scores: accuracy and loss on the training and validation data.
        probe: `probe_learning_rate` table (None without a probe).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11.
    """

    findings: list[Finding]
    gradients: pd.DataFrame | None
    activations: pd.DataFrame | None
    weights: pd.DataFrame
    classes: pd.DataFrame | None
    confusion: pd.DataFrame | None
    scores: dict[str, float]
    probe: pd.DataFrame | None = None


def _labels(model: keras.Model, x: np.ndarray, y: Any, what: str) -> np.ndarray:
    y = np.asarray(y)
    if len(y) != len(x):
        raise ValueError(f"{what}: {len(x)} examples but {len(y)} labels.")
    units = model.outputs[0].shape[-1]
    classes = max(int(units), 2)
    if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
        if y.size and (y.min() < 0 or y.max() >= classes):
            raise ValueError(
                f"{what}: labels run from {y.min()} to {y.max()}, but model '{model.name}' "
                f"has {units} output unit(s), i.e. {classes} classes.")
    elif y.shape[-1] != units:
        raise ValueError(f"{what}: one-hot labels of width {y.shape[-1]} for {units} outputs.")
    return y


def _scores(model: keras.Model, x: np.ndarray, y: np.ndarray, loss_fn: Any,
            batch_size: int) -> tuple[np.ndarray, float, float]:
    probs = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype="float64")
    labels = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)
    pred = probs.argmax(axis=1) if probs.shape[-1] > 1 else (probs.reshape(-1) >= 0.5)
    loss = float(np.mean(keras.ops.convert_to_numpy(loss_fn(y, probs.astype("float32")))))
    return probs, float(np.mean(pred == labels)), loss


def examine(model: keras.Model, x: Any, y: Any, x_val: Any = None, y_val: Any = None,
            history: Any = None, probe_steps: int = 0, *,
            class_names: Sequence[str] | None = None, class_counts: Any = None,
            batch_size: int = 256, thresholds: Thresholds | None = None) -> Examination:
    """Measure a model on training data (and validation data) and find what is wrong.

    Args:
        model: a built Keras classifier (single input, single output).
        x: training examples (a sample; gradients use a seeded random batch of them).
        y: their labels (integers, or one-hot).
        x_val: validation examples for per-class AUC and the gap. Defaults to `None`.
        y_val: their labels.
        history: a Keras ``History``, a dict of per-epoch lists or a DataFrame (a history
            CSV) for the train-validation gap over training.
        probe_steps: training steps of the learning-rate probe on a copy (0: no probe;
            skipped when NaN/Inf were found); it measures its loss on the validation
            data when given, on held-out examples of `x` otherwise.
        class_names: the class names, for the evidence.
        class_counts: training examples per class (a list or a dict) for the evidence.
            Defaults to the counts in `y`.
        batch_size: examples of the gradient batch and of each forward pass.
        thresholds: when a measurement becomes a finding. Defaults to `Thresholds()`.

    Returns:
        An `Examination`.

    Raises:
        ValueError: the data do not fit the model (shape, label range, lengths).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11.
    """
    t = thresholds or Thresholds()
    x = check_input_shape(model, x)
    y = _labels(model, x, y, "training data")
    has_val = x_val is not None and y_val is not None
    if has_val:
        x_val = check_input_shape(model, x_val)
        y_val = _labels(model, x_val, y_val, "validation data")
    weights = weight_stats(model)
    try:
        activations = activation_stats(model, x, batch_size=batch_size)
    except ValueError:  # no activation layer at all
        activations = None
    batch = np.random.default_rng(0).permutation(len(x))[:batch_size]  # x may be sorted
    grads = gradient_norms(model, x[batch], y[batch])
    loss_fn = resolve_loss(model, y)
    probs, acc, loss = _scores(model, x, y, loss_fn, batch_size)
    scores = {"train_accuracy": acc, "train_loss": loss}
    if has_val:
        probs_val, acc_val, loss_val = _scores(model, x_val, y_val, loss_fn, batch_size)
        scores |= {"val_accuracy": acc_val, "val_loss": loss_val}
    eval_y, eval_p = (y_val, probs_val) if has_val else (y, probs)
    classes = confusion = None
    findings = check_non_finite(weights, grads, activations, eval_p)
    if np.all(np.isfinite(eval_p)):
        names = list(class_names) if class_names is not None else None
        classes = class_report(eval_y, eval_p, names)
        confusion = confusion_matrix(eval_y, eval_p, names, num_classes=len(classes))
    if not findings:  # NaN/Inf makes every other number meaningless
        counts = class_counts if class_counts is not None else np.bincount(
            (y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)).astype(int),
            minlength=len(classes) if classes is not None else 0)
        findings += check_gradients(grads, t)
        findings += check_activations(activations, t, len(x))
        findings += check_classes(classes, counts, t)
        findings += check_overfitting(history, scores, t)
    probe = None
    diverged = any(f.kind == "non_finite" for f in findings)
    if probe_steps > 0 and not diverged:  # training a NaN model shows nothing new
        probe = probe_learning_rate(model, x, y, probe_steps,
                                    validation=(x_val, y_val) if has_val else None)
        findings += check_probe(probe, t)
    for f in findings:
        f.remedy = f.remedy or REMEDIES[f.kind]
    findings.sort(key=lambda f: f.severity != "error")  # errors first, otherwise in order
    return Examination(findings, grads, activations, weights, classes, confusion, scores, probe)


def diagnose(model: keras.Model, x: Any, y: Any, x_val: Any = None, y_val: Any = None,
             history: Any = None, probe_steps: int = 0, **kwargs: Any) -> list[Finding]:
    """What is wrong with a model, as `Finding`s (an empty list: nothing found).

    Args:
        model: a built Keras classifier.
        x: training examples (a sample).
        y: their labels.
        x_val: validation examples. Defaults to `None`.
        y_val: their labels.
        history: a Keras ``History``, a dict or a DataFrame of per-epoch values.
        probe_steps: training steps of the learning-rate probe on a copy (0: no probe).
        **kwargs: `examine`'s keyword arguments (``class_names``, ``class_counts``,
            ``batch_size``, ``thresholds``).

    Returns:
        The findings, errors first.

    Raises:
        ValueError: the data do not fit the model.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11.
    """
    return examine(model, x, y, x_val, y_val, history, probe_steps, **kwargs).findings
