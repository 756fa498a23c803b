"""The gradient-descent experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import SeededConfig, optimizer_option, option, out_dir_option, seeds_option
from recipes.checks import check_choice

__all__ = ["LR_SCALINGS", "NAME", "Config"]

NAME = "gradient_descent"
LR_SCALINGS = ("sqrt", "linear", "none")


@dataclass(frozen=True)
class Config(SeededConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seeds: tuple[int, ...] | None = seeds_option(3)

    quick: bool = option(False, "small slice, few epochs (tests)")
    batch_sizes: tuple[int, ...] = option(
        (0, 256, 32, 1), "batch sizes to compare; 0 = the whole training set per step (batch "
                         "GD), 1 = stochastic GD (trained on the first --sgd-train images)")
    epochs: tuple[int, ...] = option(
        (20, 5, 5, 3), "epochs for each batch size, in the same order (batch GD makes one "
                       "step per epoch, so it gets more)")
    sgd_train: int = option(
        5000, "training images for batch size 1 (one step per image is slow in Keras)")
    hidden_units: tuple[int, ...] = option((300, 100), "the MLP's hidden layers")
    optimizer: str = optimizer_option(
        "sgd", "optimizer for every variant (plain SGD is gradient descent)")
    base_learning_rate: float = option(
        0.01, "learning rate at batch size 32 (the book's SGD rate)")
    lr_scaling: str = option(
        "sqrt", "rate for batch size b: base * (b / 32) ** k with k = 1/2 (sqrt, Krizhevsky "
                "2014), 1 (linear, Goyal et al. 2017) or 0 (none)", LR_SCALINGS)
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_seeds()
        if not self.batch_sizes:
            raise ValueError("batch_sizes must name at least one batch size.")
        if min(self.batch_sizes) < 0:
            raise ValueError(f"batch_sizes must be >= 0 (0 = whole training set), got "
                             f"{self.batch_sizes}.")
        if len(self.epochs) != len(self.batch_sizes):
            raise ValueError(f"epochs needs one value per batch size: {len(self.batch_sizes)} "
                             f"batch sizes but {len(self.epochs)} epoch counts.")
        if min(self.epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}.")
        self._at_least(1, "sgd_train")
        self._positive("base_learning_rate")
        check_choice("lr_scaling", self.lr_scaling, LR_SCALINGS)
        self._positive_sizes("hidden_units")
