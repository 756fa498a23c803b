"""Keras Tuner hypermodels: hyperparameters -> a recipes spec -> the recipes builders.

`CNNHyperModel` searches the coursework's CNN knobs (kernel size 3/5/7, max/average
pooling, optimizer, epochs through the tuner) and more; `MLPHyperModel` searches the
chapter's deep-network knobs (depth, width, activation, initializer, batch norm, dropout
kind). Both turn ``hp`` into a `CNNSpec`/`MLPSpec` (`spec(hp)`), build it with
`build_cnn`/`build_mlp`, and compile with `make_optimizer`, `make_schedule` and
`make_loss`: nothing is built twice. Hyperparameter names are stable snake_case strings
(they become the columns of ``trials.csv``). Conditional hyperparameters: ``momentum``
exists only for the SGD optimizers with momentum (``momentum``, ``nesterov``),
``filters_{i}`` only for the blocks that exist, ``dropout_kind`` only when the dropout
rate is above zero.

The training hyperparameters (optimizer, momentum, learning rate, schedule, batch size),
the compile and `fit` (batch size, schedule sized for the real step count, the tuner's
callbacks forwarded) are shared, in `tuning.base.RecipesHyperModel`.

Example:

```python
hypermodel = CNNHyperModel(input_shape=(28, 28), num_classes=10, seed=42)
tuner = keras_tuner.RandomSearch(hypermodel, objective="val_accuracy", max_trials=5)
tuner.search(x_train, y_train, validation_data=(x_val, y_val), epochs=5)
```

Reference: Géron, Hands-On ML (3rd ed.), chapter 10 ("Fine-Tuning Neural Network
Hyperparameters", Keras Tuner) and chapter 11; O'Malley et al., "KerasTuner" (2019).
"""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner as kt

from recipes.builders import build_cnn, build_mlp
from recipes.checks import check_choice
from recipes.specs import BATCH_NORM_CHOICES, DROPOUT_KINDS, POOLING_CHOICES, CNNSpec, MLPSpec
from tuning.base import (
    BATCH_SIZES,
    LEARNING_RATE_RANGE,
    MOMENTUMS,
    OPTIMIZERS,
    SCHEDULES,
    RecipesHyperModel,
)

__all__ = [
    "BATCH_NORMS",
    "BATCH_SIZES",
    "CNN_ACTIVATIONS",
    "CNNHyperModel",
    "DROPOUT_KINDS",
    "FILTERS",
    "INITIALIZERS",
    "KERNEL_SIZES",
    "LEARNING_RATE_RANGE",
    "MLPHyperModel",
    "MLP_ACTIVATIONS",
    "MOMENTUMS",
    "OPTIMIZERS",
    "POOLINGS",
    "RecipesHyperModel",
    "SCHEDULES",
    "make_hypermodel",
]

# The search space, one tuple per choice (the first value is the default). Names are the
# specs' (recipes.specs) and the factories' (recipes.names): every placement of batch norm
# and every dropout kind, pooling without "none", a few activations and initializers.
KERNEL_SIZES = (3, 5, 7)
POOLINGS = tuple(p for p in POOLING_CHOICES if p != "none")
FILTERS = (16, 32, 64)
CNN_ACTIVATIONS = ("relu", "elu", "leaky_relu", "gelu")
MLP_ACTIVATIONS = ("relu", "elu", "selu", "leaky_relu", "gelu", "swish")
INITIALIZERS = ("auto", "he", "glorot")
BATCH_NORMS = BATCH_NORM_CHOICES
CNN_DROPOUTS = (0.0, 0.25, 0.5)
MLP_DROPOUTS = (0.0, 0.1, 0.2, 0.3, 0.5)
L2S = (0.0, 1e-5, 1e-4, 1e-3)
MLP_UNITS = (50, 100, 200, 300)
MAX_CONV_BLOCKS = 3
MAX_DEPTH = 5


