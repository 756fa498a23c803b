"""The transfer experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import SeededConfig, optimizer_option, option, out_dir_option, seeds_option

__all__ = ["NAME", "Config"]

NAME = "transfer"


@dataclass(frozen=True)
class Config(SeededConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seed: int = option(42, "seed of model A and of B's first run")
    quick: bool = option(False, "small slice, few epochs (tests)")
    seeds: tuple[int, ...] | None = seeds_option(10)
    classes_b: tuple[int, ...] = option(
        (4, 9), "the two digits of task B (label 1: the second); A gets the other 8. The "
                "book's pair (pullover, T-shirt) is a confusable one")
    n_train_b: int = option(200, "training images of task B")
    hidden_units: tuple[int, ...] = option((100, 100, 100),
                                           "hidden layers of A and B (the book's)")
    optimizer: str = optimizer_option("sgd", "optimizer of every model")
    learning_rate: float = option(1e-3, "learning rate (the book's)")
    epochs_a: int = option(20, "epochs of model A (the book's)")
    epochs_b: int = option(20, "epochs of B from scratch (the book's)")
    frozen_epochs: int = option(4, "B on A: epochs with A's layers frozen (the book's)")
    fine_tune_epochs: int = option(16, "B on A: epochs after unfreezing (the book's)")
    fine_tune_lr_factor: float = option(
        1.0, "fine-tuning rate / first rate (the notebook keeps the same rate; the text "
             "advises a smaller one)")
    batch_size: int = option(32, "mini-batch size")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_seeds()
        if len(self.classes_b) != 2 or len(set(self.classes_b)) != 2 \
                or not all(0 <= c <= 9 for c in self.classes_b):
            raise ValueError(f"classes_b must be two different digits 0-9, got {self.classes_b}.")
        self._at_least(1, "n_train_b", "epochs_a", "epochs_b", "frozen_epochs",
                       "batch_size")
        self._at_least(0, "fine_tune_epochs")
        self._positive("learning_rate", "fine_tune_lr_factor")
        self._positive_sizes("hidden_units")
