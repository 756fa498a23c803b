"""Weight initializers: names to Keras initializers, and the chapter's table.

Glorot and He showed that the variance of the signal stays steady through a deep net
when each layer's weights have variance ``scale / fan``: Glorot (``1 / fan_avg``) for
no activation, tanh, sigmoid and softmax; He (``2 / fan_in``) for ReLU and its variants;
LeCun (``1 / fan_in``) for SELU. `make_initializer` turns a name into the Keras
initializer; `recommended_initializer` looks an activation up in that table.

Example:

```python
init = make_initializer(recommended_initializer("elu"))  # HeNormal
layer = keras.layers.Dense(100, activation="elu", kernel_initializer=init)
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Glorot and He Initialization".
"""

from __future__ import annotations

import keras

from recipes.names import INITIALIZER_NAMES

__all__ = ["INITIALIZER_NAMES", "make_initializer", "recommended_initializer"]


def _variance_scaling_fan_avg(seed: int | None) -> keras.initializers.Initializer:
    # The book's He initialization based on fan_avg instead of fan_in.
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_avg", distribution="uniform", seed=seed
    )


_FACTORIES = {
    "glorot_normal": keras.initializers.GlorotNormal,
    "glorot_uniform": keras.initializers.GlorotUniform,
    "he_normal": keras.initializers.HeNormal,
    "he_uniform": keras.initializers.HeUniform,
    "lecun_normal": keras.initializers.LecunNormal,
    "lecun_uniform": keras.initializers.LecunUniform,
    "glorot": keras.initializers.GlorotNormal,
    "he": keras.initializers.HeNormal,
    "lecun": keras.initializers.LecunNormal,
    "he_avg_uniform": _variance_scaling_fan_avg,
    "variance_scaling_fan_avg": _variance_scaling_fan_avg,
    # The "bad" initialization of the chapter's opening figure: N(0, 1) whatever the fan.
    "random_normal": lambda seed: keras.initializers.RandomNormal(stddev=1.0, seed=seed),
}

_GLOROT = ("linear", "none", "tanh", "sigmoid", "softmax")
_HE = ("relu", "leaky_relu", "prelu", "rrelu", "elu", "gelu", "swish", "silu", "mish")
_LECUN = ("selu",)
_RECOMMENDED = {
    **dict.fromkeys(_GLOROT, "glorot_uniform"),
    **dict.fromkeys(_HE, "he_normal"),
    **dict.fromkeys(_LECUN, "lecun_normal"),
}


def make_initializer(
    name_or_obj: str | keras.initializers.Initializer, seed: int | None = None
) -> keras.initializers.Initializer:
    """Return the Keras initializer for a name; an initializer object passes through.

    Names: the Keras spellings `glorot_normal`, `glorot_uniform`, `he_normal`,
    `he_uniform`, `lecun_normal`, `lecun_uniform`; the aliases `glorot`, `he`, `lecun`
    (the normal ones); the book's `he_avg_uniform` / `variance_scaling_fan_avg`
    (`VarianceScaling(scale=2, mode="fan_avg", distribution="uniform")`); and
    `random_normal`, the chapter's bad `RandomNormal(stddev=1)`.

    Note that a Keras initializer built with `seed=None` or an integer seed gives the
    same values each time it is called: make one initializer per layer.

    Args:
        name_or_obj: a name above, or a `keras.initializers.Initializer`.
        seed: seed for the random initializer. Defaults to `None`.

    Returns:
        A `keras.initializers.Initializer`.

    Raises:
        ValueError: if the name is unknown.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Glorot and He Initialization".
    """
    if isinstance(name_or_obj, keras.initializers.Initializer):
        return name_or_obj
    if not isinstance(name_or_obj, str) or name_or_obj not in _FACTORIES:
        raise ValueError(
            f"Unknown initializer {name_or_obj!r}. Valid: {', '.join(INITIALIZER_NAMES)}."
        )
    return _FACTORIES[name_or_obj](seed=seed)


def recommended_initializer(activation: str | None) -> str:
    """Return the Keras name of the initializer the chapter recommends for an activation.

    Glorot (`"glorot_uniform"`, Keras's default) for `None`/`linear`, `tanh`, `sigmoid`,
    `softmax`; He (`"he_normal"`) for `relu`, `leaky_relu`, `prelu`, `rrelu`, `elu`,
    `gelu`, `swish`/`silu`, `mish`; LeCun (`"lecun_normal"`) for `selu`.

    Args:
        activation: an activation name, or `None` for no activation.

    Returns:
        An initializer name accepted by `make_initializer` and by Keras.

    Raises:
        ValueError: if the activation is unknown.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, Table 11-1.
    """
    key = "none" if activation is None else activation
    if not isinstance(key, str) or key not in _RECOMMENDED:
        raise ValueError(f"Unknown activation {activation!r}. Valid: {', '.join(_RECOMMENDED)}.")
    return _RECOMMENDED[key]
