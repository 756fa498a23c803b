"""The fish experiments' shared settings: where the photos are and how they are split.

Every fish experiment's ``Config`` extends `FishDataConfig`, so ``--train-dir``,
``--val-dir``, ``--test-dir``, ``--data-dir``, ``--test-from``, ``--test-split``,
``--validation-split`` and ``--image-size`` mean the same everywhere. No TensorFlow here.

Reference: Géron, Hands-On ML (3rd ed.), chapter 2 ("Create a Test Set": hold it out before
looking at it) and chapter 11.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ch11._config import ExperimentConfig, option
from recipes.checks import check_at_least, check_fraction

__all__ = ["DEFAULT_TRAIN_DIR", "DEFAULT_VAL_DIR", "TEST_SOURCES", "FishDataConfig"]

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_TRAIN_DIR = str(_SHARED / "fish-train")
DEFAULT_VAL_DIR = str(_SHARED / "fish-val")
TEST_SOURCES = ("val", "train")  # recipes.data.fish.TEST_SOURCES, without importing pandas


@dataclass(frozen=True)
class FishDataConfig(ExperimentConfig):
    """Where the photos come from (the course's training and validation splits by default).

    Args:
        train_dir: the training photos, one subfolder per class (or Kaggle's layout).
        val_dir: the validation photos (same class folders); ``None`` holds out
            ``validation_split`` of the training folder instead.
        test_dir: the test photos (same class folders); ``None`` holds out ``test_split``
            of the ``test_from`` split instead, and the report says so.
        data_dir: one folder with ``train/``, ``val/`` and ``test/`` (or one folder per
            class, split by the fractions); replaces ``train_dir`` and ``val_dir``.
        test_from: ``val`` or ``train``: the split that gives up ``test_split`` of each
            class as the test set when there is no test folder.
        test_split: that fraction.
        validation_split: the fraction of each training class held out for validation when
            there is no validation folder.
        image_size: photos are resized to this square.
    """

    train_dir: str = option(DEFAULT_TRAIN_DIR, "training photos: one subfolder per class "
                                               "(or Kaggle's Fish_Dataset layout)")
    val_dir: str | None = option(DEFAULT_VAL_DIR, "validation photos, the same class folders "
                                                  "('none': hold out --validation-split of "
                                                  "the training folder)")
    test_dir: str | None = option(None, "test photos, the same class folders (without it, "
                                        "--test-split of the --test-from split is held out "
                                        "and the report says so)")
    data_dir: str | None = option(None, "one folder with train/ val/ test/ (or one folder per "
                                        "class): replaces --train-dir and --val-dir")
    test_from: str = option("val", "without --test-dir: the split that gives up --test-split "
                                   "of each class as the test set", TEST_SOURCES)
    test_split: float = option(0.5, "without --test-dir: the fraction of each class held out "
                                    "as the test set")
    validation_split: float = option(0.2, "without a validation folder: the fraction of "
                                          "each training class held out for validation")
    image_size: int = option(96, "photos are resized to this square")

    def _check_fish_data(self) -> None:
        """The checks every fish config shares (call from ``__post_init__``)."""
        check_fraction("test_split", self.test_split)
        check_fraction("validation_split", self.validation_split)
        check_at_least("seed", self.seed, 0)
        check_at_least("image_size", self.image_size, 8)
        if self.test_from not in TEST_SOURCES:
            raise ValueError(f"Unknown test_from {self.test_from!r}. Valid: "
                             f"{', '.join(TEST_SOURCES)}.")

    def folders(self) -> tuple[str, str | None, str | None]:
        """``(train, validation, test)`` folders as `recipes.data.fish.load_fish_splits`
        takes them (``data_dir`` replaces the first two)."""
        if self.data_dir:
            return self.data_dir, None, self.test_dir
        return self.train_dir, self.val_dir, self.test_dir
