"""The capacity sweep's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import optimizer_option, option, out_dir_option
from ch11._fish_config import FishDataConfig
from recipes.checks import check_at_least, check_fraction, check_positive

__all__ = ["NAME", "Config"]

NAME = "fish_capacity"


@dataclass(frozen=True)
class Config(FishDataConfig):
    """The sweep's settings."""

    quick: bool = option(False, "32x32 photos, 2 sizes, 2 epochs (tests)")
    image_size: int = option(64, "photos are resized to this square")
    test_split: float = option(0.0, "the sweep compares training and validation: no test "
                                    "split by default")
    per_class: int = option(20, "training photos per class (a small subset, as in the course)")
    dense_units: tuple[int, ...] = option((16, 64, 256, 1024), "the dense head's widths swept "
                                                               "(the capacity)")
    filters: tuple[int, ...] = option((16, 32, 64), "the conv blocks' filters (fixed)")
    seeds: tuple[int, ...] = option((0, 1, 2), "training seeds (the subset stays that of --seed)")
    epochs: int = option(40, "epochs per model (no early stopping: the gap is the point)")
    batch_size: int = option(32, "photos per training step")
    learning_rate: float = option(2e-3, "the 1cycle peak")
    optimizer: str = optimizer_option("adamw", "the optimizer")
    dropout_rate: float = option(0.5, "regularized models: dropout after the dense layer")
    l2: float = option(1e-3, "regularized models: L2 penalty on every kernel")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_fish_data()
        self._at_least(1, "per_class", "epochs", "batch_size")
        self._positive_sizes("dense_units")
        self._positive_sizes("filters")
        if not self.seeds:
            raise ValueError("seeds must list at least one seed.")
        for seed in self.seeds:
            check_at_least("seeds", seed, 0)
        check_positive("learning_rate", self.learning_rate)
        check_fraction("dropout_rate", self.dropout_rate)
        check_at_least("l2", self.l2, 0, integer=False)
