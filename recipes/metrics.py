"""Per-class metrics in numpy: one-vs-rest ROC AUC and curves, confusion matrix, P/R/F1.

scikit-learn is not a dependency, so the few metrics the diagnostics need are here, each
returning a DataFrame with one row per class. Labels are integers ``(N,)`` (or one-hot
``(N, k)``); scores are ``(N, k)`` probabilities (or ``(N,)``/``(N, 1)`` for a binary
sigmoid output, read as the score of class 1).

The AUC is the Mann-Whitney statistic with average ranks, so tied scores count one half,
exactly like the area under the ROC curve's trapezoids. A class absent from ``y_true`` has
no positives: its AUC is NaN and the ``note`` column says why.

Example:

```python
table = class_report(y_valid, model.predict(x_valid), class_names)
table[["class", "auc", "precision", "recall", "f1", "support", "note"]]
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 3 ("Performance Measures": confusion
matrix, precision/recall, the ROC curve); Hanley & McNeil (1982) for AUC = Mann-Whitney U.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["class_report", "confusion_matrix", "positive_ranks", "precision_recall_f1",
           "roc_auc_per_class", "roc_curves"]


def _names(class_names: Sequence[str] | None, k: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(k)]
    if len(class_names) != k:
        raise ValueError(f"Got {len(class_names)} class names for {k} classes.")
    return [str(c) for c in class_names]


def _labels(y_true: Any, k: int | None) -> tuple[np.ndarray, int]:
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] > 1:
        k = y.shape[1] if k is None else k
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if y.size == 0:
        raise ValueError("Metrics need at least one label, got an empty array.")
    if not np.all(np.isfinite(y.astype(float))) or not np.all(np.mod(y, 1) == 0):
        raise ValueError("Labels must be integers (or one-hot rows).")
    y = y.astype(np.int64)
    k = int(y.max()) + 1 if k is None else int(k)
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"Labels must lie in [0, {k}), got values from {y.min()} to {y.max()}.")
    return y, k


def _scores(y_score: Any) -> np.ndarray:
    s = np.asarray(y_score, dtype="float64")
    if s.ndim == 1 or (s.ndim == 2 and s.shape[1] == 1):
        s = s.reshape(-1)
        s = np.stack([1.0 - s, s], axis=1)
    if s.ndim != 2:
        raise ValueError(f"Scores must have shape (N, k) or (N,), got {s.shape}.")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"Scores contain {int(np.sum(~np.isfinite(s)))} NaN/Inf values; "
                         "the model's outputs are not finite.")
    return s


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    change = np.r_[True, ordered[1:] != ordered[:-1], True]
    bounds = np.flatnonzero(change)  # group starts, then len(values)
    group = np.cumsum(change[:-1]) - 1
    mean_rank = (bounds[:-1] + bounds[1:] + 1) / 2.0
    ranks = np.empty(len(values))
    ranks[order] = mean_rank[group]
    return ranks


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _note(n_pos: int, n_neg: int) -> str:
    if n_pos == 0:
        return "absent from y_true: no positives, AUC undefined"
    if n_neg == 0:
        return "only class in y_true: no negatives, AUC undefined"
    return ""


def roc_auc_per_class(y_true: Any, y_score: Any,
                      class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """One-vs-rest ROC AUC of every class (Mann-Whitney U with average ranks).

    Args:
        y_true: integer labels ``(N,)`` or one-hot ``(N, k)``.
        y_score: scores ``(N, k)`` (or ``(N,)`` for a binary sigmoid output).
        class_names: names of the k classes. Defaults to ``"0" .. "k-1"``.

    Returns:
        One row per class: ``class``, ``index``, ``positives``, ``negatives``, ``auc``
        (NaN when a class has no positives or no negatives), ``note`` (why it is NaN).

    Raises:
        ValueError: labels out of range, non-finite scores, or mismatched lengths.

    Reference: Hanley & McNeil, "The meaning and use of the area under a ROC curve" (1982).
    """
    s = _scores(y_score)
    y, k = _labels(y_true, s.shape[1])
    if len(y) != len(s):
        raise ValueError(f"Got {len(y)} labels and {len(s)} score rows.")
    names, rows = _names(class_names, k), []
    for c in range(k):
        positive = y == c
        n_pos = int(positive.sum())
        rows.append({"class": names[c], "index": c, "positives": n_pos,
                     "negatives": len(y) - n_pos, "auc": _binary_auc(positive, s[:, c]),
                     "note": _note(n_pos, len(y) - n_pos)})
    return pd.DataFrame(rows)


def roc_curves(y_true: Any, y_score: Any,
               class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """One-vs-rest ROC curves: the (FPR, TPR) points at every distinct threshold.

    Each curve starts at (0, 0) (threshold +inf) and ends at (1, 1); classes without
    positives or negatives have no curve.

    Args:
        y_true: integer labels ``(N,)`` or one-hot ``(N, k)``.
        y_score: scores ``(N, k)`` (or ``(N,)`` for a binary sigmoid output).
        class_names: names of the k classes.

    Returns:
        A long table: ``class``, ``threshold``, ``fpr``, ``tpr``.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3, "The ROC Curve".
    """
    s = _scores(y_score)
    y, k = _labels(y_true, s.shape[1])
    names, parts = _names(class_names, k), []
    for c in range(k):
        positive = y == c
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        if n_pos == 0 or n_neg == 0:
            continue
        order = np.argsort(-s[:, c], kind="mergesort")
        score, hit = s[order, c], positive[order]
        last = np.r_[score[1:] != score[:-1], True]  # last index of each distinct score
        tps = np.cumsum(hit)[last]
        fps = np.cumsum(~hit)[last]
        parts.append(pd.DataFrame({
            "class": names[c], "threshold": np.r_[np.inf, score[last]],
            "fpr": np.r_[0.0, fps / n_neg], "tpr": np.r_[0.0, tps / n_pos]}))
    return (pd.concat(parts, ignore_index=True) if parts
            else pd.DataFrame(columns=["class", "threshold", "fpr", "tpr"]))


def _predicted(y_pred: Any, k: int | None) -> np.ndarray:
    p = np.asarray(y_pred)
    if p.ndim == 2 and p.shape[1] > 1:
        return p.argmax(axis=1)
    p = p.reshape(-1)
    if p.dtype.kind == "f" and not np.all(np.mod(p, 1) == 0):
        if np.all((p >= 0) & (p <= 1)):
            return (p >= 0.5).astype(np.int64)  # one sigmoid score per example
        raise ValueError("Predictions must be labels, (N, k) scores or (N,) probabilities.")
    return _labels(p, k)[0]


def confusion_matrix(y_true: Any, y_pred: Any, class_names: Sequence[str] | None = None, *,
                     num_classes: int | None = None, normalize: str | None = None) -> pd.DataFrame:
    """The confusion matrix: rows are true classes, columns predicted ones.

    Args:
        y_true: integer labels ``(N,)`` or one-hot ``(N, k)``.
        y_pred: predicted labels ``(N,)``, or scores ``(N, k)`` (argmax) or ``(N, 1)``
            (threshold 0.5).
        class_names: names of the k classes.
        num_classes: k. Defaults to the names' count, else the scores' width, else the
            largest label + 1.
        normalize: None (counts), ``"true"`` (rows sum to 1), ``"pred"`` (columns) or
            ``"all"``.

    Returns:
        A k x k DataFrame, index named ``true`` and columns ``predicted``.

    Raises:
        ValueError: unknown `normalize`, labels out of range, or mismatched lengths.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3, "Confusion Matrices".
    """
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"Unknown normalize {normalize!r}. Valid: None, true, pred, all.")
    p_arr = np.asarray(y_pred)
    k = num_classes or (len(class_names) if class_names is not None else None)
    if k is None and p_arr.ndim == 2 and p_arr.shape[1] > 1:
        k = p_arr.shape[1]
    y, k_true = _labels(y_true, k)
    p = _predicted(y_pred, k)
    k = max(k_true, int(p.max()) + 1) if k is None else k
    if len(y) != len(p):
        raise ValueError(f"Got {len(y)} labels and {len(p)} predictions.")
    if p.min() < 0 or p.max() >= k:
        raise ValueError(f"Predictions must lie in [0, {k}), got up to {p.max()}.")
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (y, p), 1)
    values: np.ndarray = matrix
    if normalize is not None:
        axis = {"true": 1, "pred": 0, "all": None}[normalize]
        with np.errstate(invalid="ignore", divide="ignore"):
            values = matrix / matrix.sum(axis=axis, keepdims=axis is not None)
    names = _names(class_names, k)
    return pd.DataFrame(values, index=pd.Index(names, name="true"),
                        columns=pd.Index(names, name="predicted"))


def precision_recall_f1(y_true: Any, y_pred: Any, class_names: Sequence[str] | None = None, *,
                        num_classes: int | None = None) -> pd.DataFrame:
    """Precision, recall and F1 of every class (one-vs-rest).

    A precision with no prediction of the class, or a recall with no example of it, is
    NaN (undefined), never silently 0. F1 is ``2 TP / (2 TP + FP + FN)`` (the harmonic
    mean where both are defined), NaN only for a class neither present nor predicted.

    Args:
        y_true: integer labels ``(N,)`` or one-hot ``(N, k)``.
        y_pred: predicted labels, or scores (see `confusion_matrix`).
        class_names: names of the k classes.
        num_classes: k (see `confusion_matrix`).

    Returns:
        One row per class: ``class``, ``precision``, ``recall``, ``f1``, ``support``
        (true examples), ``predicted`` (predicted examples).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3, "Precision and Recall".
    """
    m = confusion_matrix(y_true, y_pred, class_names, num_classes=num_classes).to_numpy()
    tp = np.diag(m).astype(float)
    support, predicted = m.sum(axis=1), m.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(support > 0, tp / support, np.nan)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), np.nan)
    return pd.DataFrame({"class": _names(class_names, len(m)), "precision": precision,
                         "recall": recall, "f1": f1, "support": support,
                         "predicted": predicted})


def class_report(y_true: Any, y_score: Any,
                 class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """One table per class: AUC, precision, recall, F1, support and the AUC's note.

    Args:
        y_true: integer labels ``(N,)`` or one-hot ``(N, k)``.
        y_score: scores ``(N, k)`` (or ``(N,)`` for a binary sigmoid output).
        class_names: names of the k classes.

    Returns:
        Columns ``class``, ``index``, ``auc``, ``precision``, ``recall``, ``f1``,
        ``support``, ``predicted``, ``note``.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3, "Performance Measures".
    """
    auc = roc_auc_per_class(y_true, y_score, class_names)
    s = _scores(y_score)
    prf = precision_recall_f1(y_true, s, class_names, num_classes=s.shape[1])
    table = auc[["class", "index", "auc"]].join(prf.drop(columns="class"))
    table["note"] = auc["note"]
    return table


def positive_ranks(y_true: Any, y_score: Any, class_index: int,
                   class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Where each example of one class ranks among the others on that class's score.

    The one-vs-rest AUC is the fraction of (positive, negative) pairs ranked the right way:
    ``AUC = 1 - sum(negatives_above) / (positives * negatives)``, a tie counting one half.
    This table splits that sum by positive example, so a low AUC on a rare class shows
    whether every example ranks a little low or one or two rank far down.

    Args:
        y_true: integer labels ``(N,)`` or one-hot ``(N, k)``.
        y_score: scores ``(N, k)`` (or ``(N,)`` for a binary sigmoid output).
        class_index: the class whose examples are ranked.
        class_names: names of the k classes (for the ``predicted`` column).

    Returns:
        One row per example of the class, highest score first: ``row`` (its index in
        ``y_true``), ``score``, ``predicted`` (the argmax class), ``negatives_above`` (other
        examples scoring higher, ties one half). ``attrs["auc"]`` is the class's AUC,
        ``attrs["negatives"]`` the number of other examples.

    Raises:
        ValueError: labels out of range, non-finite scores, mismatched lengths or a class
            index outside ``0 .. k-1``.
    """
    s = _scores(y_score)
    y, k = _labels(y_true, s.shape[1])
    if len(y) != len(s):
        raise ValueError(f"Got {len(y)} labels and {len(s)} score rows.")
    if not 0 <= class_index < k:
        raise ValueError(f"class_index must be in 0..{k - 1}, got {class_index}.")
    names = _names(class_names, k)
    score = s[:, class_index]
    rows = np.flatnonzero(y == class_index)
    negatives = np.sort(score[y != class_index])
    higher = np.searchsorted(negatives, score[rows], side="right")  # count of negatives <= it
    tied = higher - np.searchsorted(negatives, score[rows], side="left")
    above = (len(negatives) - higher + 0.5 * tied).astype("float64")
    table = pd.DataFrame({"row": rows, "score": score[rows],
                          "predicted": [names[i] for i in s[rows].argmax(axis=1)],
                          "negatives_above": above})
    table = table.sort_values("score", ascending=False, kind="mergesort").reset_index(drop=True)
    pairs = len(rows) * len(negatives)
    table.attrs["auc"] = 1.0 - float(above.sum()) / pairs if pairs else float("nan")
    table.attrs["negatives"] = len(negatives)
    return table
