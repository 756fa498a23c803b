"""Fish photographs: a folder of images in, stratified ``tf.data`` splits out.

`load_fish` reads Kaggle's "A Large Scale Fish Dataset" (``Fish_Dataset/<Class>/<Class>/``,
never the ``<Class> GT`` segmentation masks beside it), any one-folder-per-class layout,
or a folder already split into ``train/``, ``val/`` (or ``validation/``) and ``test/``.
Every file is checked eagerly with Pillow: an unreadable photo fails at once, by name.

Example:

```python
data = load_fish("../shared/data/fish-val", image_size=(128, 128))
print(data.summary())
model.fit(data.train, validation_data=data.validation, epochs=10)
```

Reference: Géron, Hands-On ML (3rd ed.), chapter 13 (``tf.data`` pipelines) and chapter 14
(transfer learning on a folder of photos).
"""

from __future__ import annotations

import os
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
from PIL import Image

from recipes.data.pipeline import static_options

__all__ = ["IMAGE_EXTENSIONS", "SPLITS", "FishData", "load_fish"]

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
SPLITS = ("train", "validation", "test")
_DECODABLE = {"JPEG", "MPO", "PNG", "GIF", "BMP"}  # what tf.io.decode_image reads
_SKIP_DIRS = {"__MACOSX"}
Files = list[tuple[str, int]]


