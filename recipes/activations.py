"""Activation layers by name, and the randomized leaky ReLU that Keras lacks.

`make_activation` returns a Keras LAYER (so builders can name it and diagnostics can
find it): `keras.layers.Activation` where Keras has the function, `LeakyReLU`, `PReLU`
and `ELU` layers for the parameterized ones, and `RReLU` (randomized leaky ReLU, Xu et
al. 2015), which Keras does not ship.

Example:

```python
act = make_activation("leaky_relu", negative_slope=0.2, name="act_0")
rrelu = make_activation("rrelu", lower=1 / 8, upper=1 / 3)
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Better Activation Functions".
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from recipes.names import ACTIVATION_NAMES

__all__ = ["ACTIVATION_NAMES", "RReLU", "make_activation"]


@keras.saving.register_keras_serializable(package="recipes")
class RReLU(keras.layers.Layer):
    """Randomized leaky ReLU: a random slope on negative inputs during training.

    In training each element's negative-side slope is drawn uniformly from
    `[lower, upper]`; at inference the slope is fixed to the mean `(lower + upper) / 2`.
    The random slopes act as a regularizer (Xu et al. found it reduced overfitting).

    Example:

    ```python
    layer = RReLU(lower=1 / 8, upper=1 / 3)
    layer(np.array([[-3.0, 2.0]]))  # [[-0.6875, 2.0]] at inference
    ```

    Args:
        lower: smallest slope. Defaults to `1/8`.
        upper: largest slope. Defaults to `1/3`.
        seed: seed of the slopes' random generator. Defaults to `None`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Raises:
        ValueError: unless `0 <= lower <= upper`.

    Reference: Xu et al., "Empirical Evaluation of Rectified Activations in
    Convolutional Network" (2015); Géron, Hands-On ML (3rd ed.), ch. 11, "Leaky ReLU".
    """

    def __init__(
        self, lower: float = 1 / 8, upper: float = 1 / 3, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= lower <= upper:
            raise ValueError(f"RReLU needs 0 <= lower <= upper, got lower={lower}, upper={upper}.")
        self.lower = float(lower)
        self.upper = float(upper)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=None):
        if training:
            slope = keras.random.uniform(
                ops.shape(inputs),
                minval=self.lower,
                maxval=self.upper,
                dtype=self.compute_dtype,
                seed=self.seed_generator,
            )
        else:
            slope = (self.lower + self.upper) / 2.0
        return ops.where(inputs >= 0, inputs, inputs * slope)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"lower": self.lower, "upper": self.upper, "seed": self.seed})
        return config


# name -> (factory(kwargs) -> layer, accepted keyword arguments besides the layer's base ones)
_BASE_KWARGS = ("name", "dtype")


def _keras_activation(fn: str):
    return lambda kw: keras.layers.Activation(fn, **kw)


def _elu(kw: dict[str, Any]) -> keras.layers.Layer:
    # ELU with a custom alpha needs the ELU layer; the plain one is Activation("elu").
    return keras.layers.ELU(**kw) if "alpha" in kw else keras.layers.Activation("elu", **kw)


_FACTORIES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "relu": (_keras_activation("relu"), ()),
    "leaky_relu": (
        lambda kw: keras.layers.LeakyReLU(**{"negative_slope": 0.2, **kw}),
        ("negative_slope",),
    ),
    "prelu": (
        lambda kw: keras.layers.PReLU(**kw),
        ("alpha_initializer", "alpha_regularizer", "alpha_constraint", "shared_axes"),
    ),
    "rrelu": (lambda kw: RReLU(**kw), ("lower", "upper", "seed")),
    "elu": (_elu, ("alpha",)),
    "selu": (_keras_activation("selu"), ()),
    "gelu": (_keras_activation("gelu"), ()),
    "swish": (_keras_activation("swish"), ()),
    "silu": (_keras_activation("silu"), ()),
    "mish": (_keras_activation("mish"), ()),
    "sigmoid": (_keras_activation("sigmoid"), ()),
    "tanh": (_keras_activation("tanh"), ()),
    "linear": (_keras_activation("linear"), ()),
}



def make_activation(activation: str | keras.layers.Layer, /, **kwargs: Any) -> keras.layers.Layer:
    """Return a Keras activation layer for a name; a layer object passes through.

    Names: `relu`, `leaky_relu` (`negative_slope`, default 0.2 as in the book), `prelu`
    (`keras.layers.PReLU` arguments, e.g. `shared_axes`), `rrelu` (`lower`, `upper`,
    `seed`), `elu` (`alpha`), `selu`, `gelu`, `swish`, `silu`, `mish`, `sigmoid`,
    `tanh`, `linear`. Every name also takes the layer's `name` and `dtype`.

    Args:
        activation: a name above or a `keras.layers.Layer` (returned as is).
        **kwargs: the activation's arguments listed above, plus `name`/`dtype`.

    Returns:
        A `keras.layers.Layer`.

    Raises:
        ValueError: if the name is unknown or an argument does not apply to it.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Better Activation Functions".
    """
    if isinstance(activation, keras.layers.Layer):
        return activation
    if not isinstance(activation, str) or activation not in _FACTORIES:
        raise ValueError(
            f"Unknown activation {activation!r}. Valid: {', '.join(ACTIVATION_NAMES)}."
        )
    factory, accepted = _FACTORIES[activation]
    bad = sorted(set(kwargs) - set(accepted) - set(_BASE_KWARGS))
    if bad:
        valid = ", ".join(accepted + _BASE_KWARGS)
        raise ValueError(
            f"Unknown argument(s) {bad} for activation {activation!r}. Valid: {valid}."
        )
    return factory(dict(kwargs))
