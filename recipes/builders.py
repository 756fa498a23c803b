"""Builders: one spec in, one uncompiled functional Keras model out.

`build_mlp` and `build_cnn` implement every field of `MLPSpec`/`CNNSpec`, and give the
layers stable names so that diagnostics can find them:

- hidden Dense `hidden_{i}`, its BN `bn_{i}`, activation `act_{i}`, dropout
  `dropout_{i}`, residual Add `add_{i}`;
- convolution `conv_{b}_{j}`, its BN `conv_bn_{b}_{j}`, activation `conv_act_{b}_{j}`,
  pooling after block `b` `pool_{b}`;
- input plumbing `flatten`, `reshape`, `input_bn`, `input_normalization`,
  `input_rescale`, `aug_{name}`; `global_pool`; `dropout_head`; output Dense `output`.

Example:

```python
spec = MLPSpec(hidden_units=(300, 100), input_norm="batch_norm", batch_norm="after")
model = build_mlp(spec, input_shape=(28, 28), num_classes=10)
count_params(model)  # {'trainable': 268978, 'non_trainable': 2368, 'total': 271346}
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 11 (initialization, activations, batch
normalization, regularization); ch. 14 for the CNN blocks.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from recipes.activations import make_activation
from recipes.initializers import make_initializer, recommended_initializer
from recipes.regularization import MCDropout, make_regularizer
from recipes.specs import CNNSpec, MLPSpec

__all__ = ["MIN_STD_FRACTION", "augmentation_layers", "build_cnn", "build_mlp", "count_params",
           "standardization_stats"]

_AUGMENTATION_LAYERS = {
    "flip": lambda: keras.layers.RandomFlip("horizontal", name="aug_flip"),
    "rotation": lambda: keras.layers.RandomRotation(0.1, name="aug_rotation"),
    "zoom": lambda: keras.layers.RandomZoom(0.1, name="aug_zoom"),
    "contrast": lambda: keras.layers.RandomContrast(0.2, name="aug_contrast"),
    "translation": lambda: keras.layers.RandomTranslation(0.1, 0.1, name="aug_translation"),
}


def augmentation_layers(names: tuple[str, ...] | list[str]) -> list[keras.layers.Layer]:
    """Fresh training-only augmentation layers, one per name, in order.

    The one table of the project's augmentations: `flip` (horizontal), `rotation` (up to
    +/-10% of a turn), `zoom` (+/-10%), `contrast` (+/-20%), `translation` (+/-10%). Each
    layer is active only in training (``model.fit``), idle in ``predict``/``evaluate``.

    Args:
        names: names among `recipes.specs.AUGMENTATIONS`.

    Returns:
        The Keras layers (named ``aug_<name>``).

    Raises:
        ValueError: an unknown name (the valid ones are listed).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 14, "Data Augmentation".
    """
    unknown = [n for n in names if n not in _AUGMENTATION_LAYERS]
    if unknown:
        raise ValueError(f"Unknown augmentation {unknown[0]!r}. Valid: "
                         f"{', '.join(_AUGMENTATION_LAYERS)}.")
    return [_AUGMENTATION_LAYERS[n]() for n in names]


class _Parts:
    """Per-layer factories for one spec: fresh initializer, penalty and constraint."""

    def __init__(self, spec: MLPSpec | CNNSpec) -> None:
        self.spec = spec
        name = spec.initializer
        self.init_name = recommended_initializer(spec.activation) if name == "auto" else name
        make_initializer(self.init_name)  # fail early on an unknown name
        make_activation(spec.activation, **dict(spec.activation_kwargs))  # same

    def kernel_kwargs(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "kernel_initializer": self.initializer(),
            "kernel_regularizer": make_regularizer(spec.l1, spec.l2),
            "kernel_constraint": (
                keras.constraints.MaxNorm(spec.max_norm) if spec.max_norm is not None else None
            ),
        }

    def initializer(self) -> keras.initializers.Initializer:
        # A new initializer per layer: a Keras initializer repeats its values on each call.
        init = self.init_name
        if isinstance(init, keras.initializers.Initializer):  # an object: clone it
            return type(init).from_config(init.get_config())
        return make_initializer(init)

    def activation(self, name: str) -> keras.layers.Layer:
        return make_activation(self.spec.activation, name=name, **dict(self.spec.activation_kwargs))

    def dropout(self, name: str) -> keras.layers.Layer:
        kind, rate = self.spec.dropout_kind, self.spec.dropout_rate
        if kind == "alpha":
            return keras.layers.AlphaDropout(rate, name=name)
        if kind == "mc":
            return MCDropout(rate, name=name)
        return keras.layers.Dropout(rate, name=name)

    def block(self, x, make_core, bn_name: str, act_name: str, use_bn: bool):
        """core (Dense/Conv) -> [BN -> act | act -> BN | act]."""
        placement = self.spec.batch_norm if use_bn else "none"
        x = make_core(use_bias=placement != "before")(x)
        momentum = self.spec.batch_norm_momentum
        if placement == "before":
            x = keras.layers.BatchNormalization(momentum=momentum, name=bn_name)(x)
            return self.activation(act_name)(x)
        x = self.activation(act_name)(x)
        if placement == "after":
            x = keras.layers.BatchNormalization(momentum=momentum, name=bn_name)(x)
        return x

    def dense_stack(self, x, units_list: tuple[int, ...], residual: bool = False):
        for i, units in enumerate(units_list):
            inputs = x

            def core(use_bias: bool, i: int = i, units: int = units) -> keras.layers.Layer:
                return keras.layers.Dense(
                    int(units), use_bias=use_bias, name=f"hidden_{i}", **self.kernel_kwargs()
                )

            x = self.block(x, core, f"bn_{i}", f"act_{i}", self.spec.batch_norm != "none")
            if residual and inputs.shape[-1] == int(units):
                x = keras.layers.Add(name=f"add_{i}")([inputs, x])
            if self.spec.dropout_rate > 0:
                x = self.dropout(f"dropout_{i}")(x)
        return x


MIN_STD_FRACTION = 0.1


def standardization_stats(
    data: Any, feature_shape: tuple[int, ...], min_std_fraction: float = MIN_STD_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance for a `Normalization` layer, with a floored variance.

    Keras's `Normalization` divides by ``max(std, 1e-7)``: on MNIST, 67 border pixels are
    constant in the training set and a few more almost so, and one stroke there puts a
    validation pixel hundreds of thousands of standard deviations out. The standard
    deviation is therefore floored at `min_std_fraction` times the mean feature std.

    Args:
        data: training inputs, any shape ending in `feature_shape`.
        feature_shape: shape of one example after flattening (MLP) or `(H, W, C)` (CNN).
        min_std_fraction: the floor as a fraction of the mean std. Defaults to `0.1`.

    Returns:
        `(mean, variance)` over the last axis (per feature, or per channel for images).
    """
    flat = np.asarray(data, dtype="float64").reshape((-1, *feature_shape))
    flat = flat.reshape(-1, feature_shape[-1])
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    floor = min_std_fraction * float(std.mean()) if std.mean() > 0 else 1.0
    std = np.maximum(std, floor)
    return mean.astype("float32"), (std**2).astype("float32")


