"""The batch-norm experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import SeededConfig, optimizer_option, option, out_dir_option, precision_option
from recipes.checks import check_positive
from recipes.names import ACTIVATION_NAMES

__all__ = ["NAME", "Config"]

NAME = "batch_norm"


@dataclass(frozen=True)
class Config(SeededConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    mlp_depth: int = option(20, "hidden layers of the deep MLP")
    mlp_units: int = option(100, "units per hidden layer")
    activation: str = option("relu", "hidden activation", ACTIVATION_NAMES)
    mlp_epochs: int = option(3, "epochs for the MLP variants")
    cnn_epochs: int = option(2, "epochs for the CNN variants")
    optimizer: str = optimizer_option("sgd", "optimizer for every variant")
    learning_rates: tuple[float, ...] = option(
        (0.01, 0.05), "MLP learning rates (BN's promise is a higher usable rate); the CNN and "
                      "the small-batch runs use the first")
    batch_size: int = option(32, "mini-batch size")
    small_batch_size: int = option(4, "the 'very small' batch")
    small_batch_train: int = option(5000, "training images for the small-batch run")
    precision: str = precision_option("CNN variants")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_seeds()
        self._check_precision()
        self._at_least(1, "mlp_depth", "mlp_units", "mlp_epochs", "cnn_epochs", "batch_size",
                       "small_batch_size", "small_batch_train")
        if not self.learning_rates:
            raise ValueError("learning_rates must list at least one rate.")
        for rate in self.learning_rates:
            check_positive("learning_rates", rate)
