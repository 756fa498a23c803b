"""Losses and class imbalance: balanced class weights, focal loss, label-agnostic losses.

Keras's categorical losses want one-hot labels and its sparse ones want integers. The
losses here take either: integer labels of shape ``(N,)`` or ``(N, 1)`` are one-hot
encoded inside the loss, one-hot labels of shape ``(N, k)`` are used as they are. The
label kind is read from the static shapes (``y_true`` one rank below ``y_pred``, or a last
dimension of 1 against ``k > 1`` classes, means integer labels). The maths is Keras's own
(``keras.losses.categorical_crossentropy`` and ``categorical_focal_crossentropy``), so on
one-hot labels the results equal Keras's losses.

Example:

```python
weights = class_weights(y_train)                 # {0: 0.67, 1: 2.0} for [0, 0, 0, 1]
model.compile("adam", loss=make_loss("focal", gamma=2.0, alpha=[0.25, 0.75]))
model.fit(x_train, y_train, class_weight=weights)
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 10-11 (losses for classification);
Lin et al., "Focal Loss for Dense Object Detection" (2017).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from recipes.checks import check_at_least, check_fraction
from recipes.names import LOSS_NAMES

__all__ = [
    "LOSS_NAMES",
    "AnyLabelCrossentropy",
    "FocalLoss",
    "SoftmaxMeanSquaredError",
    "class_weights",
    "make_loss",
]

def class_weights(labels: Any, num_classes: int | None = None) -> dict[int, float]:
    """Balanced class weights for ``model.fit(class_weight=...)``.

    Each class ``c`` gets ``n / (k * count_c)`` (scikit-learn's ``"balanced"``), so every
    class carries the same total weight ``n / k``.

    Args:
        labels: integer labels ``(N,)`` or ``(N, 1)``, or one-hot labels ``(N, k)``.
        num_classes: number of classes ``k``. Defaults to ``max(label) + 1`` (or the
            one-hot width).

    Returns:
        A dict ``{class: weight}`` for the classes ``0 .. k-1``, weights as Python floats.

    Raises:
        ValueError: if there are no labels, labels are not integers in ``[0, k)``, or a
            class in ``0 .. k-1`` has no samples (its weight would be infinite).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10 (``class_weight`` in ``fit``).
    """
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] > 1:
        num_classes = y.shape[1] if num_classes is None else num_classes
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if y.dtype == bool:
        y = y.astype(np.int64)
    if y.size == 0:
        raise ValueError("class_weights needs at least one label, got an empty array.")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.number) or not np.all(np.mod(y, 1) == 0):
            raise ValueError(f"class_weights needs integer labels, got dtype {y.dtype}.")
        y = y.astype(np.int64)
    k = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if y.min() < 0 or y.max() >= k:
        raise ValueError(
            f"Labels must be in [0, {k}), got values from {int(y.min())} to {int(y.max())}."
        )
    counts = np.bincount(y, minlength=k)
    missing = [c for c in range(k) if counts[c] == 0]
    if missing:
        raise ValueError(
            f"Class {missing[0]} has no samples (classes without samples: {missing}); a "
            f"balanced weight would be infinite. Pass the labels of every class 0..{k - 1} "
            "or a smaller num_classes."
        )
    n = y.size
    return {c: float(n / (k * counts[c])) for c in range(k)}


def _as_one_hot(y_true: Any, y_pred: Any) -> Any:
    """One-hot encode ``y_true`` when its shape says it holds integer labels."""
    num_classes = y_pred.shape[-1]
    sparse = len(y_true.shape) == len(y_pred.shape) - 1 or (
        len(y_true.shape) == len(y_pred.shape)
        and y_true.shape[-1] == 1
        and num_classes is not None
        and num_classes > 1
    )
    if not sparse:
        return ops.cast(y_true, y_pred.dtype)
    if num_classes is None:
        raise ValueError(
            "Integer labels need a known number of classes, but y_pred has shape "
            f"{tuple(y_pred.shape)}."
        )
    if len(y_true.shape) == len(y_pred.shape):
        y_true = ops.squeeze(y_true, axis=-1)
    return ops.one_hot(ops.cast(y_true, "int32"), num_classes, dtype=y_pred.dtype)


class _AnyLabelLoss(keras.losses.Loss):
    """Shared constructor and config for the losses that accept either label kind."""

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction)
        check_fraction("label_smoothing", label_smoothing, include_high=True)
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reduction": self.reduction,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


@keras.saving.register_keras_serializable(package="recipes")
class AnyLabelCrossentropy(_AnyLabelLoss):
    """Categorical crossentropy that takes integer labels or one-hot labels.

    Equal to ``keras.losses.CategoricalCrossentropy`` on one-hot labels and to
    ``SparseCategoricalCrossentropy`` on integer labels (up to label smoothing, which the
    sparse Keras loss lacks and this one applies to both).

    Args:
        from_logits: whether ``y_pred`` holds logits. Defaults to `False`.
        label_smoothing: in ``[0, 1]``. Defaults to `0.0`.
        reduction: Keras reduction. Defaults to `"sum_over_batch_size"`.
        name: loss name. Defaults to `"crossentropy"`.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10 (crossentropy for classification).
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = "crossentropy",
    ) -> None:
        super().__init__(from_logits, label_smoothing, reduction, name)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return keras.losses.categorical_crossentropy(
            _as_one_hot(y_true, y_pred),
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )


