"""Regularization pieces Keras lacks: MC dropout and its prediction loop.

Keras ships dropout, alpha dropout, l1/l2 penalties and max-norm; this module adds
`make_regularizer` (a tiny factory over `keras.regularizers.L1L2`), `MCDropout` (a
dropout layer that stays active at inference) and `mc_predict`, the Monte Carlo dropout
estimate of the class probabilities and their spread.

Example:

```python
model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(50, activation="relu"),
                          MCDropout(0.2), keras.layers.Dense(3, activation="softmax")])
mean, std = mc_predict(model, x_test, samples=100)
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Avoiding Overfitting Through
Regularization"; Gal and Ghahramani, "Dropout as a Bayesian Approximation" (2016).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

__all__ = ["MCDropout", "make_regularizer", "mc_predict"]


def make_regularizer(l1: float = 0.0, l2: float = 0.0) -> keras.regularizers.Regularizer | None:
    """Return an l1/l2 kernel penalty, or `None` when both factors are 0.

    The penalty added to the loss is `l1 * sum(|w|) + l2 * sum(w ** 2)`.

    Args:
        l1: L1 factor. Defaults to `0.0`.
        l2: L2 factor. Defaults to `0.0`.

    Returns:
        A `keras.regularizers.L1L2`, or `None`.

    Raises:
        ValueError: if a factor is negative.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "ℓ1 and ℓ2 Regularization".
    """
    if l1 < 0 or l2 < 0:
        raise ValueError(f"l1 and l2 must be >= 0, got l1={l1!r}, l2={l2!r}.")
    if l1 == 0 and l2 == 0:
        return None
    return keras.regularizers.L1L2(l1=float(l1), l2=float(l2))


@keras.saving.register_keras_serializable(package="recipes")
class MCDropout(keras.layers.Dropout):
    """Dropout that stays active at inference (Monte Carlo dropout).

    It takes `keras.layers.Dropout`'s arguments (`rate`, `noise_shape`, `seed`) and
    always calls it with `training=True`, so `model.predict` is stochastic and the mean
    of many predictions (`mc_predict`) approximates the Bayesian model average.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Monte Carlo (MC) Dropout".
    """

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


def _has_mc_dropout(model: keras.Model) -> bool:
    return any(isinstance(layer, MCDropout) for layer in _all_layers(model))


def _all_layers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        out.extend(_all_layers(layer))
    return out


def mc_predict(
    model: keras.Model,
    x: Any,
    samples: int = 100,
    batch_size: int | None = None,
    training: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo dropout: mean and std of the predictions over stochastic passes.

    With `training=True` every dropout layer (ordinary `Dropout` too) is active, but so
    is every layer that behaves differently in training: `BatchNormalization` then
    normalizes with the batch's statistics (so results depend on the batch) and, in
    Keras 3, also updates its moving averages; this function saves those moving averages
    first and restores them afterwards, so the model is unchanged. Augmentation layers
    are active too. With `training=False` only `MCDropout` layers are stochastic and
    BN uses its moving averages, the cleaner choice for models built with `MCDropout`.

    Args:
        model: a model whose outputs are class probabilities.
        x: inputs (array or tensor).
        samples: number of stochastic passes. Defaults to `100`.
        batch_size: split `x` into batches of this size; `None` passes it whole.
        training: the `training` flag of each pass. Defaults to `None`: `False` if the
            model contains an `MCDropout` layer, else `True`.

    Returns:
        `(mean, std)`, arrays shaped like one prediction, over the `samples` passes.

    Raises:
        ValueError: if `samples` or `batch_size` is smaller than 1.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Monte Carlo (MC) Dropout".
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples!r}.")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None, got {batch_size!r}.")
    if training is None:
        training = not _has_mc_dropout(model)
    x = np.asarray(x)
    step = len(x) if batch_size is None else batch_size
    bn_vars = [
        v
        for layer in _all_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
        for v in (layer.moving_mean, layer.moving_variance)
    ]
    saved = [keras.ops.convert_to_numpy(v) for v in bn_vars]
    try:
        runs = []
        for _ in range(samples):
            parts = [
                keras.ops.convert_to_numpy(model(x[i : i + step], training=training))
                for i in range(0, len(x), step)
            ]
            runs.append(np.concatenate(parts, axis=0))
    finally:
        for v, value in zip(bn_vars, saved):
            v.assign(value)
    stacked = np.stack(runs)
    return stacked.mean(axis=0), stacked.std(axis=0)
