"""The fish classifier's settings (no TensorFlow here: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ch11._config import optimizer_option, option, out_dir_option
from ch11._fish_config import FishDataConfig
from recipes.checks import check_fraction, check_positive
from recipes.names import PRECISIONS
from recipes.specs import AUGMENTATIONS

__all__ = ["BACKBONES", "IMBALANCE", "NAME", "PRECISIONS", "Config"]

NAME = "fish"
BACKBONES = ("none", "mobilenetv2", "efficientnetb0")
# The remedies against the imbalance (ch11._fish.REMEDIES, plus "both" = weights + focal).
IMBALANCE = ("none", "class_weight", "focal", "oversample", "both")


@dataclass(frozen=True)
class Config(FishDataConfig):
    """The classifier's settings: the chapter's recipe, sized for 2 CPU cores."""

    seed: int = option(42, "seed of the held-out splits and of each model")
    quick: bool = option(False, "32x32 photos, a tiny CNN, 2 epochs (tests)")
    batch_size: int = option(64, "photos per training step")
    cnn_epochs: int = option(30, "the 1cycle's length in epochs: the most that run (early "
                                 "stopping on the validation loss restores the best epoch)")
    patience: int = option(6, "epochs without a better validation loss before stopping")
    learning_rate: float | None = option(None, "the 1cycle peak ('none': a tenth of the "
                                               "loss minimum of the LR range test)")
    optimizer: str = optimizer_option("adamw", "the optimizer")
    augmentation: tuple[str, ...] = option(("flip",), "augmentation layers inside the CNN, "
                                                      "training only ('none': no "
                                                      "augmentation)",
                                           ("none", *AUGMENTATIONS))
    precision: str = option("auto", "dtype policy ('auto': mixed_bfloat16 where the CPU "
                                    "computes bf16 natively)", PRECISIONS)
    imbalance: str = option("class_weight", "the remedy against the class imbalance",
                            IMBALANCE)
    compare_imbalance: bool = option(False, "also train the CNN with the other remedies "
                                            "(one seed; make recipe-fish-imbalance has the "
                                            "full study over seeds)")
    backbone: str = option("none", "also train a keras.applications backbone (transfer "
                                   "learning) and compare", BACKBONES)
    weights: str = option("imagenet", "the backbone's weights: imagenet (download or Keras "
                                      "cache), none (trained from scratch) or a file path")
    width: float = option(0.35, "MobileNetV2's width multiplier alpha")
    frozen_epochs: int = option(3, "transfer phase 1 (backbone frozen) epochs")
    fine_tune_epochs: int = option(6, "transfer phase 2 (fine-tuning) epochs")
    saliency_per_class: int = option(2, "test photos per class in the saliency maps")
    out_dir: str = out_dir_option()

    def __post_init__(self) -> None:
        self._check_fish_data()
        self._at_least(1, "batch_size", "cnn_epochs", "patience", "fine_tune_epochs")
        self._at_least(0, "frozen_epochs", "saliency_per_class")
        if self.learning_rate is not None:
            check_positive("learning_rate", self.learning_rate)
        check_fraction("width", self.width, low=0.0, high=1.4, include_low=False,
                       include_high=True)
        unknown = [a for a in self.augmentation if a not in ("none", *AUGMENTATIONS)]
        if unknown or not self.augmentation or ("none" in self.augmentation
                                                and len(self.augmentation) > 1):
            raise ValueError(f"augmentation must be 'none' or some of "
                             f"{', '.join(AUGMENTATIONS)}; got {list(self.augmentation)}.")
        for name, valid in (("backbone", BACKBONES), ("imbalance", IMBALANCE),
                            ("precision", PRECISIONS)):
            if getattr(self, name) not in valid:
                raise ValueError(f"Unknown {name} {getattr(self, name)!r}. Valid: "
                                 f"{', '.join(valid)}.")

    @property
    def augmentations(self) -> tuple[str, ...]:
        """The augmentation layers `recipe_spec` takes (``()`` for ``none``)."""
        return () if self.augmentation == ("none",) else tuple(self.augmentation)
