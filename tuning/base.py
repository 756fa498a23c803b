"""The training half of the hypermodels: optimizer, learning rate, schedule, batch size.

`RecipesHyperModel` declares the training hyperparameters (``optimizer``; ``momentum``
only for ``momentum``/``nesterov``, the SGD optimizers with momentum; ``learning_rate``
on a log scale; ``schedule``; ``batch_size``), compiles with `recipes.make_optimizer`,
`recipes.make_schedule` and `recipes.make_loss`, and fits: `fit` recompiles the model
with the schedule sized for the real number of steps (``ceil(N / batch_size)`` per epoch,
``epochs - initial_epoch`` epochs) and forwards every other argument, the tuner's
callbacks included, to ``model.fit``. With the class names it also puts a
`recipes.callbacks.ValidationMetrics` first among the callbacks, so every epoch's logs
(and the tuner's objective, and ``trials.csv``) have the validation split's per-class ROC
AUC, their macro mean and the rare class's recall; when the callbacks hold a
``TensorBoard`` callback (Keras Tuner points it at ``<log_dir>/<trial>/execution<k>``), a
`GradientMonitor` writes the trial's gradient norms and dead units beside it, in
``gradients/``. `tuning.hypermodels` adds the architectures, `tuning.fish` the fish photo
space.

Reference: Géron, Hands-On ML (3rd ed.), ch. 11 ("Faster Optimizers", "Learning Rate
Scheduling"); ch. 10 ("Fine-Tuning Neural Network Hyperparameters").
"""

from __future__ import annotations

import math
import os
from typing import Any

import keras
import keras_tuner as kt
import numpy as np

from recipes.callbacks import GradientMonitor, ValidationMetrics
from recipes.checks import check_at_least
from recipes.data import make_dataset
from recipes.losses import make_loss
from recipes.optimizers import make_optimizer
from recipes.schedules import OneCycle, make_schedule
from recipes.specs import CNNSpec, MLPSpec

__all__ = [
    "BATCH_SIZES",
    "LEARNING_RATE_RANGE",
    "MOMENTUMS",
    "MOMENTUM_OPTIMIZERS",
    "OPTIMIZERS",
    "SCHEDULES",
    "RecipesHyperModel",
    "with_gradient_monitor",
]

# The training search space: subsets of recipes.names' OPTIMIZER_NAMES and SCHEDULE_NAMES.
OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "nadam", "adamw")
MOMENTUM_OPTIMIZERS = ("momentum", "nesterov")  # the SGD ones with a momentum to tune
MOMENTUMS = (0.9, 0.95, 0.99)
SCHEDULES = ("constant", "exponential", "1cycle")
BATCH_SIZES = (32, 64, 128)
LEARNING_RATE_RANGE = (1e-4, 1e-1)


