"""The schedules experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import (
    SeededConfig,
    optimizer_option,
    option,
    out_dir_option,
    precision_option,
    seeds_option,
)
from recipes.checks import check_fraction, check_positive
from recipes.names import SCHEDULE_NAMES

__all__ = ["NAME", "SCHEDULES", "Config"]

NAME = "schedules"
SCHEDULES = ("constant", "power", "exponential", "piecewise", "performance", "1cycle",
             "cyclical")


@dataclass(frozen=True)
class Config(SeededConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seeds: tuple[int, ...] | None = seeds_option(
        3, "each seed reruns 1cycle and the constant rate on the CNN (3 epochs) and the MLP "
           "(10 epochs); the other MLP schedules use --seed only")
    schedules: tuple[str, ...] = option(SCHEDULES, "schedules compared on the MLP",
                                        SCHEDULE_NAMES)
    optimizer: str = optimizer_option("nesterov", "optimizer of every variant")
    learning_rate: float | None = option(
        None, "MLP: initial rate, the peak for 1cycle/cyclical; None: the LR range test's "
              "suggestion")
    epochs: int = option(10, "MLP epochs; the book's 25-epoch time constants are scaled to it")
    cnn_schedules: tuple[str, ...] = option(("1cycle", "constant"), "schedules run on the CNN",
                                            SCHEDULE_NAMES)
    cnn_max_lr: float | None = option(
        None, "CNN rate (1cycle's peak); None: the CNN's LR range test suggestion")
    cnn_epochs: int = option(3, "CNN epochs")
    batch_size: int = option(128, "mini-batch size")
    finder_steps: int = option(300, "steps of each LR range test")
    target_accuracy: float = option(0.99, "the CNN's test target")
    precision: str = precision_option("CNN variants (and its LR range test)")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_seeds()
        self._check_precision()
        self._at_least(1, "epochs", "cnn_epochs", "batch_size")
        self._at_least(2, "finder_steps")
        for name in ("schedules", "cnn_schedules"):
            values = getattr(self, name)
            bad = [s for s in values if s not in SCHEDULE_NAMES]
            if not values or bad or len(set(values)) < len(values):
                raise ValueError(f"{name} must name distinct schedules among "
                                 f"{', '.join(SCHEDULE_NAMES)}; got {values!r}.")
        for name in ("learning_rate", "cnn_max_lr"):
            value = getattr(self, name)
            if value is not None:
                try:
                    check_positive(name, value)
                except ValueError:
                    raise ValueError(f"{name} must be > 0 or None, got {value}.") from None
        check_fraction("target_accuracy", self.target_accuracy, include_low=False,
                       include_high=True)
