"""The tuner's data: MNIST, fish photos or a tiny generated set, as NumPy splits.

Every set comes as raw pixels (float32 in [0, 255]; uint8 photos for fish) split into
train, validation and test; the hypermodels rescale inside the model
(``input_norm="rescale"``), so the saved best model takes raw images. Arrays, not batched
datasets, because the batch size is a hyperparameter.

- ``mnist``: the first ``subset`` training images (the last ``val_size`` of them for
  validation) and the 10,000 test images (`recipes.data.load_mnist`, offline).
- ``fish``: `recipes.data.fish.load_fish_splits` on the folders (the training and
  validation folders, a test folder or a held-out part, as ``ch11.fish`` splits them),
  resized to ``image_size`` through the decoded-photo cache (no photo is decoded twice,
  across trials or runs); class imbalance is kept (the search weights it).
  `load_fish_sizes` loads the same splits at several sizes, for a search over the size.
- ``synthetic``: three classes of 12x12 noisy images with a bright band whose row says
  the class; for smoke runs and tests (no files needed).

Example:

```python
data = load_data("mnist", subset=12_000, val_size=2_000)
data.x_train.shape, data.num_classes  # (10000, 28, 28), 10
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 10 (MNIST/Fashion MNIST splits) and ch. 13.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recipes.checks import InputError, check_choice
from recipes.data import load_mnist
from tuning.names import DATASET_NAMES

__all__ = ["TuningData", "load_data", "load_fish_sizes", "rare_class"]


@dataclass
class TuningData:
    """Train/validation/test arrays and what describes them.

    Attributes:
        x_train, y_train, x_val, y_val, x_test, y_test: images in [0, 255] (float32, or
            uint8 photos) and int64 labels.
        class_names: one name per class index.
        description: one line saying what was loaded.
        sources: split -> where it came from, in words (fish: a folder or a held-out part).
        counts: fish: photos per class (rows) and split (columns), else `None`.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str] = field(default_factory=list)
    description: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    counts: Any = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)


