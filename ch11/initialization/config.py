"""The initialization experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import (
    SeededConfig,
    input_norm_option,
    optimizer_option,
    option,
    out_dir_option,
    parse_variants,
    seeds_option,
)

__all__ = ["DEFAULT_VARIANTS", "NAME", "Config"]

NAME = "initialization"
DEFAULT_VARIANTS = (
    "tanh:glorot_uniform", "relu:glorot_uniform",
    "relu:he_normal", "tanh:he_normal",
    "selu:lecun_normal", "relu:lecun_normal",
    "relu:he_avg_uniform", "selu:he_avg_uniform",
)


@dataclass(frozen=True)
class Config(SeededConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seeds: tuple[int, ...] | None = seeds_option(3)
    depth: int = option(20, "hidden layers of the deep MLP")
    units: int = option(100, "units per hidden layer")
    variants: tuple[str, ...] = option(
        DEFAULT_VARIANTS, "'activation:initializer' pairs, each initializer with its "
                          "activation and a mismatched one")
    input_norm: str = input_norm_option("SELU needs it")
    epochs: int = option(3, "epochs per variant")
    optimizer: str = optimizer_option("momentum", "optimizer (the book's SGD with momentum 0.9)")
    learning_rate: float = option(1e-3, "learning rate")
    batch_size: int = option(32, "mini-batch size")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_seeds()
        self._at_least(1, "depth", "units", "epochs", "batch_size")
        self._positive("learning_rate")
        parse_variants(self.variants)
