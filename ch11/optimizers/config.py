"""The optimizers experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import SeededConfig, option, out_dir_option
from recipes.checks import check_choice
from recipes.names import ACTIVATION_NAMES, OPTIMIZER_NAMES

__all__ = ["BOOK_OPTIMIZERS", "NAME", "Config"]

NAME = "optimizers"
BOOK_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamax",
                   "nadam", "adamw")


@dataclass(frozen=True)
class Config(SeededConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seed: int = option(42, "seed, re-applied before each optimizer")
    optimizers: tuple[str, ...] = option(BOOK_OPTIMIZERS, "optimizers to compare, in order",
                                         OPTIMIZER_NAMES)
    hidden_units: tuple[int, ...] = option((100, 100, 100),
                                           "hidden layers (the notebook's 3 x 100)")
    activation: str = option("relu", "hidden activation", ACTIVATION_NAMES)
    epochs: int = option(5, "epochs per optimizer (the notebook uses 10; 5 keeps the run near "
                         "5 minutes on 2 CPU cores)")
    learning_rate: float | None = option(
        None, "one rate for every optimizer; none: recipes' defaults (1e-2 for plain SGD, "
              "1e-3 for the others)")
    batch_size: int = option(32, "mini-batch size")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_seeds()
        self._at_least(1, "epochs", "batch_size")
        if not self.optimizers:
            raise ValueError("optimizers must name at least one optimizer.")
        for name in self.optimizers:
            check_choice("optimizer", name, OPTIMIZER_NAMES)
        if len(set(self.optimizers)) != len(self.optimizers):
            raise ValueError(f"optimizers must not repeat a name, got {self.optimizers}.")
        self._positive_sizes("hidden_units")
        if self.learning_rate is not None:
            self._positive("learning_rate")
