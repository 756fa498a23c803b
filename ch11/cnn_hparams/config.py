"""The CNN-hyperparameter experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import SeededConfig, check_names, option, out_dir_option, precision_option
from recipes.names import OPTIMIZER_NAMES
from recipes.specs import POOLING_CHOICES

__all__ = ["NAME", "Config"]

NAME = "cnn_hparams"


@dataclass(frozen=True)
class Config(SeededConfig):
    """The experiment's settings; the defaults are the coursework's grid."""

    quick: bool = option(
        False, "small slice, one epoch, kernels 3 and 5, the first two optimizers (tests)")
    kernel_sizes: tuple[int, ...] = option((3, 5, 7), "square kernel sizes")
    poolings: tuple[str, ...] = option(("max", "avg"), "pooling after each conv block",
                                       POOLING_CHOICES)
    optimizers: tuple[str, ...] = option(
        ("sgd", "rmsprop", "adam"), "optimizers, each at the book's default rate",
        OPTIMIZER_NAMES)
    filters: tuple[int, ...] = option((16, 32), "filters per block")
    dense_units: int = option(64, "units of the hidden Dense layer")
    train_size: int = option(10_000, "training images per run (a subset, for time)")
    max_epochs: int = option(6, "epoch cap per run (6 keeps the 18 runs near 5 min on 2 cores)")
    patience: int = option(2, "early-stopping patience (val_loss)")
    batch_size: int = option(64, "mini-batch size")
    precision: str = precision_option("CNNs")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_seeds()
        self._check_precision()
        self._at_least(1, "dense_units", "train_size", "max_epochs", "patience", "batch_size")
        self._positive_sizes("kernel_sizes")
        self._positive_sizes("filters")
        check_names("poolings", self.poolings, POOLING_CHOICES, "pooling")
        check_names("optimizers", self.optimizers, OPTIMIZER_NAMES, "optimizer")
