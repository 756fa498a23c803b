"""Fish photographs: folders of photos in, stratified uint8 splits (or ``tf.data`` sets) out.

Two entry points share one decoding and caching path (`recipes.data.photos`):

- `load_fish_splits(train_dir, val_dir, test_dir, ...)`: the splits as uint8 arrays, for
  training through the static pipeline (`recipes.data.pipeline.make_dataset`). Folders given
  separately, or one folder with ``train/``, ``val/`` (or ``validation/``) and ``test/``;
  a missing validation or test folder is a stratified, seeded part of another split. Class
  names must agree across folders; a photo found in two splits (same bytes) is reported.
- `load_fish(directory, ...)`: the original API, ``tf.data`` datasets of float32 images in
  [0, 255] from one folder (Kaggle's "A Large Scale Fish Dataset" layout, one folder per
  class, or ``train/ val/ test/``).

Example:

```python
data = load_fish_splits("../shared/data/fish-train", "../shared/data/fish-val",
                        image_size=96, test_from="train", test_split=0.15)
print(data.summary())
train = make_dataset(data.x["train"], data.y["train"], 64, seed=0)
```

Reference: Géron, Hands-On ML (3rd ed.), chapter 13 (``tf.data`` pipelines) and chapter 14
(transfer learning on a folder of photos).
"""

from __future__ import annotations

import os
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recipes.checks import InputError
from recipes.data.photos import IMAGE_EXTENSIONS, find_class_folders, load_photos

__all__ = ["IMAGE_EXTENSIONS", "SPLITS", "TEST_SOURCES", "FishData", "FishSplits", "load_fish",
           "load_fish_splits"]

SPLITS = ("train", "validation", "test")
TEST_SOURCES = ("val", "train")
Files = list[tuple[str, int]]


class MissingFolderError(InputError, FileNotFoundError):
    """A photo folder that does not exist (a `ValueError` and a `FileNotFoundError`)."""


