"""The skip-connection experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import (
    SeededConfig,
    check_names,
    optimizer_option,
    option,
    out_dir_option,
    seeds_option,
)
from recipes.names import ACTIVATION_NAMES
from recipes.specs import BATCH_NORM_CHOICES

__all__ = ["NAME", "Config"]

NAME = "residual"


@dataclass(frozen=True)
class Config(SeededConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seeds: tuple[int, ...] | None = seeds_option(3)

    quick: bool = option(False, "shallow net, small slice (tests)")
    depth: int = option(50, "hidden layers of the deep MLP")
    units: int = option(100, "units per hidden layer")
    activations: tuple[str, ...] = option(
        ("sigmoid", "relu"), "hidden activations to compare (each with its 'auto' initializer: "
                             "Glorot for sigmoid, He for ReLU)", ACTIVATION_NAMES)
    batch_norms: tuple[str, ...] = option(
        ("none", "before"), "batch-norm placements to cross with plain/residual",
        BATCH_NORM_CHOICES)
    probe_size: int = option(1000, "training images of the batch that measures the gradients")
    epochs: int = option(1, "training epochs")
    optimizer: str = optimizer_option(
        "sgd", "optimizer (plain SGD: a step is proportional to the gradient, so vanishing "
               "gradients show)")
    learning_rate: float = option(0.01, "learning rate")
    batch_size: int = option(32, "mini-batch size")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_seeds()
        self._at_least(1, "depth", "units", "probe_size", "epochs", "batch_size")
        self._positive("learning_rate")
        check_names("activations", self.activations, ACTIVATION_NAMES, "activation")
        check_names("batch_norms", self.batch_norms, BATCH_NORM_CHOICES, "batch_norm")
