"""The activations experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import (
    SeededConfig,
    input_norm_option,
    optimizer_option,
    option,
    out_dir_option,
    seeds_option,
)
from recipes.names import ACTIVATION_NAMES

__all__ = ["DEFAULT_ACTIVATIONS", "NAME", "Config"]

NAME = "activations"
DEFAULT_ACTIVATIONS = ("relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "gelu", "swish",
                       "mish")


@dataclass(frozen=True)
class Config(SeededConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seeds: tuple[int, ...] | None = seeds_option(
        3, "the dying-ReLU demonstration uses --seed only")
    activations: tuple[str, ...] = option(DEFAULT_ACTIVATIONS, "activations to compare",
                                          ACTIVATION_NAMES)
    depth: int = option(10, "hidden layers of the MLP")
    units: int = option(100, "units per hidden layer")
    input_norm: str = input_norm_option("SELU needs it")
    epochs: int = option(2, "epochs per activation")
    optimizer: str = optimizer_option(
        "momentum", "optimizer of the comparison (the book's SGD with momentum 0.9)")
    learning_rate: float = option(1e-3, "learning rate of the comparison")
    batch_size: int = option(32, "mini-batch size")
    probe_size: int = option(1000, "validation images on which a dead unit outputs 0 every time")
    demo_activations: tuple[str, ...] = option(
        ("relu", "leaky_relu", "elu"), "activations of the dying-ReLU demonstration",
        ACTIVATION_NAMES)
    demo_optimizer: str = optimizer_option("adam", "optimizer of the demonstration")
    demo_learning_rate: float = option(
        1e-2, "the too-high learning rate of the demonstration (10x Adam's default)")
    demo_epochs: int = option(5, "epochs of the demonstration")
    demo_train: int = option(
        20000, "training images of the demonstration (fewer, so it can run more epochs)")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_seeds()
        self._at_least(1, "depth", "units", "epochs", "batch_size", "probe_size", "demo_epochs",
                       "demo_train")
        self._positive("learning_rate", "demo_learning_rate")
        for name in ("activations", "demo_activations"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name} must name at least one activation.")
            unknown = [a for a in values if a not in ACTIVATION_NAMES]
            if unknown:
                raise ValueError(f"Unknown activation(s) {unknown} in {name}. "
                                 f"Valid: {', '.join(ACTIVATION_NAMES)}.")