def _split_counts(name: str, n: int, val: float, test: float,
                  where: str = "") -> tuple[int, int]:
    need = 1 + (val > 0) + (test > 0)
    if n < need:
        asked = " and ".join(f"{k}={v:g}" for k, v in (("validation_split", val),
                                                       ("test_split", test)) if v > 0)
        raise InputError(
            f"Class '{name}' has only {n} image(s){where}, too few for {asked} (needs at least "
            f"{need}: one per split). Use a smaller split (e.g. test_split=0), merge the class "
            "with another, or add images."
        )
    n_val = max(int(np.floor(n * val + 0.5)), int(val > 0))
    n_test = max(int(np.floor(n * test + 0.5)), int(test > 0))
    while n_val + n_test > n - 1:  # keep at least one training image
        if n_val >= n_test and n_val > 1 or n_test <= 1:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def _permuted(name: str, paths: list[Path], seed: int) -> list[Path]:
    """The sorted files of one class in a seeded order (seed and class name)."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    return [paths[i] for i in rng.permutation(len(paths))]


def _stratified(classes: dict[str, list[Path]], val: float, test: float,
                seed: int, where: str = "") -> dict[str, dict[str, list[Path]]]:
    """Per class: shuffle (seeded), then cut ``validation | test | train``."""
    out: dict[str, dict[str, list[Path]]] = {s: {} for s in SPLITS}
    for name, paths in classes.items():
        n_val, n_test = _split_counts(name, len(paths), val, test, where)
        order = _permuted(name, paths, seed)
        out["validation"][name] = order[:n_val]
        out["test"][name] = order[n_val:n_val + n_test]
        out["train"][name] = order[n_val + n_test:]
    return out


def _presplit_folders(directory: Path) -> dict[str, Path] | None:
    """``{"train": ..., "validation": ..., "test": ...}`` when `directory` is pre-split."""
    dirs = {d.name.lower(): d for d in directory.iterdir() if d.is_dir()}
    if "train" not in dirs or not dirs.keys() & {"val", "validation", "test"}:
        return None
    if "val" in dirs and "validation" in dirs:
        raise InputError(f"'{directory}' has both val/ and validation/: keep only one.")
    found = {"train": dirs["train"], "validation": dirs.get("val", dirs.get("validation")),
             "test": dirs.get("test")}
    return {k: v for k, v in found.items() if v is not None}


def _check_names(reference: list[str], other: list[str], where: Path, train: Path) -> None:
    missing, extra = sorted(set(reference) - set(other)), sorted(set(other) - set(reference))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing class folder(s) {missing}")
        if extra:
            parts.append(f"extra class folder(s) {extra} that the training folder lacks")
        raise InputError(f"'{where}' has {' and '.join(parts)}; its class folders must be "
                         f"exactly those of '{train}' ({len(reference)} classes).")


@dataclass
class FishSplits:
    """Fish photos as uint8 arrays, split three ways, with where each split came from.

    Attributes:
        x: split -> ``(n, H, W, 3)`` uint8 images (splits ``train``, ``validation``,
            ``test``; a split may be empty).
        y: split -> int64 labels, indices into `class_names`.
        class_names: sorted class names.
        counts: photos per class (rows) and split (columns, plus ``total``).
        files: split -> photo paths, one per image.
        sources: split -> where it came from, in words (a folder, or a held-out part).
        duplicates: ``(split_a, path_a, split_b, path_b)`` for every photo whose bytes
            appear in two splits.
        bad: ``(path, reason)`` of every unreadable file skipped.
        image_size: the side of the square photos.
        load_seconds: time to get every split (decoding or reading the cache).
        decoded_per_s: photos decoded per second (``nan`` when all came from the cache).
        from_cache: every split came from the disk cache.
    """

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    class_names: list[str]
    counts: pd.DataFrame
    files: dict[str, list[Path]]
    sources: dict[str, str]
    duplicates: list[tuple[str, str, str, str]] = field(default_factory=list)
    bad: list[tuple[Path, str]] = field(default_factory=list)
    image_size: int = 96
    load_seconds: float = 0.0
    decoded_per_s: float = float("nan")
    from_cache: bool = False

    def summary(self) -> str:
        """A readable table of photos per class and split, the sources and the timing."""
        table = self.counts.copy()
        table.loc["TOTAL"] = table.sum()
        how = ("read from the photo cache" if self.from_cache else
               f"decoded at {self.decoded_per_s:,.0f} photos/s")
        lines = [f"{len(self.class_names)} classes, {int(table.loc['TOTAL', 'total']):,} photos "
                 f"at {self.image_size}x{self.image_size}, {how}, in {self.load_seconds:.1f} s"]
        lines += [f"  {split}: {self.sources[split]}" for split in SPLITS]
        if self.bad:
            lines.append(f"  {len(self.bad)} unreadable file(s) skipped")
        if self.duplicates:
            lines.append(f"  {len(self.duplicates)} photo(s) appear in two splits (same bytes)")
        return "\n".join(lines) + "\n" + table.to_string()


def _gather(split_files: dict[str, dict[str, list[Path]]], folders: dict[str, list[Path]],
            class_names: list[str], size: int, cache: bool, cache_dir, log):
    """Decode each source folder once (or read its cache), then cut the splits from it.

    Returns:
        ``(x, y, files, digests, photos)``: per split the images, labels and paths of the
        readable photos; path -> SHA-1; and the `Photos` of every source folder.
    """
    rows: dict[Path, tuple[int, int]] = {}  # path -> (source index, row)
    loaded = []
    for k, paths in enumerate(folders.values()):
        photos = load_photos(paths, size, cache=cache, cache_dir=cache_dir, log=log)
        rows.update({p: (k, i) for i, p in enumerate(photos.paths)})
        loaded.append(photos)
    digests = {p: d for photos in loaded for p, d in zip(photos.paths, photos.digests)}
    x, y, files = {}, {}, {}
    for split in SPLITS:
        pairs = [(p, i) for i, c in enumerate(class_names) for p in split_files[split].get(c, [])
                 if p in rows]
        files[split] = [p for p, _ in pairs]
        y[split] = np.array([i for _, i in pairs], dtype=np.int64)
        x[split] = (np.stack([loaded[rows[p][0]].images[rows[p][1]] for p in files[split]])
                    if pairs else np.zeros((0, size, size, 3), np.uint8))
    return x, y, files, digests, loaded


def _duplicates(files: dict[str, list[Path]], digests: dict[Path, str]) -> list:
    seen: dict[str, tuple[str, Path]] = {}
    out = []
    for split in SPLITS:
        for p in files[split]:
            d = digests.get(p)
            if d is None:
                continue
            if d in seen and seen[d][0] != split:
                out.append((seen[d][0], str(seen[d][1]), split, str(p)))
            seen.setdefault(d, (split, p))
    return out


def load_fish_splits(
    train_dir: str | os.PathLike,
    val_dir: str | os.PathLike | None = None,
    test_dir: str | os.PathLike | None = None,
    *,
    image_size: int = 96,
    validation_split: float = 0.2,
    test_from: str = "val",
    test_split: float = 0.5,
    seed: int = 42,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    min_per_class: int = 1,
    log: Callable[[str], None] | None = None,
) -> FishSplits:
    """Fish photos from their folders as uint8 splits, decoded once through a disk cache.

    Folders: `train_dir` alone may hold ``train/``, ``val/`` (or ``validation/``) and
    ``test/``. Otherwise it is the training folder (one subfolder per class, or Kaggle's
    layout), `val_dir` the validation folder (without it, `validation_split` of each training
    class is held out, seeded) and `test_dir` the test folder (without it, `test_split` of each
    class of the validation folder, or of the training folder with ``test_from="train"``, is
    held out as the test set, seeded and stratified). Every folder must have the same class
    folders.

    Args:
        train_dir: the training folder (or a folder with train/ val/ test/).
        val_dir: the validation folder. Defaults to `None`.
        test_dir: the test folder. Defaults to `None`.
        image_size: the side photos are resized to. Defaults to `96`.
        validation_split: fraction of each training class held out for validation when
            there is no validation folder. Defaults to `0.2`.
        test_from: ``"val"`` or ``"train"``: which split gives up `test_split` of each class
            as the test set when there is no test folder. Defaults to `"val"`.
        test_split: that fraction; ``0`` leaves the test set empty. Defaults to `0.5`.
        seed: seeds the held-out parts. Defaults to `42`.
        cache: use the disk cache of decoded photos. Defaults to `True`.
        cache_dir: its folder. Defaults to `recipes.data.photos.photo_cache_dir()`.
        min_per_class: photos every class needs in the training and validation splits.
            Defaults to `1`.
        log: called with progress lines (e.g. ``print``). Defaults to `None`.

    Returns:
        The `FishSplits`.

    Raises:
        InputError: a missing folder, no photos, an empty class folder, class folders that
            differ between folders, a class too small for a split, or bad fractions (the
            message names the folder or class and the fix).
    """
    from recipes.checks import check_at_least, check_choice, check_fraction

    check_at_least("image_size", image_size, 1)
    check_fraction("validation_split", validation_split)
    check_fraction("test_split", test_split)
    check_choice("test_from", test_from, TEST_SOURCES)
    check_at_least("seed", seed, 0)
    started = time.perf_counter()
    folders = {"train": Path(train_dir).expanduser()}
    for split, given in (("validation", val_dir), ("test", test_dir)):
        if given is not None:
            folders[split] = Path(given).expanduser()
    for split, folder in folders.items():
        if not folder.is_dir():
            raise MissingFolderError(f"The {split} folder '{folder}' does not exist (or is not a "
                                     "folder): give a folder with one subfolder per class.")
    if val_dir is None and test_dir is None:
        presplit = _presplit_folders(folders["train"])
        if presplit:
            folders = presplit
    scanned = {split: find_class_folders(folder).classes for split, folder in folders.items()}
    class_names = sorted(scanned["train"])
    if len(class_names) < 2:
        raise InputError(f"Classification needs at least 2 classes, found {len(class_names)}: "
                         f"{', '.join(map(repr, class_names))} in '{folders['train']}'.")
    for split in ("validation", "test"):
        if split in scanned:
            _check_names(class_names, sorted(scanned[split]), folders[split], folders["train"])
    split_files: dict[str, dict[str, list[Path]]] = {s: {} for s in SPLITS}
    sources = {"train": f"folder '{folders['train']}'"}
    split_files["train"] = dict(scanned["train"])
    if "validation" in scanned:
        split_files["validation"] = dict(scanned["validation"])
        sources["validation"] = f"folder '{folders['validation']}'"
    else:
        cut = _stratified(split_files["train"], validation_split, 0.0, seed,
                          " in the training folder")
        split_files["train"], split_files["validation"] = cut["train"], cut["validation"]
        sources["validation"] = (f"{validation_split:.0%} of each class of the training folder, "
                                 f"held out (seed {seed})")
    if "test" in scanned:
        split_files["test"] = dict(scanned["test"])
        sources["test"] = f"folder '{folders['test']}'"
    elif test_split > 0:
        source = "train" if test_from == "train" else "validation"
        cut = _stratified(split_files[source], 0.0, test_split, seed + 1,
                          f" in the {'training' if source == 'train' else 'validation'} split")
        split_files[source], split_files["test"] = cut["train"], cut["test"]
        sources["test"] = (f"{test_split:.0%} of each class of the "
                           f"{'training' if source == 'train' else 'validation'} split, held "
                           f"out (seed {seed + 1}): not a separate test folder")
        sources[source] += f", minus the {test_split:.0%} held out for testing"
    else:
        sources["test"] = "none (test_split=0)"
    for split in ("train", "validation"):
        for c in class_names:
            n = len(split_files[split].get(c, []))
            if n < min_per_class:
                raise InputError(f"Class '{c}' has {n} photo(s) in the {split} split, fewer "
                                 f"than the {min_per_class} it needs: add photos or choose "
                                 "smaller held-out fractions.")
    sources_files = {split: [p for c in class_names for p in scanned[split][c]]
                     for split in scanned}
    x, y, files, digests, loaded = _gather(split_files, sources_files, class_names, image_size,
                                           cache, cache_dir, log)
    bad = [b for photos in loaded for b in photos.bad]
    decoded = [t for t in loaded if not t.from_cache and t.paths]
    counts = pd.DataFrame({s: np.bincount(y[s], minlength=len(class_names)) for s in SPLITS},
                          index=pd.Index(class_names, name="class"))
    counts["total"] = counts.sum(axis=1)
    for split in ("train", "validation"):
        empty = counts.index[counts[split] == 0].tolist()
        if empty and min_per_class > 0:
            raise InputError(f"Class(es) {empty} have no readable photo in the {split} split.")
    n_decoded = sum(len(t.paths) + len(t.bad) for t in decoded)
    return FishSplits(
        x=x, y=y, class_names=class_names, counts=counts, files=files, sources=sources,
        duplicates=_duplicates(files, digests), bad=bad, image_size=int(image_size),
        load_seconds=time.perf_counter() - started,
        decoded_per_s=(n_decoded / sum(t.seconds for t in decoded)) if decoded else float("nan"),
        from_cache=not decoded,
    )


# --- the original tf.data API -------------------------------------------------------------


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

    train: object
    validation: object
    test: object
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


def _decode_split(paths: list[Path], labels: list[int], size: tuple[int, int], skip_corrupt: bool,
                  cache: bool) -> tuple[np.ndarray, list[tuple[str, int]]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        photos = load_photos(paths, size, cache=cache)
    if photos.bad and not skip_corrupt:
        path, reason = photos.bad[0]
        raise InputError(f"Unreadable image '{path}': {reason}. Remove the file or pass "
                         "skip_corrupt=True.")
    for w in caught:
        warnings.warn(str(w.message).replace("Remove or replace them.",
                                             "Skipped (skip_corrupt=True)."), w.category,
                      stacklevel=3)
    good = set(photos.paths)
    kept = [(str(p), label) for p, label in zip(paths, labels) if p in good]
    return photos.images, kept


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
    class folder ending in one of `IMAGE_EXTENSIONS` (any case). Otherwise each class is
    shuffled (seeded) and cut: ``round(n * validation_split)`` validation and
    ``round(n * test_split)`` test images (at least 1 when the fraction is > 0), the rest
    for training. Photos are decoded once as RGB, resized (`recipes.data.photos`) and fed
    from memory through a static pipeline (no autotuning, no epoch-start stalls).

    Args:
        directory: the folder.
        image_size: ``(height, width)`` (or one int) to resize to. Defaults to `(128, 128)`.
        validation_split: fraction of each class for validation. Defaults to `0.2`.
        test_split: fraction of each class for testing. Defaults to `0.1`.
        seed: seeds the split and the training shuffle. Defaults to `42`.
        batch_size: images per batch. Defaults to `32`.
        skip_corrupt: warn and skip unreadable files instead of raising. Defaults to `False`.
        shuffle: shuffle the training set each epoch. Defaults to `True`.
        cache: keep the decoded photos in the disk cache. Defaults to `True`.

    Returns:
        A `FishData`.

    Raises:
        FileNotFoundError: ``directory`` does not exist or is not a folder.
        ValueError: bad fractions or sizes; no images, an empty class folder, fewer than 2
            classes, a class too small for the split, a class missing from ``train/``, or an
            unreadable image (the message names the folder, class or file).
    """
    import tensorflow as tf

    from recipes.data.pipeline import make_dataset

    size = _check_args(image_size, validation_split, test_split, seed, batch_size)
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise MissingFolderError(f"Fish photo folder '{directory}' does not exist.")
    presplit = _presplit_folders(directory)
    if presplit:
        layout, root = "presplit", directory
        split_files = {s: find_class_folders(presplit[s]).classes if s in presplit else {}
                       for s in SPLITS}
        for split in ("validation", "test"):
            missing = sorted(set(split_files[split]) - set(split_files["train"]))
            if missing:
                raise InputError(f"Class(es) {missing} of {presplit[split]} are missing from "
                                 f"{presplit['train']}: every class needs training images.")
        classes = split_files["train"]
    else:
        classes, layout, root = find_class_folders(directory)
    class_names = sorted(classes)
    if len(class_names) < 2:
        raise InputError(
            f"Classification needs at least 2 classes, found {len(class_names)}: "
            f"{', '.join(repr(c) for c in class_names)} in '{root}'."
        )
    if layout != "presplit":
        split_files = _stratified(classes, validation_split, test_split, seed)
    files, datasets, counts = {}, {}, {}
    for split in SPLITS:
        paths = [p for c in class_names for p in split_files[split].get(c, [])]
        labels = [i for i, c in enumerate(class_names) for _ in split_files[split].get(c, [])]
        images, files[split] = _decode_split(paths, labels, size, skip_corrupt, cache)
        y = np.array([label for _, label in files[split]], dtype=np.int32)
        counts[split] = np.bincount(y, minlength=len(class_names))
        if len(y):
            ds = make_dataset(images, y, batch_size, shuffle=shuffle and split == "train",
                              seed=seed)
        else:
            ds = tf.data.Dataset.from_tensor_slices(
                (np.zeros((0, *size, 3), np.uint8), y)).batch(batch_size)
        datasets[split] = ds.map(lambda x, y: (tf.cast(x, tf.float32), y))
    for name in class_names:
        if counts["train"][class_names.index(name)] == 0:
            raise InputError(f"Class '{name}' in '{root}' has no readable training images.")
    table = pd.DataFrame(counts, index=pd.Index(class_names, name="class"))
    table["total"] = table.sum(axis=1)
    return FishData(**datasets, class_names=class_names, counts=table, layout=layout,
                    files=files, directory=root, image_size=size)
