"""The transfer experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import optimizer_option, option, out_dir_option
from ch11._fish_config import FishDataConfig
from recipes.checks import check_at_least, check_positive

__all__ = ["NAME", "Config"]

NAME = "fish_transfer"


@dataclass(frozen=True)
class Config(FishDataConfig):
    """The experiment's settings."""

    quick: bool = option(False, "32x32 photos, a tiny CNN, one seed, 1-2 epochs (tests)")
    image_size: int = option(64, "photos are resized to this square")
    test_split: float = option(0.0, "B is evaluated on the validation folder's B classes: no "
                                    "test split is held out by default")
    b_classes: tuple[str, ...] = option(("animal fish", "animal fish bass"),
                                        "task B's classes; task A is every other class",
                                        metavar="CLASS")
    b_per_class: int = option(20, "task B's training photos per class (few, as in the book)")
    seeds: tuple[int, ...] = option((0, 1, 2, 3, 4), "seeds of the B models (A is trained "
                                                     "once, with --seed)")
    a_epochs: int = option(12, "model A's epochs (1cycle, early stopping on validation)")
    a_learning_rate: float = option(3e-3, "model A's 1cycle peak")
    b_epochs: int = option(30, "epochs of B from scratch")
    frozen_epochs: int = option(10, "B phase 1: epochs with A's layers frozen")
    fine_tune_epochs: int = option(20, "B phase 2: epochs fine-tuning everything")
    b_learning_rate: float = option(3e-3, "B's learning rate (phase 2: a tenth of it)")
    batch_size: int = option(32, "photos per training step")
    optimizer: str = optimizer_option("adamw", "the optimizer")
    weights: str = option("none", "also train a MobileNetV2 B with these weights: none "
                                  "(skip), imagenet (download or Keras cache) or a file path")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_fish_data()
        if len(self.b_classes) < 2 or len(set(self.b_classes)) != len(self.b_classes):
            raise ValueError(f"b_classes must name at least 2 different classes, got "
                             f"{self.b_classes!r}.")
        self._at_least(1, "b_per_class", "a_epochs", "b_epochs", "fine_tune_epochs",
                       "batch_size")
        self._at_least(0, "frozen_epochs")
        if not self.seeds:
            raise ValueError("seeds must list at least one seed.")
        for seed in self.seeds:
            check_at_least("seeds", seed, 0)
        check_positive("a_learning_rate", self.a_learning_rate)
        check_positive("b_learning_rate", self.b_learning_rate)