@keras.saving.register_keras_serializable(package="recipes")
class FocalLoss(_AnyLabelLoss):
    """Categorical focal loss ``-alpha_c (1 - p_c)^gamma log p_c`` for either label kind.

    On one-hot labels it equals ``keras.losses.CategoricalFocalCrossentropy`` with the
    same ``alpha`` and ``gamma``; with ``gamma=0`` and ``alpha=None`` it equals the
    crossentropy. Unlike Keras's default ``alpha=0.25``, ``alpha=None`` means no class
    weighting (every ``alpha_c = 1``).

    Args:
        gamma: focusing parameter, ``>= 0``. Defaults to `2.0`.
        alpha: ``None``, one non-negative weight for all classes, or one weight per
            class as a list or a ``{class: weight}`` dict (e.g. from `class_weights`).
            Defaults to `None`.
        from_logits: whether ``y_pred`` holds logits. Defaults to `False`.
        label_smoothing: in ``[0, 1]``. Defaults to `0.0`.
        reduction: Keras reduction. Defaults to `"sum_over_batch_size"`.
        name: loss name. Defaults to `"focal_loss"`.

    Raises:
        ValueError: for a negative ``gamma`` or ``alpha``, or (when called) a list
            ``alpha`` whose length is not the number of classes.

    Reference: Lin et al., "Focal Loss for Dense Object Detection" (2017).
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | Sequence[float] | Mapping[int, float] | None = None,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = "focal_loss",
    ) -> None:
        super().__init__(from_logits, label_smoothing, reduction, name)
        check_at_least("gamma", gamma, 0, integer=False)
        if isinstance(alpha, Mapping):  # e.g. the dict of `class_weights`
            alpha = [alpha[c] for c in range(len(alpha))]
        if alpha is not None and not np.isscalar(alpha):
            alpha = [float(a) for a in alpha]
        elif alpha is not None:
            alpha = float(alpha)
        if alpha is not None and np.any(np.asarray(alpha) < 0):
            raise ValueError(f"alpha must be >= 0, got {alpha!r}.")
        self.gamma = float(gamma)
        self.alpha = alpha

    def call(self, y_true: Any, y_pred: Any) -> Any:
        alpha = 1.0 if self.alpha is None else self.alpha
        if isinstance(alpha, list):
            if len(alpha) != y_pred.shape[-1]:
                raise ValueError(
                    f"alpha has {len(alpha)} values but y_pred has {y_pred.shape[-1]} "
                    "classes; give one alpha per class or a single number."
                )
            alpha = ops.convert_to_tensor(alpha, dtype=y_pred.dtype)
        return keras.losses.categorical_focal_crossentropy(
            _as_one_hot(y_true, y_pred),
            y_pred,
            alpha=alpha,
            gamma=self.gamma,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="recipes")
class SoftmaxMeanSquaredError(_AnyLabelLoss):
    """Mean squared error between the class probabilities and the one-hot labels.

    ``mean_c (p_c - y_c)^2`` per sample, where ``p`` is ``y_pred`` (or its softmax when
    ``from_logits``); integer labels are one-hot encoded first. Used to compare losses:
    MSE on softmax outputs gives weak gradients when the model is confidently wrong.

    Args:
        from_logits: whether ``y_pred`` holds logits (a softmax is applied). Defaults
            to `False`.
        label_smoothing: in ``[0, 1]``, applied to the one-hot targets. Defaults to `0.0`.
        reduction: Keras reduction. Defaults to `"sum_over_batch_size"`.
        name: loss name. Defaults to `"softmax_mse"`.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10 (regression vs classification losses).
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = "softmax_mse",
    ) -> None:
        super().__init__(from_logits, label_smoothing, reduction, name)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = _as_one_hot(y_true, y_pred)
        if self.label_smoothing:
            k = ops.cast(ops.shape(y_true)[-1], y_pred.dtype)
            y_true = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / k
        if self.from_logits:
            y_pred = ops.softmax(y_pred, axis=-1)
        return ops.mean(ops.square(y_pred - y_true), axis=-1)