def _input_norm(kind: str, x, adapt_data: Any, feature_shape: tuple[int, ...]):
    if kind == "batch_norm":
        return keras.layers.BatchNormalization(name="input_bn")(x)
    if kind == "rescale":
        return keras.layers.Rescaling(1.0 / 255, name="input_rescale")(x)
    if kind == "normalization":
        if adapt_data is None:
            raise ValueError(
                "input_norm='normalization' needs adapt_data: the Normalization layer learns "
                "the features' mean and variance from it. Pass adapt_data=x_train."
            )
        mean, variance = standardization_stats(adapt_data, feature_shape)
        return keras.layers.Normalization(
            mean=mean, variance=variance, name="input_normalization"
        )(x)
    return x


def _output(x, num_classes: int, output_activation: str):
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes!r}.")
    activation = "sigmoid" if num_classes == 1 else output_activation
    # Under a mixed policy the probabilities stay float32, as the Keras mixed-precision
    # guide advises: a bf16 softmax has 3 significant digits, too few for the loss.
    low = keras.config.dtype_policy().compute_dtype in ("float16", "bfloat16")
    return keras.layers.Dense(
        num_classes, activation=activation, kernel_initializer="glorot_uniform", name="output",
        dtype="float32" if low else None,
    )(x)


def build_mlp(
    spec: MLPSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    adapt_data: Any = None,
    name: str | None = None,
) -> keras.Model:
    """Build an uncompiled MLP classifier from a spec.

    Input -> Flatten (multi-dimensional inputs) -> input norm -> for each hidden layer:
    Dense -> BN/activation in the spec's order -> residual Add (when the width is
    unchanged and `residual=True`) -> dropout -> output Dense (softmax, or sigmoid for
    one unit; Glorot initialized).

    Args:
        spec: the `MLPSpec`.
        input_shape: shape of one example, e.g. `(28, 28)` or `(784,)`.
        num_classes: output units; `1` gives a sigmoid output.
        adapt_data: training inputs to adapt the `Normalization` layer when
            `spec.input_norm == "normalization"`.
        name: model name. Defaults to `"mlp"`.

    Returns:
        An uncompiled functional `keras.Model`.

    Raises:
        ValueError: on an unknown initializer/activation name, `num_classes < 1`, or
            a `normalization` input without `adapt_data`.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11.
    """
    parts = _Parts(spec)
    inputs = keras.Input(shape=tuple(input_shape))
    x = inputs
    if len(input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    x = _input_norm(spec.input_norm, x, adapt_data, (int(np.prod(input_shape)),))
    x = parts.dense_stack(x, spec.hidden_units, residual=spec.residual)
    outputs = _output(x, num_classes, spec.output_activation)
    return keras.Model(inputs, outputs, name=name or "mlp")


def _check_valid_padding(spec: CNNSpec, image_shape: tuple[int, ...]) -> None:
    """Refuse a `padding="valid"` stack that shrinks the maps to nothing (clear message)."""
    if spec.padding != "valid":
        return
    size = min(image_shape[:2])
    for b in range(len(spec.filters)):
        for j in range(spec.convs_per_block):
            if size < spec.kernel_size:
                raise ValueError(
                    f"padding='valid' leaves {size}x{size} maps before conv_{b}_{j}, smaller "
                    f"than its {spec.kernel_size}x{spec.kernel_size} kernel (input "
                    f"{image_shape[0]}x{image_shape[1]}); use padding='same', fewer blocks or "
                    "a smaller kernel.")
            size -= spec.kernel_size - 1
            if b == j == 0:
                size = (size - 1) // spec.first_stride + 1
        if spec.pooling != "none":
            if size < 2:
                raise ValueError(
                    f"padding='valid' leaves {size}x{size} maps before pool_{b} (input "
                    f"{image_shape[0]}x{image_shape[1]}); use padding='same' or fewer blocks.")
            size //= 2


def build_cnn(
    spec: CNNSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    adapt_data: Any = None,
    name: str | None = None,
) -> keras.Model:
    """Build an uncompiled CNN classifier from a spec.

    Input -> Reshape to `(H, W, 1)` for `(H, W)` inputs -> augmentation (active only in
    training) -> input norm -> conv blocks (`convs_per_block` convolutions, the very first
    with stride `first_stride`, BN
    from block `batch_norm_from` on, then max/avg pooling of size 2) -> Flatten or
    global average pooling -> hidden Dense layers (BN whenever `batch_norm != "none"`,
    dropout after each) -> output Dense. Convolutions get no dropout; with no hidden
    Dense layer, one dropout (`dropout_head`) sits right before the output.

    Note: Keras 3's augmentation layers default to `training=True` in `call`, so a bare
    `model(x)` augments; use `model(x, training=False)` or `model.predict(x)` for
    deterministic inference.

    Args:
        spec: the `CNNSpec`.
        input_shape: `(H, W)` or `(H, W, C)`.
        num_classes: output units; `1` gives a sigmoid output.
        adapt_data: training images to adapt the `Normalization` layer when
            `spec.input_norm == "normalization"`.
        name: model name. Defaults to `"cnn"`.

    Returns:
        An uncompiled functional `keras.Model`.

    Raises:
        ValueError: on a bad input shape, an unknown name, `num_classes < 1`, or a
            `normalization` input without `adapt_data`.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11 and ch. 14.
    """
    if len(input_shape) not in (2, 3):
        raise ValueError(f"build_cnn needs input_shape (H, W) or (H, W, C), got {input_shape!r}.")
    parts = _Parts(spec)
    inputs = keras.Input(shape=tuple(input_shape))
    x = inputs
    image_shape = tuple(int(d) for d in input_shape)
    if len(image_shape) == 2:
        image_shape = (*image_shape, 1)
        x = keras.layers.Reshape(image_shape, name="reshape")(x)
    _check_valid_padding(spec, image_shape)
    for layer in augmentation_layers(spec.augmentation):
        x = layer(x)
    x = _input_norm(spec.input_norm, x, adapt_data, image_shape)
    for b, filters in enumerate(spec.filters):
        for j in range(spec.convs_per_block):

            def core(use_bias: bool, b: int = b, j: int = j, f: int = filters):
                return keras.layers.Conv2D(
                    int(f), spec.kernel_size, padding=spec.padding, use_bias=use_bias,
                    strides=spec.first_stride if b == j == 0 else 1,
                    name=f"conv_{b}_{j}", **parts.kernel_kwargs(),
                )  # fmt: skip

            use_bn = spec.batch_norm != "none" and b >= spec.batch_norm_from
            x = parts.block(x, core, f"conv_bn_{b}_{j}", f"conv_act_{b}_{j}", use_bn)
        if spec.pooling == "max":
            x = keras.layers.MaxPooling2D(2, name=f"pool_{b}")(x)
        elif spec.pooling == "avg":
            x = keras.layers.AveragePooling2D(2, name=f"pool_{b}")(x)
    if spec.global_pooling:
        x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    else:
        x = keras.layers.Flatten(name="flatten")(x)
    x = parts.dense_stack(x, spec.dense_units)
    if not spec.dense_units and spec.dropout_rate > 0:
        x = parts.dropout("dropout_head")(x)
    outputs = _output(x, num_classes, spec.output_activation)
    return keras.Model(inputs, outputs, name=name or "cnn")


def count_params(model: keras.Model) -> dict[str, int]:
    """Count a model's trainable and non-trainable parameters.

    Args:
        model: a built model.

    Returns:
        `{"trainable": ..., "non_trainable": ..., "total": ...}`.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Implementing Batch Normalization
    with Keras" (the parameter counts of `model.summary()`).
    """
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    total = trainable + non_trainable
    return {"trainable": trainable, "non_trainable": non_trainable, "total": total}
