"""The clipping experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import SeededConfig, optimizer_option, option, out_dir_option
from recipes.names import ACTIVATION_NAMES

__all__ = ["NAME", "Config"]

NAME = "clipping"


@dataclass(frozen=True)
class Config(SeededConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    depth: int = option(20, "hidden layers of the deep MLP")
    units: int = option(100, "units per hidden layer")
    activation: str = option("relu", "hidden activation", ACTIVATION_NAMES)
    optimizer: str = optimizer_option("momentum", "optimizer of every variant")
    learning_rate: float = option(
        0.05, "learning rate, too high on purpose so that the unclipped net's gradients explode")
    clipvalue: float = option(1.0, "clipvalue (the book's 1.0)")
    clipnorm: float = option(1.0, "clipnorm (the book's 1.0)")
    global_clipnorm: float = option(1.0, "global_clipnorm threshold")
    epochs: int = option(2, "epochs per variant")
    batch_size: int = option(32, "mini-batch size")
    monitor_batch: int = option(256, "fixed training images the gradient norm is measured on")
    monitor_every: int = option(1, "measure every N training steps")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_seeds()
        self._at_least(1, "depth", "units", "epochs", "batch_size", "monitor_batch",
                       "monitor_every")
        self._positive("learning_rate", "clipvalue", "clipnorm", "global_clipnorm")
