"""Saliency maps: which pixels move a class score (vanilla gradients and SmoothGrad).

Example:

```python
maps = saliency_map(model, x_valid[:8])                         # vanilla gradients
smooth = saliency_map(model, x_valid[:8], smoothgrad_samples=25)  # SmoothGrad
fig = saliency_grid(x_valid[:8], smooth)                         # recipes.plots
```

Reference: Simonyan et al., "Deep Inside Convolutional Networks: Visualising Image
Classification Models and Saliency Maps" (2013); Smilkov et al., "SmoothGrad: removing
noise by adding noise" (2017).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from recipes.diagnosis.probing import activation_kind, check_input_shape

__all__ = ["saliency_map"]


@contextlib.contextmanager
def _linear_output(model: keras.Model) -> Iterator[None]:
    """Drop the output layer's softmax/sigmoid while inside (class scores, not probabilities)."""
    layer = model.layers[-1]
    swap = activation_kind(layer) in ("softmax", "sigmoid") and hasattr(layer, "activation")
    original = getattr(layer, "activation", None)
    if swap:
        layer.activation = keras.activations.linear
    try:
        yield
    finally:
        if swap:
            layer.activation = original


def saliency_map(model: keras.Model, images: Any, class_index: int | Sequence[int] | None = None,
                 smoothgrad_samples: int = 0, noise: float = 0.15, *, seed: int = 0) -> np.ndarray:
    """Saliency maps: |d class score / d pixel| (vanilla gradients or SmoothGrad).

    The class score is the output layer's value before its softmax/sigmoid (Simonyan et
    al.), so confident predictions do not flatten the map. With ``smoothgrad_samples > 0``
    the map is the mean of the absolute gradients at that many noisy copies of each image
    (Gaussian noise of std ``noise * (max - min)`` of the image).

    Args:
        model: a built classifier.
        images: a batch ``(N, ...)`` fitting the model's input.
        class_index: one class for all images, one per image, or None for the predicted one.
        smoothgrad_samples: noisy copies per image; `0` gives vanilla gradients.
        noise: the noise's std as a fraction of each image's range. Defaults to `0.15`.
        seed: seed of the noise. Defaults to `0`.

    Returns:
        A float32 array of the images' shape (non-negative).

    Raises:
        ValueError: the images do not fit, a class index is out of range, or
            ``smoothgrad_samples``/``noise`` is negative.

    Reference: Simonyan et al., "Deep Inside Convolutional Networks" (2013); Smilkov et
    al., "SmoothGrad: removing noise by adding noise" (2017).
    """
    x = check_input_shape(model, images)
    if smoothgrad_samples < 0 or noise < 0:
        raise ValueError(f"smoothgrad_samples and noise must be >= 0, got {smoothgrad_samples} "
                         f"and {noise}.")
    units = model.outputs[0].shape[-1]
    if class_index is None:
        scores = keras.ops.convert_to_numpy(model(x, training=False))
        classes = scores.argmax(axis=-1) if units > 1 else np.zeros(len(x), int)
    else:
        classes = np.broadcast_to(np.asarray(class_index, dtype=int), (len(x),))
    if np.any(classes < 0) or np.any(classes >= units):
        raise ValueError(f"class_index {class_index!r} is out of range for {units} outputs.")

    def grad(batch: np.ndarray) -> np.ndarray:
        t = tf.convert_to_tensor(batch)
        with tf.GradientTape() as tape:
            tape.watch(t)
            out = tf.reshape(model(t, training=False), (len(batch), -1))
            score = tf.reduce_sum(tf.gather(out, classes, axis=1, batch_dims=1))
        return np.abs(tape.gradient(score, t).numpy())

    with _linear_output(model):
        if smoothgrad_samples == 0:
            return grad(x).astype("float32")
        rng = np.random.default_rng(seed)
        axes = tuple(range(1, x.ndim))
        sigma = noise * (x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True))
        total = np.zeros_like(x)
        for _ in range(smoothgrad_samples):
            total += grad((x + rng.normal(size=x.shape) * sigma).astype("float32"))
    return (total / smoothgrad_samples).astype("float32")
