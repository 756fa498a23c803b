"""Self-normalizing networks: SELU MLPs and the statistics that show they self-normalize.

Klambauer et al. proved that a plain stack of dense layers with SELU activations keeps
each layer's output at mean 0 and standard deviation 1 when the inputs are standardized,
the weights are LeCun normal, the layers are sequential, and dropout, if any, is alpha
dropout. `build_selu_mlp` meets those conditions (through `build_mlp`), and
`layer_statistics` measures the mean and std of every hidden activation.

Example:

```python
model = build_selu_mlp(100, 100, (50,), 10, x_train=x_train)
stats = layer_statistics(model, x_train[:1000])
stats[["mean", "std"]].iloc[-1]  # ~ 0 and ~ 1, a hundred layers deep
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "SELU"; Klambauer et al.,
"Self-Normalizing Neural Networks" (2017).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pandas as pd

from recipes.builders import build_mlp
from recipes.specs import MLPSpec

__all__ = ["build_selu_mlp", "layer_statistics"]


def build_selu_mlp(
    depth: int,
    units: int,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    x_train: Any = None,
    alpha_dropout: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """Build a self-normalizing MLP: SELU, LeCun normal, standardized inputs, alpha dropout.

    Args:
        depth: number of hidden Dense layers.
        units: units per hidden layer.
        input_shape: shape of one example.
        num_classes: output units.
        x_train: training inputs; a `Normalization` layer is adapted on them so the
            network's inputs have mean 0 and std 1.
        alpha_dropout: `AlphaDropout` rate after each hidden layer; 0 disables.
        name: model name. Defaults to `"selu_mlp_{depth}x{units}"`.

    Returns:
        An uncompiled functional `keras.Model` (layers named as in `recipes.builders`).

    Raises:
        ValueError: if `x_train` is `None`, or `depth`/`units` is smaller than 1.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "SELU".
    """
    if x_train is None:
        raise ValueError(
            "build_selu_mlp needs x_train: self-normalization only holds for standardized "
            "inputs (mean 0, std 1), so a Normalization layer is adapted on x_train."
        )
    if depth < 1 or units < 1:
        raise ValueError(f"depth and units must be >= 1, got depth={depth!r}, units={units!r}.")
    spec = MLPSpec.deep(
        depth,
        units,
        activation="selu",
        initializer="lecun_normal",
        input_norm="normalization",
        dropout_rate=alpha_dropout,
        dropout_kind="alpha",
    )
    return build_mlp(
        spec, input_shape, num_classes, adapt_data=x_train, name=name or f"selu_mlp_{depth}x{units}"
    )


def layer_statistics(
    model: keras.Model, x: Any, layer_names: list[str] | None = None
) -> pd.DataFrame:
    """Mean and std of the outputs of a model's hidden activations on `x`.

    One sub-model `keras.Model(model.inputs, [outputs...])` computes every requested
    output in a single inference pass (`training=False`).

    Args:
        model: a functional model, e.g. from `build_mlp` or `build_selu_mlp`.
        x: inputs.
        layer_names: layers to measure. Defaults to the `act_*` layers, in model order.

    Returns:
        A DataFrame with columns `layer`, `depth` (0-based position in `layer_names`),
        `mean`, `std` (over all examples and units).

    Raises:
        ValueError: if a layer name is not in the model, or there is nothing to measure.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "The Vanishing/Exploding Gradients
    Problems" (figure 11-1's per-layer statistics).
    """
    available = [layer.name for layer in model.layers]
    if layer_names is None:
        layer_names = [n for n in available if n.startswith("act_")]
    if not layer_names:
        raise ValueError(
            "layer_statistics found no layer to measure: the model has no 'act_*' layer. "
            "Pass layer_names."
        )
    missing = [n for n in layer_names if n not in available]
    if missing:
        raise ValueError(f"Unknown layer(s) {missing}. Valid: {', '.join(available)}.")
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    probe = keras.Model(inputs, [model.get_layer(n).output for n in layer_names])
    outputs = probe(np.asarray(x), training=False)
    if not isinstance(outputs, list | tuple):
        outputs = [outputs]
    rows = []
    for depth, (layer, out) in enumerate(zip(layer_names, outputs)):
        values = keras.ops.convert_to_numpy(out).astype("float64")
        rows.append({"layer": layer, "depth": depth, "mean": values.mean(), "std": values.std()})
    return pd.DataFrame(rows, columns=["layer", "depth", "mean", "std"])
