"""Probing a Keras model: its activation layers, its kernels, its input shape, its loss.

The helpers the diagnostics share, written once. They work on any built Keras model,
Sequential or functional, with the activation inside a Dense/Conv layer or as a separate
layer (``Activation``, ``ReLU``, ``LeakyReLU``, ``PReLU``, ``ELU``, ``Softmax``, ``RReLU``).

Example:

```python
activation_kind(model.get_layer("hidden_0"))  # "relu", or None for a linear Dense
x = check_input_shape(model, x)               # float32, or a ValueError naming both shapes
loss = resolve_loss(model, y)                 # the compiled loss, else one that fits y
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 11 (activation functions) and ch. 10
(choosing the loss of a classifier).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

__all__ = [
    "SATURATING",
    "activation_kind",
    "check_input_shape",
    "kernels",
    "leaf_layers",
    "model_inputs",
    "resolve_loss",
]

# Output bounds beyond which a saturating activation's derivative is nearly zero.
SATURATING = {"sigmoid": (0.01, 0.99), "hard_sigmoid": (0.01, 0.99), "tanh": (-0.99, 0.99),
              "hard_tanh": (-0.99, 0.99)}
_LAYER_KINDS = ((keras.layers.ReLU, "relu"), (keras.layers.LeakyReLU, "leaky_relu"),
                (keras.layers.PReLU, "prelu"), (keras.layers.ELU, "elu"),
                (keras.layers.Softmax, "softmax"))


def activation_kind(layer: keras.layers.Layer) -> str | None:
    """The activation a layer applies (``"relu"``, ``"sigmoid"`` ...), or None.

    Args:
        layer: any layer; Dense/Conv layers report their ``activation`` unless linear.

    Returns:
        The activation's name, or None for a layer without one.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Better Activation Functions".
    """
    for cls, kind in _LAYER_KINDS:
        if isinstance(layer, cls):
            return kind
    if type(layer).__name__ == "RReLU":
        return "rrelu"
    fn = getattr(layer, "activation", None)
    if not callable(fn) or isinstance(layer, keras.Model):
        return None
    name = getattr(fn, "__name__", type(fn).__name__)
    return None if name == "linear" else name


def model_inputs(model: keras.Model) -> Any:
    """The model's symbolic input.

    Args:
        model: a Sequential or functional model.

    Returns:
        Its input tensor, or the list of them for several inputs.

    Raises:
        ValueError: the model is not built or has no symbolic inputs (subclassed).

    Reference: Keras guide, "The Functional API" (``model.inputs``).
    """
    try:
        inputs = model.inputs
    except AttributeError as e:
        raise ValueError(f"Model '{model.name}' is not built: give it a keras.Input first or "
                         "call it on a batch.") from e
    if not inputs:
        raise ValueError(f"Model '{model.name}' has no symbolic inputs (a subclassed model?); "
                         "diagnostics need a Sequential or functional model.")
    return inputs[0] if len(inputs) == 1 else inputs


def check_input_shape(model: keras.Model, x: Any) -> np.ndarray:
    """Check that a batch fits the model's (single) input and return it as float32.

    Args:
        model: a built model with one input.
        x: a batch ``(N, ...)``.

    Returns:
        ``x`` as a float32 array.

    Raises:
        ValueError: the model is not built, or ``x``'s shape does not fit its input.

    Reference: Keras guide, "The Functional API" (``model.inputs``).
    """
    inputs = model_inputs(model)
    if isinstance(inputs, list):
        raise ValueError(f"Model '{model.name}' has {len(inputs)} inputs; diagnostics take "
                         "single-input models.")
    expected = tuple(inputs.shape)
    x = np.asarray(x, dtype="float32")
    ok = x.ndim == len(expected) and all(e is None or e == s
                                         for e, s in zip(expected[1:], x.shape[1:]))
    if not ok:
        hint = " (a single example? pass a batch: x[None])" if x.ndim == len(expected) - 1 else ""
        raise ValueError(
            f"Data of shape {x.shape} does not fit model '{model.name}', which expects "
            f"inputs of shape {expected}{hint}.")
    if len(x) == 0:
        raise ValueError("Diagnostics need at least one example, got an empty batch.")
    return x


def resolve_loss(model: keras.Model, y: Any = None, loss: Any = None) -> Any:
    """The loss to differentiate: `loss`, else the compiled one, else one that fits `y`.

    Without a compiled loss: one output unit -> binary cross-entropy; one-hot `y` ->
    categorical; integer `y` -> sparse categorical; ``from_logits`` when the output layer
    has no softmax/sigmoid.

    Args:
        model: the model.
        y: the labels (to choose between sparse and one-hot).
        loss: a loss name, function or ``keras.losses.Loss``.

    Returns:
        A callable ``(y_true, y_pred) -> per-sample or scalar loss``.

    Raises:
        ValueError: for a multi-output loss (a dict or list).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Compiling the model" (which loss).
    """
    loss = loss if loss is not None else getattr(model, "loss", None)
    if isinstance(loss, (dict, list, tuple)):
        raise ValueError("Diagnostics take one loss for one output; got a "
                         f"{type(loss).__name__} of losses.")
    if loss is not None:
        return keras.losses.get(loss) if isinstance(loss, str) else loss
    units = model.outputs[0].shape[-1]
    logits = activation_kind(model.layers[-1]) not in ("softmax", "sigmoid")
    if units == 1:
        return keras.losses.BinaryCrossentropy(from_logits=logits)
    if y is not None and np.ndim(y) == 2 and np.shape(y)[-1] == units:
        return keras.losses.CategoricalCrossentropy(from_logits=logits)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=logits)


def leaf_layers(model: keras.Model, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every layer of a model, nested models flattened.

    Args:
        model: a model.
        prefix: prepended to the names (used for the recursion).

    Returns:
        An iterator of ``(qualified name, layer)``, e.g. ``("base/conv", layer)``.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Reusing Pretrained Layers" (a
    pretrained base nested in a model).
    """
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer, f"{prefix}{layer.name}/")
        else:
            yield prefix + layer.name, layer


def kernels(model: keras.Model) -> list[tuple[str, Any]]:
    """``(layer name, variable)`` of every trainable kernel (weights of rank >= 2), in order.

    Args:
        model: a built model.

    Returns:
        The kernels of Dense, Conv, Embedding ... layers; biases and BN scales excluded.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Glorot and He Initialization".
    """
    owner = {id(v): name for name, layer in leaf_layers(model) for v in layer.weights}
    return [(owner.get(id(v), v.path.rsplit("/", 1)[0]), v)
            for v in model.trainable_variables if len(v.shape) >= 2]