class CNNHyperModel(RecipesHyperModel):
    """A CNN search space: 1-3 conv blocks and the coursework's knobs.

    Hyperparameters: ``conv_blocks`` (1-3), ``filters_{i}`` (16/32/64, for existing
    blocks), ``kernel_size`` (3/5/7), ``pooling`` (max/avg), ``activation``,
    ``initializer`` (auto/he/glorot), ``batch_norm`` (none/before/after), ``dropout_rate``
    (after the hidden Dense layer), ``l2``, and the training ones: ``optimizer``
    (sgd/momentum/nesterov/rmsprop/adam/nadam/adamw), ``momentum`` (momentum and
    nesterov only), ``learning_rate`` (log scale, 1e-4 to 0.1), ``schedule``
    (constant/exponential/1cycle), ``batch_size``.

    Args:
        input_shape: one image, `(H, W)` or `(H, W, C)`.
        num_classes: classes (>= 2).
        dense_units: the fixed hidden Dense layers after the convolutions. Defaults to
            `(64,)`.
        **kwargs: `RecipesHyperModel`'s (`loss`, `input_norm`, `seed`, `train_size`,
            `max_epochs`, `run_eagerly`, `class_names`, `rare_class`, `name`).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 14 (CNN architectures) and ch. 11.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *,
                 dense_units: tuple[int, ...] = (64,), **kwargs: Any) -> None:
        super().__init__(input_shape, num_classes, **kwargs)
        self.dense_units = tuple(dense_units)

    def spec(self, hp: kt.HyperParameters) -> CNNSpec:
        """Return the `CNNSpec` of `hp` (declaring the architecture hyperparameters).

        Args:
            hp: the hyperparameters.

        Returns:
            The spec.
        """
        blocks = hp.Int("conv_blocks", 1, MAX_CONV_BLOCKS, default=2)
        filters = []
        for i in range(MAX_CONV_BLOCKS):
            with hp.conditional_scope("conv_blocks", list(range(i + 1, MAX_CONV_BLOCKS + 1))):
                value = hp.Choice(f"filters_{i}", FILTERS, default=FILTERS[min(i, 2)])
            if i < blocks:
                filters.append(value)
        return CNNSpec(
            filters=tuple(filters),
            kernel_size=hp.Choice("kernel_size", KERNEL_SIZES),
            pooling=hp.Choice("pooling", POOLINGS),
            dense_units=self.dense_units,
            activation=hp.Choice("activation", CNN_ACTIVATIONS),
            initializer=hp.Choice("initializer", INITIALIZERS),
            batch_norm=hp.Choice("batch_norm", BATCH_NORMS),
            input_norm=self.input_norm,
            dropout_rate=hp.Choice("dropout_rate", CNN_DROPOUTS),
            l2=hp.Choice("l2", L2S),
        )

    def _build_spec(self, spec: CNNSpec, hp: kt.HyperParameters) -> keras.Model:
        return build_cnn(spec, self.input_shape, self.num_classes)


class MLPHyperModel(RecipesHyperModel):
    """A deep MLP search space: the chapter's knobs for training deep networks.

    Hyperparameters: ``depth`` (1-5 hidden layers), ``units`` (width of each),
    ``activation`` (relu/elu/selu/leaky_relu/gelu/swish), ``initializer``
    (auto/he/glorot), ``batch_norm`` (none/before/after), ``dropout_rate``,
    ``dropout_kind`` (standard/alpha/mc, only when the rate is above 0), ``l2``, and the
    training ones of `CNNHyperModel`.

    Args:
        input_shape: one example, e.g. `(28, 28)`.
        num_classes: classes (>= 2).
        **kwargs: `RecipesHyperModel`'s (`loss`, `input_norm`, `seed`, `train_size`,
            `max_epochs`, `run_eagerly`, `class_names`, `rare_class`, `name`).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11 (the exercise's deep net on CIFAR10).
    """

    def spec(self, hp: kt.HyperParameters) -> MLPSpec:
        """Return the `MLPSpec` of `hp` (declaring the architecture hyperparameters).

        Args:
            hp: the hyperparameters.

        Returns:
            The spec.
        """
        depth = hp.Int("depth", 1, MAX_DEPTH, default=2)
        units = hp.Choice("units", MLP_UNITS, default=100)
        activation = hp.Choice("activation", MLP_ACTIVATIONS)
        initializer = hp.Choice("initializer", INITIALIZERS)
        batch_norm = hp.Choice("batch_norm", BATCH_NORMS)
        rate = hp.Choice("dropout_rate", MLP_DROPOUTS)
        with hp.conditional_scope("dropout_rate", [r for r in MLP_DROPOUTS if r > 0]):
            kind = hp.Choice("dropout_kind", DROPOUT_KINDS)
        return MLPSpec(
            hidden_units=(units,) * depth, activation=activation, initializer=initializer,
            batch_norm=batch_norm, input_norm=self.input_norm, dropout_rate=rate,
            dropout_kind=kind or "standard", l2=hp.Choice("l2", L2S),
        )

    def _build_spec(self, spec: MLPSpec, hp: kt.HyperParameters) -> keras.Model:
        return build_mlp(spec, self.input_shape, self.num_classes)


MODELS = {"cnn": CNNHyperModel, "mlp": MLPHyperModel}  # keyed by tuning.names.MODEL_NAMES


def make_hypermodel(name: str, input_shape: tuple[int, ...], num_classes: int,
                    **kwargs: Any) -> RecipesHyperModel:
    """Return the hypermodel called `name` (`"cnn"` or `"mlp"`).

    Args:
        name: `"cnn"` or `"mlp"`.
        input_shape: one example's shape.
        num_classes: classes.
        **kwargs: the hypermodel's keyword arguments.

    Returns:
        A `CNNHyperModel` or `MLPHyperModel`.

    Raises:
        ValueError: unknown name.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Fine-Tuning Neural Network
    Hyperparameters".
    """
    check_choice("model", name, MODELS)
    return MODELS[name](input_shape, num_classes, **kwargs)
