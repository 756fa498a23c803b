"""The fish photo search space: hyperparameters -> a `CNNSpec` of the hand recipe's family.

`FishCNNHyperModel` searches the knobs of the from-scratch fish CNN (``make recipe-fish``):
a stride-2 first convolution, conv blocks whose filters double, BN with momentum 0.9 (a
run is a few hundred steps), global average pooling, dropout before the output,
augmentation inside the model and pixels rescaled inside it (the saved model takes raw
uint8 photos). Every trial is one `recipes.specs.CNNSpec`, built by
`recipes.builders.build_cnn`; nothing here builds a layer.

Hyperparameters, in ``trials.csv``'s column order (each architecture one defaults to the
hand recipe's value, `RECIPE_DEFAULTS`): ``image_size`` (the sizes given; the photos of
each come from the decoded-photo cache and are held in memory once per size),
``conv_blocks`` (3-4; 3 only when a size is under 32 pixels), ``base_filters`` (the
first block's filters, doubled every block: 32 gives the hand recipe's 32-64-128-256),
``kernel_size`` (3/5), ``pooling`` (max/avg), ``batch_norm`` (none/before/after),
``activation``, ``dropout_rate``, ``l2``, ``augmentation`` (`AUGMENTATION_LEVELS`: the
strength is how many of the builders' augmentations are stacked, since `CNNSpec` has no
magnitude field), then the training ones: ``optimizer`` (adamw/adam/nadam/nesterov;
``momentum`` for nesterov), ``learning_rate`` (the 1cycle peak, or the constant rate),
``schedule`` (1cycle or constant) and ``batch_size``.

Training goes through `recipes.data.pipeline.make_dataset` (no tf.data autotuning stall at
epoch starts), with the validation split of the trial's image size, and
`recipes.callbacks.ValidationMetrics` first among the callbacks, so the objective may be
``val_accuracy``, ``val_macro_auc`` or ``val_rare_recall`` and ``trials.csv`` gets every
class's validation AUC at the trial's best epoch.

Example:

```python
photos = load_fish_sizes((64, 96), train_dir=..., val_dir=...)
hypermodel = FishCNNHyperModel(photos, seed=42, rare_class=0)
tuner = keras_tuner.Hyperband(hypermodel, objective="val_accuracy", max_epochs=9)
tuner.search(photos, epochs=9)   # each trial picks the photos of its image_size
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 11 (BN, 1cycle, regularization), ch. 14
(CNN architectures, data augmentation) and ch. 10 (Keras Tuner, Hyperband).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import keras
import keras_tuner as kt

from recipes.builders import build_cnn
from recipes.callbacks import ValidationMetrics
from recipes.data.pipeline import make_dataset
from recipes.specs import CNNSpec
from tuning.base import RecipesHyperModel, with_gradient_monitor
from tuning.data import TuningData

__all__ = ["ACTIVATIONS", "AUGMENTATION_LEVELS", "BASE_FILTERS", "BATCH_NORMS", "CONV_BLOCKS",
           "DROPOUTS", "KERNEL_SIZES", "L2S", "MAX_FILTERS", "MIN_IMAGE_SIZE", "POOLINGS",
           "RECIPE_DEFAULTS",
           "FishCNNHyperModel"]

# The space. A block halves the maps (pooling), the stride-2 stem too: a size of S pixels
# takes at most log2(S) - 1 blocks (4 from 32 pixels on), so smaller sizes drop 4.
CONV_BLOCKS = (3, 4)
MIN_IMAGE_SIZE = 16
BASE_FILTERS = (16, 32)
MAX_FILTERS = 256
KERNEL_SIZES = (3, 5)
POOLINGS = ("max", "avg")
BATCH_NORMS = ("none", "before", "after")
ACTIVATIONS = ("relu", "elu", "leaky_relu", "gelu")
DROPOUTS = (0.0, 0.2, 0.3, 0.5)
L2S = (0.0, 1e-5, 1e-4)
# Augmentation strength: how many of recipes.builders' augmentation layers are stacked.
AUGMENTATION_LEVELS: dict[str, tuple[str, ...]] = {
    "none": (),
    "flip": ("flip",),
    "flip_rotation": ("flip", "rotation"),
    "strong": ("flip", "rotation", "zoom", "translation"),
}
# The hand recipe's values (ch11/_fish.py's recipe_spec when this was written): the
# defaults, which Keras Tuner's grid and Bayesian tuners try first.
RECIPE_DEFAULTS = {"conv_blocks": 4, "base_filters": 32, "kernel_size": 3, "pooling": "max",
                   "activation": "relu", "batch_norm": "before", "dropout_rate": 0.3,
                   "l2": 0.0, "augmentation": "flip_rotation"}
VALIDATION_BATCH = 256


class FishCNNHyperModel(RecipesHyperModel):
    """The fish CNN space: the hand recipe's family of `CNNSpec`, over a few image sizes.

    Args:
        photos: ``{image_size: TuningData}`` (`tuning.data.load_fish_sizes`): the same
            photos at each size the search may pick; the first size is the default.
        **kwargs: `RecipesHyperModel`'s (`loss`, `seed`, `max_epochs`, `run_eagerly`,
            `class_names`, `rare_class`, `name`); the input shape, the class count and
            the training size come from `photos`.

    Raises:
        ValueError: no photos, sizes whose photos differ, or a size under
            `MIN_IMAGE_SIZE`.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11 and ch. 14.
    """

    optimizers = ("adamw", "adam", "nadam", "nesterov")
    schedules = ("1cycle", "constant")
    batch_sizes = (32, 64)
    learning_rates = (1e-4, 3e-2, 2e-3)

    def __init__(self, photos: Mapping[int, TuningData], **kwargs: Any) -> None:
        if not photos:
            raise ValueError("FishCNNHyperModel needs the photos of at least one image size.")
        self.sizes = tuple(int(s) for s in photos)
        first = photos[self.sizes[0]]
        if any(len(d.y_train) != len(first.y_train) for d in photos.values()):
            raise ValueError("Every image size must hold the same photos.")
        if min(self.sizes) < MIN_IMAGE_SIZE:
            raise ValueError(f"The fish CNN space needs photos of at least {MIN_IMAGE_SIZE}x"
                             f"{MIN_IMAGE_SIZE} (a stride-2 stem and 3 pooled blocks), got "
                             f"{min(self.sizes)}.")
        smallest = min(self.sizes)
        self.conv_blocks = tuple(b for b in CONV_BLOCKS if smallest >> (b + 1) >= 1)
        kwargs.setdefault("class_names", first.class_names)
        super().__init__(first.input_shape, first.num_classes, input_norm="rescale",
                         train_size=len(first.y_train), **kwargs)

    def spec(self, hp: kt.HyperParameters) -> CNNSpec:
        """Return the `CNNSpec` of `hp` (declaring the architecture hyperparameters).

        Args:
            hp: the hyperparameters.

        Returns:
            The spec.
        """
        def choice(name: str, values: tuple) -> Any:
            default = RECIPE_DEFAULTS[name]
            return hp.Choice(name, values, default=default if default in values else None)

        hp.Choice("image_size", self.sizes)
        blocks = choice("conv_blocks", self.conv_blocks)
        base = choice("base_filters", BASE_FILTERS)
        return CNNSpec(
            filters=tuple(min(MAX_FILTERS, base * 2**i) for i in range(blocks)),
            kernel_size=choice("kernel_size", KERNEL_SIZES),
            first_stride=2,
            pooling=choice("pooling", POOLINGS),
            dense_units=(),
            global_pooling=True,
            activation=choice("activation", ACTIVATIONS),
            batch_norm=choice("batch_norm", BATCH_NORMS),
            batch_norm_momentum=0.9,
            input_norm=self.input_norm,
            dropout_rate=choice("dropout_rate", DROPOUTS),
            l2=choice("l2", L2S),
            augmentation=AUGMENTATION_LEVELS[choice("augmentation", tuple(AUGMENTATION_LEVELS))],
        )

    def _build_spec(self, spec: CNNSpec, hp: kt.HyperParameters) -> keras.Model:
        size = int(hp.get("image_size"))
        return build_cnn(spec, (size, size, 3), self.num_classes, name="fish_cnn")

    def fit(
        self,
        hp: kt.HyperParameters,
        model: keras.Model,
        x: Any,
        y: Any = None,
        *,
        epochs: int = 1,
        initial_epoch: int = 0,
        **kwargs: Any,
    ) -> keras.callbacks.History:
        """Fit on the photos of the trial's image size, through the static pipeline.

        Args:
            hp: the trial's hyperparameters.
            model: the model from `build`.
            x: the search's ``{image_size: TuningData}`` (its validation split is the
                trial's validation data), or training images of the trial's size (the
                retraining on train + validation: no validation data).
            y: the training labels, with images as `x`.
            epochs: last epoch (Keras's meaning; Hyperband passes it per trial).
            initial_epoch: first epoch (Hyperband's continued trials).
            **kwargs: everything else for `model.fit` (`callbacks` with the tuner's,
                `class_weight`, `verbose`).

        Returns:
            The `History`.
        """
        batch_size = hp.get("batch_size")
        callbacks = list(kwargs.pop("callbacks", None) or [])
        kwargs.pop("validation_data", None)  # the trial's own size is used
        if isinstance(x, Mapping):
            data = x[int(hp.get("image_size"))]
            x, y = data.x_train, data.y_train
            kwargs["validation_data"] = make_dataset(data.x_val, data.y_val, VALIDATION_BATCH,
                                                     shuffle=False)
            callbacks.insert(0, ValidationMetrics(data.x_val, data.y_val, self.class_names,
                                                  rare_class=self.rare_class))
        steps = math.ceil(len(x) / batch_size)
        self.compile_model(model, hp, steps_per_epoch=steps, epochs=epochs - initial_epoch)
        callbacks = with_gradient_monitor(callbacks, x, y)
        seed = None if self.seed is None else int(self.seed) + int(self.execution)
        return model.fit(make_dataset(x, y, batch_size, seed=seed), epochs=epochs,
                         initial_epoch=initial_epoch, callbacks=callbacks, shuffle=False,
                         **kwargs)
