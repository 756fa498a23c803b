"""The losses experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import SeededConfig, check_digit, optimizer_option, option, out_dir_option
from recipes.checks import check_at_least

__all__ = ["NAME", "Config"]

NAME = "losses"


@dataclass(frozen=True)
class Config(SeededConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    hidden_units: tuple[int, ...] = option((300, 100), "the MLP's hidden layers")
    epochs: int = option(5, "epochs for every variant")
    optimizer: str = optimizer_option(
        "sgd", "optimizer for every variant (the book's chapter 10 SGD)")
    learning_rate: float = option(0.01, "learning rate")
    batch_size: int = option(32, "mini-batch size")
    positive_digit: int = option(
        5, "the positive class of the one-vs-rest binary task (the book's 5-detector)")
    margins: tuple[float, ...] = option(
        (0.0, 1.0, 2.0, 4.0, 8.0, 12.0),
        "logit margins of the wrong class over the others in the gradient table")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_seeds()
        self._at_least(1, "epochs", "batch_size")
        self._positive("learning_rate")
        self._positive_sizes("hidden_units")
        check_digit("positive_digit", self.positive_digit)
        if not self.margins:
            raise ValueError("margins must list at least one logit margin, got ().")
        for margin in self.margins:
            check_at_least("margins", margin, 0, integer=False)