def make_loss(
    name: str | keras.losses.Loss,
    *,
    gamma: float = 2.0,
    alpha: float | Sequence[float] | Mapping[int, float] | None = None,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
) -> keras.losses.Loss:
    """Return a Keras loss by name.

    ``"crossentropy"`` (`AnyLabelCrossentropy`), ``"focal"`` (`FocalLoss`) and ``"mse"``
    (`SoftmaxMeanSquaredError`) accept integer or one-hot labels. ``"binary_crossentropy"``
    and ``"binary_focal"`` are Keras's ``BinaryCrossentropy`` and
    ``BinaryFocalCrossentropy`` (``alpha`` turns on its class balancing).

    Args:
        name: one of `LOSS_NAMES`, or a ``keras.losses.Loss`` returned as is.
        gamma: focusing parameter of the focal losses. Defaults to `2.0`.
        alpha: class weighting of the focal losses (a list per class for ``"focal"``, a
            number for ``"binary_focal"``); ``None`` for none. Defaults to `None`.
        from_logits: whether the model outputs logits. Defaults to `False`.
        label_smoothing: in ``[0, 1]``. Defaults to `0.0`.

    Returns:
        A ``keras.losses.Loss``.

    Raises:
        ValueError: for an unknown name, an ``alpha`` given to a loss that has none, a
            list ``alpha`` for ``"binary_focal"``, or options given with a Loss object.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10-11.
    """
    if isinstance(name, keras.losses.Loss):
        if gamma != 2.0 or alpha is not None or from_logits or label_smoothing:
            raise ValueError(
                f"make_loss got a Loss object ({type(name).__name__}) and options; set the "
                "options on the object itself."
            )
        return name
    key = str(name).lower()
    if key not in LOSS_NAMES:
        raise ValueError(f"Unknown loss {name!r}. Valid: {', '.join(LOSS_NAMES)}.")
    if alpha is not None and key not in ("focal", "binary_focal"):
        raise ValueError(f"alpha only applies to the focal losses, not to {key!r}.")
    check_fraction("label_smoothing", label_smoothing, include_high=True)
    common = {"from_logits": from_logits, "label_smoothing": label_smoothing}
    if key == "crossentropy":
        return AnyLabelCrossentropy(**common)
    if key == "focal":
        return FocalLoss(gamma=gamma, alpha=alpha, **common)
    if key == "mse":
        return SoftmaxMeanSquaredError(**common)
    if key == "binary_crossentropy":
        return keras.losses.BinaryCrossentropy(**common)
    if alpha is not None and not np.isscalar(alpha):
        raise ValueError(f"binary_focal takes a single alpha (weight of class 1), got {alpha!r}.")
    return keras.losses.BinaryFocalCrossentropy(
        apply_class_balancing=alpha is not None,
        alpha=0.25 if alpha is None else float(alpha),
        gamma=gamma,
        **common,
    )