def _mnist(subset: int | None, val_size: int | None, test_size: int | None) -> TuningData:
    (x_full, y_full), (x_test, y_test) = load_mnist()
    n = len(x_full) if not subset else min(int(subset), len(x_full))
    val = val_size if val_size is not None else (5000 if n == len(x_full) else max(1, n // 6))
    if not 0 < val < n:
        raise InputError(f"--val-size must be in [1, {n - 1}] for {n:,} images (--subset), "
                         f"got {val!r}.")
    x, y = x_full[:n].astype("float32"), y_full[:n].astype("int64")
    if test_size:
        x_test, y_test = x_test[:test_size], y_test[:test_size]
    return TuningData(
        x[:-val], y[:-val], x[-val:], y[-val:],
        x_test.astype("float32"), y_test.astype("int64"),
        class_names=[str(d) for d in range(10)],
        description=f"MNIST: {n - val:,} training, {val:,} validation (the last {val:,} of "
                    f"the first {n:,} training images), {len(x_test):,} test images",
    )


def _fish(folders: tuple[Any, Any, Any], image_size: int, seed: int,
          log: Callable[[str], None] | None, **split: Any) -> TuningData:
    from recipes.checks import InputError
    from recipes.data.fish import load_fish_splits

    fish = load_fish_splits(*folders, image_size=image_size, seed=seed, log=log, **split)
    if len(fish.y["test"]) == 0:
        raise InputError("The test split is empty: give --test-dir DIR or --test-split > 0.")
    how = ("read from the photo cache" if fish.from_cache
           else f"decoded at {fish.decoded_per_s:,.0f} photos/s")
    sizes = "/".join(f"{len(fish.y[s]):,}" for s in ("train", "validation", "test"))
    description = (f"fish photos: {len(fish.class_names)} classes, {sizes} train/validation/"
                   f"test photos at {image_size}x{image_size} ({how}, "
                   f"{fish.load_seconds:.1f} s)")
    if fish.duplicates:
        a = fish.duplicates[0]
        description += (f"; WARNING: {len(fish.duplicates)} photo(s) appear in two splits "
                        f"(same bytes), e.g. {a[1]} ({a[0]}) = {a[3]} ({a[2]})")
    return TuningData(
        fish.x["train"], fish.y["train"], fish.x["validation"], fish.y["validation"],
        fish.x["test"], fish.y["test"], class_names=list(fish.class_names),
        description=description, sources=dict(fish.sources), counts=fish.counts,
    )


def _synthetic(n: int, seed: int) -> TuningData:
    rng = np.random.default_rng(seed)
    total = n + n // 4
    y = rng.integers(0, 3, size=total)
    x = rng.normal(60.0, 25.0, size=(total, 12, 12))
    for c in range(3):
        x[y == c, 4 * c: 4 * c + 4, :] += 120.0
    x = np.clip(x, 0, 255).astype("float32")
    n_val = max(1, n // 5)
    n_train = n - n_val
    return TuningData(
        x[:n_train], y[:n_train], x[n_train:n], y[n_train:n], x[n:], y[n:],
        class_names=["top", "middle", "bottom"],
        description=f"synthetic: 3 classes of 12x12 images, {n_train}/{n_val}/{total - n} "
                    "train/validation/test",
    )


def load_data(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    train_dir: str | os.PathLike | None = None,
    val_dir: str | os.PathLike | None = None,
    test_dir: str | os.PathLike | None = None,
    test_from: str = "val",
    test_split: float = 0.5,
    validation_split: float = 0.2,
    subset: int | None = None,
    val_size: int | None = None,
    test_size: int | None = None,
    image_size: int = 64,
    seed: int = 42,
    log: Callable[[str], None] | None = None,
) -> TuningData:
    """Load a data set for the search.

    Args:
        name: `"mnist"`, `"fish"` or `"synthetic"`.
        data_dir: fish: one folder with ``train/ val/ test/`` (or one folder per class);
            replaces `train_dir` and `val_dir`.
        train_dir: fish: the training folder, one subfolder per class.
        val_dir: fish: the validation folder (`None`: `validation_split` of the training
            folder is held out).
        test_dir: fish: the test folder (`None`: `test_split` of each class of the
            `test_from` split is held out).
        test_from: fish: ``"val"`` or ``"train"``. Defaults to `"val"`.
        test_split: fish: that fraction. Defaults to `0.5`.
        validation_split: fish: the fraction held out for validation without a validation
            folder. Defaults to `0.2`.
        subset: MNIST: use the first `subset` training images (`None` or 0: all 60,000);
            synthetic: number of train + validation examples (default 480).
        val_size: MNIST validation images, the last of the subset. Defaults to a sixth of
            the subset (5,000 for the full set, the book's split).
        test_size: keep only the first `test_size` test images (MNIST). Defaults to all.
        image_size: fish photos are resized to `image_size` x `image_size`.
        seed: the fish split and the synthetic draw.
        log: fish: called with progress lines while photos are decoded. Defaults to `None`.

    Returns:
        A `TuningData`.

    Raises:
        ValueError: unknown name, fish without a folder, or a bad `val_size`.
        recipes.checks.InputError: a bad photo folder (a `ValueError`; the message names
            the folder or class and the fix).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10 (a validation set carved from the
    training set).
    """
    check_choice("data set", name, DATASET_NAMES)
    if name == "mnist":
        return _mnist(subset, val_size, test_size)
    if name == "fish":
        folders = (data_dir, None, test_dir) if data_dir else (train_dir, val_dir, test_dir)
        if folders[0] is None:
            raise ValueError("The fish data set needs a folder: pass train_dir (--train-dir) "
                             "or data_dir (--data-dir).")
        return _fish(folders, image_size, seed, log, test_from=test_from,
                     test_split=test_split, validation_split=validation_split)
    return _synthetic(int(subset or 480), seed)


def load_fish_sizes(sizes: Sequence[int], **kwargs: Any) -> dict[int, TuningData]:
    """The same fish splits at several image sizes (each from the decoded-photo cache).

    Args:
        sizes: the square sizes.
        **kwargs: `load_data`'s fish arguments (folders, fractions, seed, log).

    Returns:
        ``{size: TuningData}`` in the order of `sizes`; every entry has the same photos
        and labels, resized.
    """
    return {int(size): load_data("fish", image_size=int(size), **kwargs) for size in sizes}


def rare_class(y_train: np.ndarray, num_classes: int) -> int:
    """The index of the smallest class of the training split (the first, on a tie).

    Args:
        y_train: the training labels.
        num_classes: classes.

    Returns:
        The class index.
    """
    return int(np.argmin(np.bincount(np.asarray(y_train, dtype="int64"),
                                     minlength=num_classes)))
