"""Network specs: plain frozen dataclasses that say what a network is.

`MLPSpec` and `CNNSpec` are the single description of a model that the chapter
experiments, the tuner's hypermodels and coursework share; `recipes.builders` turns a
spec into an uncompiled Keras model. Specs are data: ``to_dict``/``from_dict`` round-trip
through JSON, and variants are made with ``dataclasses.replace``.

Example:

```python
spec = MLPSpec(hidden_units=(300, 100), activation="elu", batch_norm="before")
model = build_mlp(spec, input_shape=(28, 28), num_classes=10)
```

Reference: Géron, Hands-On ML (3rd ed.), chapter 11.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from recipes.checks import check_at_least, check_choice, check_fraction

BATCH_NORM_CHOICES = ("none", "before", "after")
DROPOUT_KINDS = ("standard", "alpha", "mc")
INPUT_NORM_CHOICES = ("none", "batch_norm", "normalization", "rescale")
POOLING_CHOICES = ("max", "avg", "none")
PADDING_CHOICES = ("same", "valid")
AUGMENTATIONS = ("flip", "rotation", "zoom", "contrast", "translation")

S = TypeVar("S", bound="_SpecBase")


class _SpecBase:
    """Shared validation and dict round trip."""

    def _validate_common(self) -> None:
        check_choice("batch_norm", self.batch_norm, BATCH_NORM_CHOICES)
        check_choice("dropout_kind", self.dropout_kind, DROPOUT_KINDS)
        check_choice("input_norm", self.input_norm, INPUT_NORM_CHOICES)
        check_fraction("batch_norm_momentum", self.batch_norm_momentum, include_low=False)
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate!r}.")
        if self.l1 < 0 or self.l2 < 0:
            raise ValueError(f"l1 and l2 must be >= 0, got l1={self.l1!r}, l2={self.l2!r}.")
        if self.max_norm is not None and self.max_norm <= 0:
            raise ValueError(f"max_norm must be > 0 or None, got {self.max_norm!r}.")

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as a JSON-ready dict (tuples become lists).

        Returns:
            A dict with one key per field.
        """
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls: type[S], data: Mapping[str, Any]) -> S:
        """Build a spec from `to_dict` output (lists become tuples).

        Args:
            data: the dict; unknown keys raise ``ValueError``.

        Returns:
            The spec.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(
                f"Unknown {cls.__name__} field(s) {unknown}. Valid: {', '.join(sorted(names))}."
            )
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)


@dataclass(frozen=True)
class MLPSpec(_SpecBase):
    """A fully connected classifier.

    Args:
        hidden_units: units of each hidden Dense layer. Defaults to the book's `(300, 100)`.
        activation: a `recipes.make_activation` name. Defaults to `"relu"`.
        activation_kwargs: extra arguments for the activation (e.g. `negative_slope`).
        initializer: a `recipes.make_initializer` name, or `"auto"` for the chapter's
            table (Glorot for none/tanh/sigmoid/softmax, He for the ReLU family, LeCun
            for SELU). Defaults to `"auto"`.
        batch_norm: `"none"`, `"before"` the activation (Dense without bias -> BN ->
            activation, as the book recommends) or `"after"` it. Defaults to `"none"`.
        batch_norm_momentum: the BN layers' moving-average momentum. Keras's `0.99` needs
            a few hundred steps to settle; a short run on a few thousand photos is better
            served by `0.9`. Defaults to `0.99`.
        input_norm: `"none"`, `"batch_norm"` (BN on the inputs), `"normalization"`
            (a `Normalization` layer adapted on training data) or `"rescale"` (x / 255).
        dropout_rate: rate after each hidden layer; 0 disables. Defaults to `0.0`.
        dropout_kind: `"standard"`, `"alpha"` (for SELU) or `"mc"` (active at inference).
        l1: L1 kernel penalty. Defaults to `0.0`.
        l2: L2 kernel penalty. Defaults to `0.0`.
        max_norm: max-norm constraint on hidden kernels, or `None`.
        residual: add identity skip connections around hidden layers of equal width.
        output_activation: `"softmax"` (or `"sigmoid"` for one output unit).
    """

    hidden_units: tuple[int, ...] = (300, 100)
    activation: str = "relu"
    activation_kwargs: Mapping[str, Any] = field(default_factory=dict)
    initializer: str = "auto"
    batch_norm: str = "none"
    batch_norm_momentum: float = 0.99
    input_norm: str = "none"
    dropout_rate: float = 0.0
    dropout_kind: str = "standard"
    l1: float = 0.0
    l2: float = 0.0
    max_norm: float | None = None
    residual: bool = False
    output_activation: str = "softmax"

    def __post_init__(self) -> None:
        if not self.hidden_units or any(int(u) < 1 for u in self.hidden_units):
            raise ValueError(f"hidden_units must be positive integers, got {self.hidden_units!r}.")
        self._validate_common()

    @classmethod
    def deep(cls, depth: int, units: int, **kwargs: Any) -> MLPSpec:
        """A spec with `depth` hidden layers of `units` units each.

        Args:
            depth: number of hidden layers.
            units: units per hidden layer.
            **kwargs: any other field.

        Returns:
            The spec.
        """
        return cls(hidden_units=(units,) * depth, **kwargs)


@dataclass(frozen=True)
class CNNSpec(_SpecBase):
    """A convolutional classifier: conv blocks, then dense layers.

    Args:
        filters: filters of each conv block. Defaults to `(32, 64)`.
        kernel_size: square kernel size (3, 5 or 7 in the coursework). Defaults to `3`.
        convs_per_block: convolutions per block before the pooling. Defaults to `1`.
        first_stride: stride of the very first convolution; `2` halves the maps at once
            (a cheap stem for large photos: the first block costs 4x less). Defaults to `1`.
        padding: `"same"` (maps keep their size) or `"valid"` (each 3x3 convolution trims
            2 pixels: keras.io's MNIST convnet, and about 20% cheaper on MNIST). Defaults
            to `"same"`.
        pooling: `"max"`, `"avg"` or `"none"` after each block. Defaults to `"max"`.
        dense_units: hidden Dense layers after flattening. Defaults to `(128,)`.
        global_pooling: global average pooling instead of flattening.
        batch_norm_from: index of the first conv block that gets batch norm (BN right
            after the first convolution is costly on CPU). Defaults to `0`.
        augmentation: training-only augmentation layers, among `flip`, `rotation`,
            `zoom`, `contrast`, `translation`.
        other fields: as in `MLPSpec`.
    """

    filters: tuple[int, ...] = (32, 64)
    kernel_size: int = 3
    convs_per_block: int = 1
    first_stride: int = 1
    padding: str = "same"
    pooling: str = "max"
    dense_units: tuple[int, ...] = (128,)
    global_pooling: bool = False
    activation: str = "relu"
    activation_kwargs: Mapping[str, Any] = field(default_factory=dict)
    initializer: str = "auto"
    batch_norm: str = "none"
    batch_norm_momentum: float = 0.99
    batch_norm_from: int = 0
    input_norm: str = "none"
    augmentation: tuple[str, ...] = ()
    dropout_rate: float = 0.0
    dropout_kind: str = "standard"
    l1: float = 0.0
    l2: float = 0.0
    max_norm: float | None = None
    output_activation: str = "softmax"

    def __post_init__(self) -> None:
        if not self.filters or any(int(f) < 1 for f in self.filters):
            raise ValueError(f"filters must be positive integers, got {self.filters!r}.")
        if self.kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {self.kernel_size!r}.")
        if self.convs_per_block < 1:
            raise ValueError(f"convs_per_block must be >= 1, got {self.convs_per_block!r}.")
        check_at_least("first_stride", self.first_stride, 1)
        check_choice("pooling", self.pooling, POOLING_CHOICES)
        check_choice("padding", self.padding, PADDING_CHOICES)
        for aug in self.augmentation:
            check_choice("augmentation", aug, AUGMENTATIONS)
        self._validate_common()
