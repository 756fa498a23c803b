"""The tuner's data: MNIST, fish photos or a tiny generated set, as NumPy splits.

Every set comes as raw pixels (float32 in [0, 255]) split into train, validation and test;
the hypermodels rescale inside the model (``input_norm="rescale"``), so the saved best
model takes raw images. Arrays, not batched datasets, because the batch size is a
hyperparameter.

- ``mnist``: the first ``subset`` training images (the last ``val_size`` of them for
  validation) and the 10,000 test images (`recipes.data.load_mnist`, offline).
- ``fish``: `recipes.data.load_fish` on a folder, resized to ``image_size``, split
  stratified 70/20/10 per class; class imbalance is kept (the search weights it).
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
from dataclasses import dataclass, field

import numpy as np

from recipes.checks import InputError, check_choice
from recipes.data import load_fish, load_mnist
from tuning.names import DATASET_NAMES

__all__ = ["TuningData", "load_data"]


@dataclass
class TuningData:
    """Train/validation/test arrays and what describes them.

    Attributes:
        x_train, y_train, x_val, y_val, x_test, y_test: float32 images in [0, 255] and
            int64 labels.
        class_names: one name per class index.
        description: one line saying what was loaded.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str] = field(default_factory=list)
    description: str = ""

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


def _to_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for xb, yb in dataset.as_numpy_iterator():
        xs.append(xb)
        ys.append(yb)
    return np.concatenate(xs).astype("float32"), np.concatenate(ys).astype("int64")


def _fish(data_dir: str | os.PathLike, image_size: int, seed: int) -> TuningData:
    fish = load_fish(data_dir, image_size=(image_size, image_size), validation_split=0.2,
                     test_split=0.1, seed=seed, batch_size=256, shuffle=False)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = (
        _to_arrays(fish.train), _to_arrays(fish.validation), _to_arrays(fish.test)
    )
    return TuningData(
        x_tr, y_tr, x_va, y_va, x_te, y_te, class_names=list(fish.class_names),
        description=f"fish photos in {fish.directory}: {len(fish.class_names)} classes, "
                    f"{len(x_tr):,}/{len(x_va):,}/{len(x_te):,} train/validation/test images "
                    f"at {image_size}x{image_size}",
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
    subset: int | None = None,
    val_size: int | None = None,
    test_size: int | None = None,
    image_size: int = 64,
    seed: int = 42,
) -> TuningData:
    """Load a data set for the search.

    Args:
        name: `"mnist"`, `"fish"` or `"synthetic"`.
        data_dir: the fish photo folder (fish only).
        subset: MNIST: use the first `subset` training images (`None` or 0: all 60,000);
            synthetic: number of train + validation examples (default 480).
        val_size: MNIST validation images, the last of the subset. Defaults to a sixth of
            the subset (5,000 for the full set, the book's split).
        test_size: keep only the first `test_size` test images (MNIST). Defaults to all.
        image_size: fish photos are resized to `image_size` x `image_size`.
        seed: the fish split and the synthetic draw.

    Returns:
        A `TuningData`.

    Raises:
        ValueError: unknown name, fish without `data_dir`, or a bad `val_size`.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10 (a validation set carved from the
    training set).
    """
    check_choice("data set", name, DATASET_NAMES)
    if name == "mnist":
        return _mnist(subset, val_size, test_size)
    if name == "fish":
        if data_dir is None:
            raise ValueError("The fish data set needs a folder: pass data_dir (--data-dir).")
        return _fish(data_dir, image_size, seed)
    return _synthetic(int(subset or 480), seed)