class RecipesHyperModel(kt.HyperModel):
    """The training half shared by the hypermodels: optimizer, rate, schedule, batch size.

    Subclasses define `spec(hp)` (declaring the architecture hyperparameters) and
    `_build_spec(spec, hp)`; `build` seeds, declares the training hyperparameters, builds
    and compiles; `fit` recompiles for the real data size and forwards the rest. The
    training choices are class attributes (`optimizers`, `schedules`, `batch_sizes`,
    `learning_rates`), so a space can narrow them.

    Args:
        input_shape: one example's shape.
        num_classes: classes (>= 2).
        loss: a `recipes.make_loss` name or a Loss. Defaults to `"crossentropy"`.
        input_norm: the spec's input normalization; `"rescale"` (x / 255) lets the saved
            model take raw pixels. Defaults to `"rescale"`.
        seed: re-seeded in `build` so every trial starts the same. Defaults to `None`.
        train_size: training examples, to size the schedule compiled in `build`.
        max_epochs: epochs the schedule compiled in `build` spans.
        run_eagerly: compile with `run_eagerly=True`: no graph tracing, which is faster
            for a tiny smoke run and slower for a real one. Defaults to `False`.
        class_names: one name per class: `fit` then logs the validation split's per-class
            AUC, macro AUC and rare-class recall (`ValidationMetrics`). Defaults to `None`.
        rare_class: the index of the class whose recall is logged as
            ``val_rare_recall``. Defaults to `None`.
        precision: the Keras dtype policy every trial's model is built with (set in
            `build`: Keras Tuner clears the session, and with it the global policy,
            before each build). Defaults to `"float32"`.
        name: the hypermodel's name.

    Raises:
        ValueError: fewer than 2 classes.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10-11.
    """

    optimizers: tuple[str, ...] = OPTIMIZERS
    schedules: tuple[str, ...] = SCHEDULES
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    learning_rates: tuple[float, float, float] = (*LEARNING_RATE_RANGE, 1e-3)  # low, high, default

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        *,
        loss: str | keras.losses.Loss = "crossentropy",
        input_norm: str = "rescale",
        seed: int | None = None,
        train_size: int = 1000,
        max_epochs: int = 10,
        run_eagerly: bool = False,
        class_names: list[str] | tuple[str, ...] | None = None,
        rare_class: int | None = None,
        precision: str = "float32",
        name: str | None = None,
    ) -> None:
        super().__init__(name=name, tunable=True)
        check_at_least("num_classes", num_classes, 2)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)
        self.loss = loss
        self.input_norm = input_norm
        self.seed = seed
        self.train_size = int(train_size)
        self.max_epochs = int(max_epochs)
        self.run_eagerly = bool(run_eagerly)
        self.class_names = None if class_names is None else list(class_names)
        self.rare_class = rare_class
        self.precision = str(keras.DTypePolicy(precision).name)  # checked here, not mid-search
        self.execution = 0  # set by the tuner: execution k of a trial is seeded seed + k

    def spec(self, hp: kt.HyperParameters) -> CNNSpec | MLPSpec:
        """Return the network spec that `hp` describes (declaring its hyperparameters).

        Args:
            hp: the hyperparameters.

        Returns:
            A `CNNSpec` or `MLPSpec`.
        """
        raise NotImplementedError

    def _build_spec(self, spec: CNNSpec | MLPSpec, hp: kt.HyperParameters) -> keras.Model:
        raise NotImplementedError

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """Build and compile the model of `hp`: spec -> builder -> compile.

        The model is compiled for `train_size` examples and `max_epochs` epochs; `fit`
        recompiles it for the real data size, batch size and epoch count.

        Args:
            hp: the trial's hyperparameters (missing ones take their defaults).

        Returns:
            A compiled `keras.Model`.

        Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Fine-Tuning Neural Network
        Hyperparameters".
        """
        if self.seed is not None:  # every trial starts from the same seed
            keras.utils.set_random_seed(int(self.seed) + int(self.execution))
        spec = self.spec(hp)
        self.declare_training(hp)
        keras.config.set_dtype_policy(self.precision)
        try:
            model = self._build_spec(spec, hp)
        finally:  # nothing else built in this process inherits the trials' policy
            keras.config.set_dtype_policy("float32")
        steps = math.ceil(self.train_size / hp.get("batch_size"))
        self.compile_model(model, hp, steps_per_epoch=steps, epochs=self.max_epochs)
        return model

    def declare_training(self, hp: kt.HyperParameters) -> None:
        """Declare the training hyperparameters (optimizer, momentum, rate, schedule, batch).

        Args:
            hp: the hyperparameters.
        """
        hp.Choice("optimizer", self.optimizers)
        with_momentum = [o for o in MOMENTUM_OPTIMIZERS if o in self.optimizers]
        if with_momentum:
            with hp.conditional_scope("optimizer", with_momentum):
                hp.Choice("momentum", MOMENTUMS)
        low, high, default = self.learning_rates
        hp.Float("learning_rate", low, high, sampling="log", default=default)
        hp.Choice("schedule", self.schedules)
        hp.Choice("batch_size", self.batch_sizes)

    def compile_model(
        self, model: keras.Model, hp: kt.HyperParameters, *, steps_per_epoch: int, epochs: int
    ) -> keras.Model:
        """Compile `model` with the optimizer, schedule and loss of `hp`.

        Args:
            model: the model.
            hp: the hyperparameters (declared by `build`).
            steps_per_epoch: optimizer steps per epoch, for the schedules.
            epochs: epochs the schedule spans: exponential decays the rate tenfold over
                them, 1cycle goes up and down once over them.

        Returns:
            The model, compiled.
        """
        name = hp.get("schedule")
        total = max(1, int(steps_per_epoch) * max(1, int(epochs)))
        # exponential: a tenth of the rate at the end; 1cycle: its shortest cycle at least.
        extra = {"exponential": {"s": total},
                 "1cycle": {"total_steps": max(OneCycle.MIN_STEPS, total)}}.get(name, {})
        lr = make_schedule(name, learning_rate=hp.get("learning_rate"),
                           steps_per_epoch=max(1, int(steps_per_epoch)),
                           epochs=max(1, int(epochs)), **extra)
        optimizer_name = hp.get("optimizer")
        kwargs = {"momentum": hp.get("momentum")} \
            if optimizer_name in MOMENTUM_OPTIMIZERS and "momentum" in hp.values else {}
        with model.distribute_strategy.scope():
            model.compile(
                optimizer=make_optimizer(optimizer_name, learning_rate=lr, **kwargs),
                loss=make_loss(self.loss), metrics=["accuracy"], run_eagerly=self.run_eagerly,
            )
        return model

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
        """Fit with the trial's batch size and a schedule sized for this run.

        With `class_names` and array ``validation_data``, a `ValidationMetrics` on it comes
        first among the callbacks.

        Args:
            hp: the trial's hyperparameters.
            model: the model from `build`.
            x: training inputs (an array; batch size is a hyperparameter).
            y: training labels.
            epochs: last epoch (Keras's meaning; Hyperband passes it per trial).
            initial_epoch: first epoch (Hyperband's continued trials).
            **kwargs: everything else for `model.fit` (`validation_data`, `callbacks`
                with the tuner's callbacks, `class_weight`, `verbose`). With a
                ``TensorBoard`` among the callbacks, a `GradientMonitor` on 256 training
                examples writes to its ``log_dir/gradients`` (`with_gradient_monitor`).

        Returns:
            The `History`.

        Raises:
            ValueError: if `x` is not an array (a batched dataset would ignore the
                ``batch_size`` hyperparameter).
        """
        if not hasattr(x, "__len__") or not hasattr(x, "shape"):
            raise ValueError(
                f"fit needs an array x (the batch size is a hyperparameter), got "
                f"{type(x).__name__}; convert the dataset to NumPy arrays first."
            )
        batch_size = hp.get("batch_size")
        steps = math.ceil(len(x) / batch_size)
        self.compile_model(model, hp, steps_per_epoch=steps, epochs=epochs - initial_epoch)
        kwargs["callbacks"] = [*self.validation_metrics(kwargs.get("validation_data")),
                               *(kwargs.get("callbacks") or [])]
        if y is not None:
            kwargs["callbacks"] = with_gradient_monitor(kwargs["callbacks"], x, y)
        # The static input pipeline (`recipes.make_dataset`), not fit(x, y): Keras's numpy
        # adapter pauses 0.5-10 s at some epoch starts on CPU.
        seed = None if self.seed is None else int(self.seed) + int(self.execution)
        validation = kwargs.get("validation_data")
        if isinstance(validation, tuple | list) and len(validation) == 2:
            kwargs["validation_data"] = make_dataset(*validation, batch_size, shuffle=False)
        return model.fit(make_dataset(x, y, batch_size, seed=seed), epochs=epochs,
                         initial_epoch=initial_epoch, shuffle=False, **kwargs)

    def validation_metrics(self, validation_data: Any) -> list[keras.callbacks.Callback]:
        """``[ValidationMetrics(...)]`` on ``(x_val, y_val)`` arrays, or ``[]``.

        Args:
            validation_data: `fit`'s ``validation_data``.

        Returns:
            The callback in a list, when there are class names and array validation data.
        """
        if self.class_names is None or not isinstance(validation_data, tuple | list) \
                or len(validation_data) != 2:
            return []
        x_val, y_val = validation_data
        return [ValidationMetrics(x_val, y_val, self.class_names, rare_class=self.rare_class)]