@dataclass
class FishData:
    """Fish photos split three ways, with the bookkeeping to check and weight them.

    Attributes:
        train, validation, test: ``tf.data`` datasets of ``(images, labels)`` batches:
            float32 images in [0, 255] of shape (batch, H, W, 3), int32 labels.
        class_names: sorted class names; a label is an index into this list.
        counts: images per class (index) and split (columns train/validation/test/total).
        layout: ``"kaggle"``, ``"class_folders"`` or ``"presplit"``.
        files: split name -> list of ``(path, label)`` in dataset order (before shuffling).
        directory: the folder the classes were read from.
        image_size: ``(height, width)`` the photos are resized to.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    class_names: list[str]
    counts: pd.DataFrame
    layout: str
    files: dict[str, Files] = field(repr=False)
    directory: Path | None = None
    image_size: tuple[int, int] = (128, 128)

    def labels(self, split: str) -> np.ndarray:
        """Labels of one split in dataset order (before shuffling).

        Args:
            split: ``"train"``, ``"validation"`` or ``"test"``.

        Returns:
            An int32 array.

        Raises:
            ValueError: unknown split name.
        """
        if split not in self.files:
            raise ValueError(f"Unknown split {split!r}. Valid: {', '.join(SPLITS)}.")
        return np.array([label for _, label in self.files[split]], dtype=np.int32)

    def summary(self) -> str:
        """A readable table of images per class and split.

        Returns:
            Several lines of text, the totals in the last row.
        """
        table = self.counts.copy()
        table.loc["TOTAL"] = table.sum()
        h, w = self.image_size
        sizes = "/".join(f"{int(table.loc['TOTAL', s]):,}" for s in SPLITS)
        return (
            f"Fish photos in {self.directory} (layout: {self.layout})\n"
            f"{len(self.class_names)} classes, {int(table.loc['TOTAL', 'total']):,} images, "
            f"resized to {h}x{w}; train/validation/test = {sizes}\n" + table.to_string()
        )


def _is_image(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name not in _SKIP_DIRS)


def _scan_classes(folder: Path) -> tuple[dict[str, list[Path]], bool]:
    """Class name -> sorted image paths, and whether the Kaggle nesting was found."""
    dirs = _subdirs(folder)
    names = {d.name for d in dirs}
    classes: dict[str, list[Path]] = {}
    nested_found = False
    for d in dirs:
        if d.name.endswith(" GT") and d.name[:-3] in names:
            continue  # segmentation masks of class d.name[:-3], not photos
        nested = d / d.name  # Kaggle: <Class>/<Class>/*.png beside <Class>/<Class> GT/
        nested_found |= nested.is_dir()
        source = nested if nested.is_dir() else d
        files = sorted(p for p in source.iterdir() if _is_image(p))
        if not files:
            raise ValueError(f"Class folder '{source}' has no images "
                             f"({', '.join(IMAGE_EXTENSIONS)}): add images or remove it.")
        classes[d.name] = files
    if not classes:
        loose = any(_is_image(p) for p in folder.iterdir())
        hint = ("it holds images but no class folders: put each class in its own subfolder"
                if loose else "expected one subfolder of images per class")
        raise ValueError(f"No images found in '{folder}': {hint}.")
    return classes, nested_found


def _check_readable(paths: list[Path], skip_corrupt: bool) -> list[Path]:
    """Drop (with a warning) or reject files Pillow or TensorFlow cannot decode."""
    good = []
    for path in paths:
        try:
            with Image.open(path) as im:
                fmt = im.format
                im.verify()
            if fmt not in _DECODABLE:
                raise ValueError(f"{fmt} images cannot be decoded by tf.io.decode_image")
            if fmt in ("JPEG", "MPO"):  # verify() skips the JPEG data: decode it at 1/8 scale
                with Image.open(path) as im:
                    im.draft("RGB", (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
                    im.load()
        except Exception as e:  # noqa: BLE001 - Pillow raises many kinds
            msg = f"Unreadable image '{path}': {type(e).__name__}: {e}"
            if not skip_corrupt:
                raise ValueError(f"{msg}. Remove the file or pass skip_corrupt=True.") from e
            warnings.warn(f"{msg}. Skipped (skip_corrupt=True).", stacklevel=2)
            continue
        good.append(path)
    return good


def _split_counts(name: str, n: int, val: float, test: float) -> tuple[int, int]:
    need = 1 + (val > 0) + (test > 0)
    if n < need:
        raise ValueError(
            f"Class '{name}' has only {n} image(s), too few for validation_split={val:g} and "
            f"test_split={test:g} (needs at least {need}: one per split). Use a smaller split "
            "(e.g. test_split=0), merge the class with another, or add images."
        )
    n_val = max(int(np.floor(n * val + 0.5)), int(val > 0))
    n_test = max(int(np.floor(n * test + 0.5)), int(test > 0))
    while n_val + n_test > n - 1:  # keep at least one training image
        if n_val >= n_test and n_val > 1 or n_test <= 1:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def _stratified(classes: dict[str, list[Path]], val: float, test: float, seed: int):
    """Per-class shuffle of the sorted files (seeded by seed and class name), then cut."""
    out: dict[str, dict[str, list[Path]]] = {s: {} for s in SPLITS}
    for name, paths in classes.items():
        n_val, n_test = _split_counts(name, len(paths), val, test)
        rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
        order = [paths[i] for i in rng.permutation(len(paths))]
        out["validation"][name] = order[:n_val]
        out["test"][name] = order[n_val:n_val + n_test]
        out["train"][name] = order[n_val + n_test:]
    return out


def _find_root(directory: Path) -> Path:
    root = directory
    for _ in range(3):  # <root>/Fish_Dataset/Fish_Dataset/... as Kaggle's archive unpacks
        inner = [d for d in _subdirs(root) if d.name.lower() == "fish_dataset"]
        if not inner:
            break
        root = inner[0]
    return root


def _presplit(directory: Path, skip_corrupt: bool):
    dirs = {d.name.lower(): d for d in _subdirs(directory)}
    if "val" in dirs and "validation" in dirs:
        raise ValueError(f"'{directory}' has both val/ and validation/: keep only one.")
    found = {"train": dirs["train"], "validation": dirs.get("val", dirs.get("validation")),
             "test": dirs.get("test")}
    out = {split: {k: _check_readable(v, skip_corrupt) for k, v in
                   (_scan_classes(folder)[0] if folder is not None else {}).items()}
           for split, folder in found.items()}
    for split in ("validation", "test"):
        missing = sorted(set(out[split]) - set(out["train"]))
        if missing:
            raise ValueError(f"Class(es) {missing} of {found[split]} are missing from "
                             f"{found['train']}: every class needs training images.")
    return out


def _dataset(files: Files, image_size: tuple[int, int], batch_size: int, shuffle_seed,
             cache: bool) -> tf.data.Dataset:
    paths = tf.constant([p for p, _ in files], dtype=tf.string)
    labels = tf.constant([label for _, label in files], dtype=tf.int32)

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(image, image_size)  # float32, still in [0, 255]
        image.set_shape((*image_size, 3))
        return image, label

    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    ds = ds.map(decode, num_parallel_calls=os.cpu_count() or 1)
    if cache:
        ds = ds.cache()
    if shuffle_seed is not None and files:
        ds = ds.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
    # fixed parallelism and prefetch, autotuning off: no idle stalls at epoch starts
    return ds.batch(batch_size).prefetch(2).with_options(static_options())


def _check_args(image_size, validation_split, test_split, seed, batch_size) -> tuple[int, int]:
    for name, frac in (("validation_split", validation_split), ("test_split", test_split)):
        if not isinstance(frac, int | float) or not 0 <= frac < 1:
            raise ValueError(f"{name} must be a fraction in [0, 1), got {frac!r}.")
    if validation_split + test_split >= 1:
        raise ValueError(f"validation_split + test_split must be < 1 to leave training images, "
                         f"got {validation_split:g} + {test_split:g}.")
    for name, value, low in (("seed", seed, 0), ("batch_size", batch_size, 1)):
        if not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, int | np.integer) and s > 0 for s in size):
        raise ValueError(f"image_size must be (height, width) > 0, got {image_size!r}.")
    return int(size[0]), int(size[1])


def load_fish(
    directory: str | Path,
    image_size: tuple[int, int] = (128, 128),
    validation_split: float = 0.2,
    test_split: float = 0.1,
    seed: int = 42,
    batch_size: int = 32,
    *,
    skip_corrupt: bool = False,
    shuffle: bool = True,
    cache: bool = True,
) -> FishData:
    """Load a folder of fish photos as stratified train/validation/test ``tf.data`` sets.

    Layouts, detected in this order: "presplit" ``train/<class>/`` beside ``val/`` (or
    ``validation/``) and/or ``test/``, used as given (the fractions are ignored); "kaggle"
    ``[Fish_Dataset/[Fish_Dataset/]]<Class>/<Class>/*.png`` (the ``<Class> GT`` masks are
    never read); "class_folders" ``<class>/*.jpg``. Photos are the files directly in a
    class folder ending in .jpg, .jpeg, .png, .bmp or .gif (any case). Otherwise each class
    is shuffled (seeded) and cut: ``round(n * validation_split)`` validation and
    ``round(n * test_split)`` test images (at least 1 when the fraction is > 0), the rest
    for training. Photos are decoded as RGB and resized.

    Args:
        directory: the folder.
        image_size: ``(height, width)`` (or one int) to resize to. Defaults to `(128, 128)`.
        validation_split: fraction of each class for validation. Defaults to `0.2`.
        test_split: fraction of each class for testing. Defaults to `0.1`.
        seed: seeds the split and the training shuffle. Defaults to `42`.
        batch_size: images per batch. Defaults to `32`.
        skip_corrupt: warn and skip unreadable files instead of raising. Defaults to `False`.
        shuffle: shuffle the training set each epoch. Defaults to `True`.
        cache: cache the decoded images in memory. Defaults to `True`.

    Returns:
        A `FishData`.

    Raises:
        FileNotFoundError: ``directory`` does not exist or is not a folder.
        ValueError: bad fractions or sizes; no images, an empty class folder, fewer than 2
            classes, a class too small for the split, a class missing from ``train/``, or an
            unreadable image (the message names the folder, class or file).
    """
    size = _check_args(image_size, validation_split, test_split, seed, batch_size)
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(f"Fish photo folder '{directory}' does not exist.")
    names = {d.name.lower() for d in _subdirs(directory)}
    if "train" in names and names & {"val", "validation", "test"}:
        layout, root = "presplit", directory
        split_files = _presplit(directory, skip_corrupt)
        classes = split_files["train"]
    else:
        root = _find_root(directory)
        scanned, nested = _scan_classes(root)
        layout = "kaggle" if nested else "class_folders"
        classes = {k: _check_readable(v, skip_corrupt) for k, v in scanned.items()}
    for name, paths in classes.items():
        if not paths:
            raise ValueError(f"Class '{name}' in '{root}' has no readable training images.")
    class_names = sorted(classes)
    if len(class_names) < 2:
        raise ValueError(
            f"Classification needs at least 2 classes, found {len(class_names)}: "
            f"{', '.join(repr(c) for c in class_names)} in '{root}'."
        )
    if layout != "presplit":
        split_files = _stratified(classes, validation_split, test_split, seed)
    files = {s: [(str(p), i) for i, c in enumerate(class_names) for p in split_files[s].get(c, [])]
             for s in SPLITS}
    counts = pd.DataFrame(
        {s: [len(split_files[s].get(c, [])) for c in class_names] for s in SPLITS},
        index=pd.Index(class_names, name="class"),
    )
    counts["total"] = counts.sum(axis=1)
    datasets = {s: _dataset(files[s], size, batch_size,
                            seed if s == "train" and shuffle else None, cache) for s in SPLITS}
    return FishData(**datasets, class_names=class_names, counts=counts, layout=layout,
                    files=files, directory=root, image_size=size)
