"""The training doctor's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import option, out_dir_option
from recipes.checks import check_at_least, check_choice

__all__ = ["DATA_SETS", "NAME", "Config"]

NAME = "diagnose"
DATA_SETS = ("mnist", "fish")


@dataclass(frozen=True)
class Config:
    """What to diagnose, on which data."""

    model: str = option("", "the .keras model file (required)")
    data: str = option("mnist", "the data set", DATA_SETS)
    data_dir: str | None = option(None, "the fish photo folder (--data fish)")
    probe_steps: int = option(
        0, "training steps of the learning-rate probe on a copy of the model (0: none)")
    samples: int = option(1000, "training and validation examples to examine")
    history: str | None = option(
        None, "a history CSV of the model's training (train-validation gap over epochs)")
    seed: int = option(42, "seed of the samples and the probe")
    quick: bool = option(False, "at most 200 examples (tests)")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("--model is required: the path of a .keras model file.")
        check_choice("data", self.data, DATA_SETS)
        check_at_least("samples", self.samples, 10)
        check_at_least("probe_steps", self.probe_steps, 0)
        if self.data == "fish" and not self.data_dir:
            raise ValueError("--data fish needs --data-dir DIR (a folder of fish photos).")