def with_gradient_monitor(callbacks: Any, x: Any, y: Any,
                          size: int = 256) -> list[keras.callbacks.Callback]:
    """`callbacks` plus a `GradientMonitor` beside their ``TensorBoard`` callback, if any.

    The monitor measures on `size` examples drawn (seeded) from `x`, writes to the
    TensorBoard callback's ``log_dir/gradients``, costs at most 5% of the training time
    and leaves the epoch logs alone (`recipes.callbacks.tensorboard_callbacks`).

    Args:
        callbacks: a trial's callbacks.
        x: training inputs.
        y: their labels.
        size: examples measured. Defaults to `256`.

    Returns:
        A new list (`callbacks` unchanged when none is a ``TensorBoard``).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "The Vanishing/Exploding Gradients
    Problems"; ch. 10, "Using TensorBoard for Visualization".
    """
    callbacks = list(callbacks)
    board = next((c for c in callbacks if isinstance(c, keras.callbacks.TensorBoard)), None)
    if board is None:
        return callbacks
    pick = np.sort(np.random.default_rng(0).permutation(len(x))[:size])
    callbacks.insert(callbacks.index(board), GradientMonitor(
        np.asarray(x)[pick], np.asarray(y)[pick], log_dir=os.path.join(board.log_dir, "gradients"),
        to_logs=False, max_overhead=0.05))
    return callbacks
