"""The regularization experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import SeededConfig, optimizer_option, option, out_dir_option, seeds_option
from recipes.checks import check_fraction

__all__ = ["NAME", "Config"]

NAME = "regularization"


@dataclass(frozen=True)
class Config(SeededConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seeds: tuple[int, ...] | None = seeds_option(
        3, "MC dropout uses --seed only")

    train_size: int = option(
        5000, "training images used (a subset, so overfitting shows in minutes)")
    hidden_units: tuple[int, ...] = option((100, 100), "hidden layers (the book's 2 x 100)")
    epochs: int = option(30, "epochs per variant")
    optimizer: str = optimizer_option(
        "momentum", "optimizer for every variant (the book's SGD with momentum 0.9)")
    learning_rate: float = option(0.01, "learning rate")
    l2: float = option(0.01, "l2 factor (the book's 0.01)")
    dropout_rate: float = option(0.2, "dropout rate (the book's)")
    alpha_dropout_rate: float = option(0.2, "alpha dropout rate of the SELU net")
    max_norm: float = option(1.0, "max-norm of each unit's weights")
    mc_samples: int = option(100, "MC dropout passes (the book's)")
    batch_size: int = option(32, "mini-batch size")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_seeds()
        self._at_least(1, "train_size", "epochs", "mc_samples", "batch_size")
        for name in ("dropout_rate", "alpha_dropout_rate"):
            check_fraction(name, getattr(self, name), include_low=False)
        self._positive("learning_rate", "l2", "max_norm")
        self._positive_sizes("hidden_units")
