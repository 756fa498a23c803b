"""The SELU experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import SeededConfig, optimizer_option, option, out_dir_option

__all__ = ["NAME", "Config"]

NAME = "selu"


@dataclass(frozen=True)
class Config(SeededConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    depth: int = option(100, "hidden layers (the book's 100)")
    units: int = option(100, "units per hidden layer (the book's 100)")
    epochs: int = option(
        2, "epochs per net (the book trains 5; 2 keep the run near 5 minutes on CPU)")
    optimizer: str = optimizer_option(
        "sgd", "optimizer (the book's cell: plain SGD, no momentum)")
    learning_rate: float = option(1e-3, "learning rate (the book's)")
    batch_size: int = option(32, "mini-batch size")
    probe_size: int = option(
        1000, "training images on which the per-layer statistics are measured")
    investigate: bool = option(
        True, "also train the SELU net for one short epoch under each condition of the "
              "investigation (optimizer and rate, inputs, AlphaDropout), tracing its "
              "per-layer mean and std during training")
    investigate_train: int = option(10_000, "training images of each investigation run")
    trace_every: int = option(25, "training steps between two traces of the per-layer "
                                  "statistics (on 256 training images)")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_seeds()
        self._at_least(1, "depth", "units", "epochs", "batch_size", "probe_size",
                       "investigate_train", "trace_every")
        self._positive("learning_rate")
