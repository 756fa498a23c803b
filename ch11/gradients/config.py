"""The gradients experiment's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import (
    SeededConfig,
    input_norm_option,
    optimizer_option,
    option,
    out_dir_option,
    parse_variants,
)

__all__ = ["DEFAULT_VARIANTS", "NAME", "Config"]

NAME = "gradients"
DEFAULT_VARIANTS = ("sigmoid:random_normal", "sigmoid:glorot_uniform", "relu:he_normal",
                    "selu:lecun_normal")


@dataclass(frozen=True)
class Config(SeededConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    depth: int = option(30, "hidden layers of the deep MLP")
    units: int = option(100, "units per hidden layer")
    variants: tuple[str, ...] = option(
        DEFAULT_VARIANTS, "'activation:initializer' pairs to compare ('random_normal' is the "
                          "chapter's bad RandomNormal(stddev=1))")
    input_norm: str = input_norm_option(
        "SELU needs it; the init theory assumes zero-mean inputs")
    probe_size: int = option(
        1000, "training images of the batch that measures activations and gradients")
    epochs: int = option(1, "training epochs after the measurement")
    optimizer: str = optimizer_option("momentum", "optimizer (the book's SGD with momentum 0.9)")
    learning_rate: float = option(1e-3, "learning rate")
    batch_size: int = option(32, "mini-batch size")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_seeds()
        self._at_least(1, "depth", "units", "probe_size", "epochs", "batch_size")
        self._positive("learning_rate")
        parse_variants(self.variants)
