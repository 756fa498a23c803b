"""The imbalance study's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import check_names, optimizer_option, option, out_dir_option
from ch11._fish_config import FishDataConfig
from recipes.checks import check_at_least, check_positive
from recipes.names import PRECISIONS

__all__ = ["NAME", "REMEDIES", "Config"]

NAME = "fish_imbalance"
REMEDIES = ("none", "class_weight", "focal", "oversample")  # ch11._fish.REMEDIES


@dataclass(frozen=True)
class Config(FishDataConfig):
    """The study's settings: every remedy once per seed, on the same held-out splits."""

    quick: bool = option(False, "32x32 photos, a tiny CNN, one seed, 2 epochs (tests)")
    image_size: int = option(64, "photos are resized to this square")
    seeds: tuple[int, ...] = option((0, 1, 2), "training seeds: each remedy is trained once "
                                               "per seed (the splits stay those of --seed)")
    remedies: tuple[str, ...] = option(REMEDIES, "the remedies trained (threshold moving is "
                                                 "added to 'none' without training)", REMEDIES)
    epochs: int = option(15, "the 1cycle's length in epochs (early stopping on validation)")
    patience: int = option(5, "epochs without a better validation loss before stopping")
    batch_size: int = option(64, "photos per training step")
    learning_rate: float = option(3e-3, "the 1cycle peak (ch11.fish's LR range test gives "
                                        "this order on these photos)")
    optimizer: str = optimizer_option("adamw", "the optimizer")
    precision: str = option("auto", "dtype policy ('auto': mixed_bfloat16 where the CPU "
                                    "computes bf16 natively)", PRECISIONS)
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_fish_data()
        check_names("remedies", self.remedies, REMEDIES, "remedy")
        if not self.seeds:
            raise ValueError("seeds must list at least one seed.")
        for seed in self.seeds:
            check_at_least("seeds", seed, 0)
        self._at_least(1, "epochs", "patience", "batch_size")
        check_positive("learning_rate", self.learning_rate)
        if self.precision not in PRECISIONS:
            raise ValueError(f"Unknown precision {self.precision!r}. Valid: "
                             f"{', '.join(PRECISIONS)}.")
