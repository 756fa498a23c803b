"""The benchmark's models: the keras.io convnet by hand, and a configuration compiled.

`keras_io_convnet` is the keras.io "Simple MNIST convnet" layer for layer, in plain Keras;
`build_and_compile` builds and compiles one `bench.configs.BenchConfig`: the baseline as
published, a recipe only through `recipes` (`build_cnn`, `make_schedule`,
`make_optimizer`, `make_loss`).
"""

from __future__ import annotations

import math

import keras

from bench.configs import BenchConfig
from recipes import build_cnn, make_loss, make_optimizer, make_schedule
from recipes.schedules import OneCycle

__all__ = ["build_and_compile", "keras_io_convnet"]


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
    """
    if config.model == "keras_io":
        model = keras_io_convnet()
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        return model
    model = build_cnn(config.spec, input_shape=(28, 28, 1), num_classes=10, name=config.name)
    if config.schedule in ("1cycle", "onecycle", "cosine"):  # fractional epochs: in steps
        total = round(config.epochs * steps_per_epoch)
        if config.schedule != "cosine":  # a tiny run still gets 1cycle's shortest cycle
            total = max(OneCycle.MIN_STEPS, total)
        length = {"total_steps": total}
    else:
        length = {"epochs": math.ceil(config.epochs)}
    schedule = make_schedule(config.schedule, learning_rate=config.learning_rate,
                             steps_per_epoch=steps_per_epoch, **length,
                             **config.schedule_kwargs)
    model.compile(optimizer=make_optimizer(config.optimizer, schedule),
                  loss=make_loss("crossentropy"), metrics=["accuracy"])
    return model
