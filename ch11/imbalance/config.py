"""The class-imbalance experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import (
    SeededConfig,
    check_digit,
    check_names,
    optimizer_option,
    option,
    out_dir_option,
)
from recipes.checks import check_at_least, check_fraction

__all__ = ["NAME", "TREATMENTS", "Config"]

NAME = "imbalance"
TREATMENTS = ("plain", "class_weights", "focal", "oversampling")


@dataclass(frozen=True)
class Config(SeededConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    digit: int = option(5, "the digit made rare in training, 0-9")
    keep_fraction: float = option(
        0.01, "fraction of that digit's training images kept, in (0, 1]")
    treatments: tuple[str, ...] = option(TREATMENTS, "what to compare", TREATMENTS)
    focal_gamma: float = option(2.0, "the focal loss's focusing parameter (Lin et al.'s 2)")
    hidden_units: tuple[int, ...] = option((300, 100), "the MLP's hidden layers")
    epochs: int = option(5, "epochs for every variant")
    optimizer: str = optimizer_option("adam", "optimizer for every variant")
    learning_rate: float = option(1e-3, "learning rate")
    batch_size: int = option(32, "mini-batch size")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_seeds()
        check_digit("digit", self.digit)
        check_fraction("keep_fraction", self.keep_fraction, include_low=False, include_high=True)
        self._at_least(1, "epochs", "batch_size")
        self._positive("learning_rate")
        check_at_least("focal_gamma", self.focal_gamma, 0, integer=False)
        self._positive_sizes("hidden_units")
        check_names("treatments", self.treatments, TREATMENTS, "treatment")
