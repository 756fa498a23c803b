"""Diagnostics: look inside a Keras model on one batch (gradients, activations, weights).

Every function works on any built Keras model, Sequential or functional, with the
activation inside a Dense/Conv layer or as a separate layer. Layers are reported by name;
``recipes.builders`` names them stably (``hidden_{i}``, ``act_{i}``, ``conv_{b}_{j}`` ...).

- `gradient_norms`: per trainable kernel, the gradient's norm on one batch, the weight
  norm and their ratio (how fast each layer learns relative to its size).
- `activation_stats`: per activation, mean, std, fraction of zeros, fraction of units dead
  on the whole batch, fraction saturated (sigmoid/tanh near their bounds).
- `weight_stats`: per variable, mean, std, extremes and non-finite values.
- `saliency_map` (from ``recipes.diagnosis.saliency``): vanilla gradients and SmoothGrad.

The callback that records gradient norms and dead units every epoch, `GradientMonitor`,
is in `recipes.callbacks` with the other callbacks.

Example:

```python
grads = gradient_norms(model, x_train[:256], y_train[:256])
stats = activation_stats(model, x_valid[:1000])
maps = saliency_map(model, x_valid[:8], smoothgrad_samples=20)
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "The Vanishing/Exploding Gradients
Problems"; Simonyan et al. (2013) and Smilkov et al. (2017) for saliency maps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import ops

from recipes.diagnosis.probing import (
    SATURATING,
    activation_kind,
    check_input_shape,
    kernels,
    leaf_layers,
    model_inputs,
    resolve_loss,
)
from recipes.diagnosis.saliency import saliency_map

__all__ = [
    "activation_stats",
    "class_gradient_shares",
    "gradient_norms",
    "layer_outputs",
    "saliency_map",
    "weight_stats",
]


def gradient_norms(model: keras.Model, x: Any, y: Any, loss: Any = None, *,
                   training: bool = True, layers: str | None = None) -> pd.DataFrame:
    """Per-layer gradient norms on one batch (one ``tf.GradientTape`` pass).

    The model runs in training mode by default (the gradients an optimizer step sees:
    BN uses batch statistics, dropout drops); its non-trainable variables (BN moving
    statistics, random states) are restored afterwards, so the model is left unchanged.
    The model's regularization losses are included.

    Example:

    ```python
    hidden = gradient_norms(model, x, y, layers=r"hidden_\\d+")  # build_mlp's hidden Dense
    hidden["grad_norm"].to_numpy()                               # input side first
    ```

    Args:
        model: a built model.
        x: one batch of inputs.
        y: its labels.
        loss: the loss. Defaults to the compiled loss, else one chosen by `resolve_loss`.
        training: call the model in training mode. Defaults to `True`.
        layers: a regular expression; only the kernels of layers whose whole name matches
            it are reported (e.g. ``r"hidden_\\d+"``, the hidden Dense layers of
            `recipes.builders`). Defaults to `None` (every kernel).

    Returns:
        One row per trainable kernel (2-D or more weights: Dense, Conv, Embedding ...), in
        model order: ``layer``, ``depth`` (0-based, the kernel's position among all the
        model's kernels), ``variable``, ``shape``, ``grad_norm``, ``weight_norm``,
        ``ratio`` (grad_norm / weight_norm). ``frame.attrs["loss"]`` holds the batch loss.

    Raises:
        ValueError: the data do not fit the model, it has no trainable kernel, or no
            kernel's layer matches `layers`.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "The Vanishing/Exploding Gradients
    Problems" (Glorot and Bengio, 2010).
    """
    x = check_input_shape(model, x)
    found = kernels(model)
    if not found:
        raise ValueError(f"Model '{model.name}' has no trainable kernel to measure.")
    loss_fn = resolve_loss(model, y, loss)
    saved = [v.numpy() for v in model.non_trainable_variables]
    try:
        with tf.GradientTape() as tape:
            value = ops.mean(loss_fn(y, model(x, training=training)))
            if model.losses:
                value = value + ops.sum(ops.stack([ops.sum(t) for t in model.losses]))
        grads = tape.gradient(value, [v for _, v in found])
    finally:
        for v, s in zip(model.non_trainable_variables, saved):
            v.assign(s)
    rows = []
    for depth, ((layer, v), g) in enumerate(zip(found, grads)):
        g_norm = 0.0 if g is None else float(tf.norm(tf.cast(g, "float64")))
        w_norm = float(tf.norm(tf.cast(v.value, "float64")))
        rows.append({"layer": layer, "depth": depth, "variable": v.path,
                     "shape": str(tuple(v.shape)), "grad_norm": g_norm, "weight_norm": w_norm,
                     "ratio": g_norm / w_norm if w_norm > 0 else np.nan})
    frame = pd.DataFrame(rows)
    if layers is not None:
        frame = frame[frame["layer"].str.fullmatch(layers)].reset_index(drop=True)
        if frame.empty:
            raise ValueError(f"No kernel of model '{model.name}' is in a layer matching "
                             f"{layers!r}. Layers with kernels: "
                             f"{', '.join(dict.fromkeys(name for name, _ in found))}.")
    frame.attrs["loss"] = float(value)
    return frame


def class_gradient_shares(model: keras.Model, x: Any, y: Any, loss: Any = None, *,
                          class_weight: dict[int, float] | None = None,
                          per_class: int = 128, seed: int = 0) -> pd.DataFrame:
    """Each class's share of the training loss's gradient (the whole training set's).

    For each class ``c``, the mean gradient ``g_c`` of the loss over up to `per_class` of
    its examples (all trainable weights, inference mode, nothing changed), scaled as in a
    full-batch step: ``G_c = n_c * w_c * g_c / n`` (``n_c`` examples of weight ``w_c`` among
    ``n``). The gradient of the whole training loss is ``sum_c G_c``. A class's ``share`` is
    ``||G_c|| / ||sum G||``; ``weight_share`` is ``n_c w_c / sum n_k w_k``, the share the
    loss formula alone gives it. Class weights raise a rare class's ``weight_share`` to
    ``1/k``; whether its gradient follows depends on how far its examples are from fitted.

    Args:
        model: the model.
        x: training inputs.
        y: integer labels.
        loss: the loss. Defaults to the compiled one (`resolve_loss`).
        class_weight: ``{class: weight}``; `None` weighs every example 1.
        per_class: examples per class used to estimate ``g_c``. Defaults to `128`.
        seed: which examples are used. Defaults to `0`.

    Returns:
        One row per class present: ``class``, ``count``, ``weight``, ``grad_norm``
        (``||G_c||``), ``share``, ``weight_share``.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11 ("Handling class imbalance" in the
    course; ``class_weight`` in Keras's ``fit``).
    """
    y = np.asarray(y).astype("int64")
    loss_fn = resolve_loss(model, y, loss)
    rng = np.random.default_rng(seed)
    weights = model.trainable_variables
    counts = np.bincount(y)
    n = len(y)
    totals, rows = None, []
    for c in np.flatnonzero(counts):
        idx = np.flatnonzero(y == c)
        idx = idx if len(idx) <= per_class else rng.choice(idx, per_class, replace=False)
        xb = check_input_shape(model, np.asarray(x)[idx])
        with tf.GradientTape() as tape:
            value = ops.mean(loss_fn(y[idx], model(xb, training=False)))
        grads = tape.gradient(value, weights)
        w = 1.0 if class_weight is None else float(class_weight.get(int(c), 1.0))
        scale = counts[c] * w / n
        flat = tf.concat([tf.reshape(tf.cast(g, "float64"), [-1]) * scale
                          for g in grads if g is not None], axis=0)
        totals = flat if totals is None else totals + flat
        rows.append({"class": int(c), "count": int(counts[c]), "weight": w,
                     "grad_norm": float(tf.norm(flat)), "_flat": flat})
    total_norm = float(tf.norm(totals))
    mass = sum(r["count"] * r["weight"] for r in rows)
    for r in rows:
        r["share"] = r["grad_norm"] / total_norm if total_norm > 0 else np.nan
        r["weight_share"] = r["count"] * r["weight"] / mass
        del r["_flat"]
    return pd.DataFrame(rows)


def _select_layers(model: keras.Model, layers: Sequence[str] | None) -> list[Any]:
    available = {layer.name: layer for layer in model.layers}
    if layers is None:
        chosen = [la for la in model.layers if activation_kind(la) is not None]
        if not chosen:
            raise ValueError(f"Model '{model.name}' has no activation layer to measure; "
                             f"pass layers. Valid: {', '.join(available)}.")
        return chosen
    missing = [n for n in layers if n not in available]
    if missing:
        raise ValueError(f"Unknown layer(s) {missing}. Valid: {', '.join(available)}.")
    return [available[n] for n in layers]


def _batched_outputs(model: keras.Model, x: np.ndarray, layers: list[Any],
                     batch_size: int) -> Iterator[list[np.ndarray]]:
    probe = keras.Model(model_inputs(model), [layer.output for layer in layers])
    for start in range(0, len(x), batch_size):
        outputs = probe(x[start:start + batch_size], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        yield [keras.ops.convert_to_numpy(o) for o in outputs]


def layer_outputs(model: keras.Model, x: Any, layers: Sequence[str] | None = None, *,
                  batch_size: int = 256) -> dict[str, np.ndarray]:
    """The outputs of some layers on `x` (inference mode), e.g. for histograms.

    Args:
        model: a built model.
        x: inputs.
        layers: layer names. Defaults to every layer that applies an activation.
        batch_size: examples per forward pass. Defaults to `256`.

    Returns:
        Layer name -> array ``(N, ...)``.

    Raises:
        ValueError: the data do not fit, or a layer name is unknown.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, figure 11-1 (activations through depth).
    """
    x = check_input_shape(model, x)
    chosen = _select_layers(model, layers)
    parts = list(_batched_outputs(model, x, chosen, batch_size))
    return {la.name: np.concatenate([p[i] for p in parts]) for i, la in enumerate(chosen)}


def activation_stats(model: keras.Model, x: Any, layers: Sequence[str] | None = None, *,
                     batch_size: int = 256) -> pd.DataFrame:
    """Per-layer activation statistics on `x` in inference mode, streamed in batches.

    A unit is an output feature (a Dense unit, a Conv channel); it is dead when it outputs
    exactly 0 for every example (and position) of `x`. Saturation applies to sigmoid-like
    outputs below 0.01 or above 0.99 and tanh-like outputs beyond +-0.99; it is NaN for
    other activations.

    Args:
        model: a built model.
        x: inputs (a batch, the larger the surer a "dead" verdict).
        layers: layer names. Defaults to every layer that applies an activation.
        batch_size: examples per forward pass. Defaults to `256`.

    Returns:
        One row per layer: ``layer``, ``depth``, ``kind`` (activation), ``units``, ``mean``,
        ``std``, ``frac_zero``, ``dead_fraction``, ``saturated_fraction``,
        ``nonfinite_fraction``, ``is_output`` (the model's output layer).

    Raises:
        ValueError: the data do not fit, or a layer name is unknown.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Better Activation Functions" (dying
    ReLUs) and figure 11-1 (saturation of the sigmoid).
    """
    x = check_input_shape(model, x)
    chosen = _select_layers(model, layers)
    acc = [{"n": 0, "sum": 0.0, "sq": 0.0, "zero": 0, "sat": 0, "bad": 0, "alive": None}
           for _ in chosen]
    for outputs in _batched_outputs(model, x, chosen, batch_size):
        for a, layer, out in zip(acc, chosen, outputs):
            out = out.astype("float64")
            finite = np.isfinite(out)
            a["n"] += out.size
            a["bad"] += int(out.size - finite.sum())
            a["sum"] += float(out[finite].sum())
            a["sq"] += float(np.square(out[finite]).sum())
            a["zero"] += int((out == 0).sum())
            alive = (out != 0).reshape(-1, out.shape[-1]).any(axis=0)
            a["alive"] = alive if a["alive"] is None else a["alive"] | alive
            bounds = SATURATING.get(activation_kind(layer) or "")
            if bounds:
                a["sat"] += int(((out < bounds[0]) | (out > bounds[1])).sum())
    out_names = {t._keras_history[0].name for t in model.outputs}
    rows = []
    for depth, (a, layer) in enumerate(zip(acc, chosen)):
        kind = activation_kind(layer)
        good = max(a["n"] - a["bad"], 1)
        mean = a["sum"] / good
        rows.append({
            "layer": layer.name, "depth": depth, "kind": kind or "none",
            "units": len(a["alive"]), "mean": mean,
            "std": float(np.sqrt(max(a["sq"] / good - mean**2, 0.0))),
            "frac_zero": a["zero"] / a["n"], "dead_fraction": float(1 - a["alive"].mean()),
            "saturated_fraction": a["sat"] / a["n"] if kind in SATURATING else np.nan,
            "nonfinite_fraction": a["bad"] / a["n"], "is_output": layer.name in out_names,
        })
    return pd.DataFrame(rows)


def weight_stats(model: keras.Model) -> pd.DataFrame:
    """Statistics of every weight of a model (trainable or not).

    Args:
        model: a built model.

    Returns:
        One row per variable: ``variable`` (path), ``layer``, ``trainable``, ``shape``,
        ``size``, ``mean``, ``std``, ``min``, ``max``, ``norm``, ``nonfinite`` (count of
        NaN/Inf entries; the statistics use the finite ones).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Glorot and He Initialization".
    """
    trainable = {id(v) for v in model.trainable_weights}
    owner = {id(v): name for name, layer in leaf_layers(model) for v in layer.weights}
    rows = []
    for v in model.weights:
        values = np.asarray(keras.ops.convert_to_numpy(v.value), dtype="float64").ravel()
        finite = values[np.isfinite(values)]
        # The norm as NumPy's pairwise sum, not np.linalg.norm: BLAS's dot splits a long
        # vector over one thread per usable core, so its last digits would change with the
        # cores a run may use (taskset, a container's cpuset) and reruns would differ.
        stats = ((finite.mean(), finite.std(), finite.min(), finite.max(),
                  np.sqrt(np.sum(finite * finite))) if finite.size else (np.nan,) * 5)
        rows.append(dict(zip(
            ("variable", "layer", "trainable", "shape", "size", "mean", "std", "min", "max",
             "norm", "nonfinite"),
            (v.path, owner.get(id(v), v.path.rsplit("/", 1)[0]), id(v) in trainable,
             str(tuple(v.shape)), values.size, *map(float, stats),
             int(values.size - finite.size)))))
    return pd.DataFrame(rows)
