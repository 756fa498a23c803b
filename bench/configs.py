"""The configurations that `bench.time_to_accuracy` races on MNIST.

- `keras_io`: the keras.io "Simple MNIST convnet" exactly as published, built by hand in
  plain Keras (https://keras.io/examples/vision/mnist_convnet/).
- `keras_io_pipeline`: the same convnet fed by `recipes.make_dataset`, the recipes' input,
  so the second ratio compares the models alone.
- `recipe_fast`: the chapter's recipe for speed, built only through `recipes`: He init,
  keras.io's "valid" convolutions (20% cheaper than "same" on MNIST), batch norm in the
  dense layer only (on this 2-core CPU, BN after either convolution halves the training
  throughput), SGD with Nesterov momentum and a short cosine 1cycle (1.25 epochs, peak
  0.3 at 25% as in fastai: it crosses 99.0% at 1.13 epochs on seeds 0-2; the same net
  over 2 epochs crossed at 1.25-1.5), mixed bfloat16 where the CPU computes it natively.
- `recipe_993`: the same ingredients on a deeper, "same"-padded net (a third conv block,
  BN on the convolutions after the first) with dropout, over 3 epochs, for 99.3%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras

from recipes import CNNSpec, build_cnn, make_loss, make_optimizer, make_schedule

__all__ = ["CONFIGS", "INPUTS", "BenchConfig", "build_and_compile", "keras_io_convnet"]

INPUTS = ("numpy", "pipeline")


@dataclass(frozen=True)
class BenchConfig:
    """One contestant of the benchmark.

    Args:
        name: short name (a CLI value and a results key).
        title: one line for the report.
        model: `"keras_io"` (the hand-built baseline) or `"recipe"` (built from `spec`).
        spec: the `CNNSpec` of a recipe.
        optimizer: a `recipes.make_optimizer` name.
        learning_rate: the rate, or the peak rate of a 1cycle schedule.
        schedule: a `recipes.make_schedule` name.
        epochs: epochs of training (the schedule's length); may be fractional, e.g. 1.25.
        batch_size: the batch size.
        precision: `"float32"`, `"mixed_bfloat16"` or `"auto"` (see `recipes.hardware`).
        schedule_kwargs: extra `make_schedule` arguments (e.g. the 1cycle `shape`).
        input: `"numpy"` (`fit(x, y)` on arrays, as keras.io publishes it) or
            `"pipeline"` (`recipes.make_dataset`, without the epoch-start stalls).
    """

    name: str
    title: str
    model: str = "recipe"
    spec: CNNSpec | None = None
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "constant"
    epochs: float = 15
    batch_size: int = 128
    precision: str = "float32"
    schedule_kwargs: dict = field(default_factory=dict)
    input: str = "pipeline"

    def __post_init__(self) -> None:
        if self.input not in INPUTS:
            raise ValueError(f"Unknown input {self.input!r}. Valid: {', '.join(INPUTS)}.")


def keras_io_convnet(input_shape: tuple[int, ...] = (28, 28, 1), num_classes: int = 10
                     ) -> keras.Model:
    """The keras.io "Simple MNIST convnet", layer for layer.

    Args:
        input_shape: image shape. Defaults to MNIST's `(28, 28, 1)`.
        num_classes: output units. Defaults to `10`.

    Returns:
        The uncompiled `keras.Sequential` model (34,826 parameters for MNIST).

    Reference: F. Chollet, "Simple MNIST convnet", keras.io examples (2015, updated 2020).
    """
    layers = keras.layers
    return keras.Sequential([
        keras.Input(shape=input_shape),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ], name="keras_io_convnet")


def build_and_compile(config: BenchConfig, steps_per_epoch: int) -> keras.Model:
    """Build and compile one configuration's model (under the current dtype policy).

    Args:
        config: the configuration.
        steps_per_epoch: optimizer steps per epoch (for the schedule).

    Returns:
        The compiled model. The baseline expects one-hot labels, as published; the
        recipes take integer labels.

    Raises:
        ValueError: an unknown `config.model`.
    """
    if config.model == "keras_io":
        model = keras_io_convnet()
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        return model
    if config.model != "recipe" or config.spec is None:
        raise ValueError(f"Unknown model {config.model!r} (or a recipe without a spec). "
                         "Valid: keras_io, recipe.")
    model = build_cnn(config.spec, input_shape=(28, 28, 1), num_classes=10, name=config.name)
    length = ({"total_steps": round(config.epochs * steps_per_epoch)}
              if config.schedule in ("1cycle", "onecycle", "cosine")
              else {"epochs": math.ceil(config.epochs)})  # fractional epochs: in steps
    schedule = make_schedule(config.schedule, learning_rate=config.learning_rate,
                             steps_per_epoch=steps_per_epoch, **length,
                             **config.schedule_kwargs)
    model.compile(optimizer=make_optimizer(config.optimizer, schedule),
                  loss=make_loss("crossentropy"), metrics=["accuracy"])
    return model


CONFIGS: dict[str, BenchConfig] = {
    c.name: c
    for c in (
        BenchConfig(
            "keras_io", "keras.io convnet as published: Adam 1e-3, batch 128, 15 epochs, "
            "float32, fit(x, y) on numpy arrays",
            model="keras_io", epochs=15, input="numpy",
        ),
        BenchConfig(
            "keras_io_pipeline", "the same keras.io convnet fed by recipes.make_dataset "
            "(the recipes' input pipeline)",
            model="keras_io", epochs=15, input="pipeline",
        ),
        BenchConfig(
            "recipe_fast",
            "recipe: He init, keras.io's valid-padded convolutions, BN in a 256-unit dense "
            "layer, Nesterov + cosine 1cycle (peak 0.3 at 25%) over 1.25 epochs",
            spec=CNNSpec(filters=(32, 64), kernel_size=3, padding="valid", dense_units=(256,),
                         batch_norm="before", batch_norm_from=2),
            optimizer="nesterov", learning_rate=0.3, schedule="1cycle", epochs=1.25,
            schedule_kwargs={"shape": "cosine", "last_fraction": 0.5}, precision="auto",
        ),
        BenchConfig(
            "recipe_993",
            "recipe for 99.3%: three conv blocks (32-64-128), BN from block 2, dropout 0.25, "
            "Nesterov + cosine 1cycle over 3 epochs",
            spec=CNNSpec(filters=(32, 64, 128), kernel_size=3, dense_units=(128,),
                         batch_norm="before", batch_norm_from=1, dropout_rate=0.25),
            optimizer="nesterov", learning_rate=0.1, schedule="1cycle", epochs=3,
            schedule_kwargs={"shape": "cosine", "last_fraction": 0.5}, precision="auto",
        ),
    )
}
