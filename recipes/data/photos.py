"""Folders of photos: find the class folders, decode and resize each photo once, cache it.

A photo is decoded with Pillow (JPEG, PNG, BMP, GIF, WebP, TIFF; grayscale, palette and
RGBA photos become RGB), reduced with JPEG draft mode when it is much larger than the
target, resized to a square, and kept as uint8. `load_photos` keeps the decoded array in a
disk cache keyed by the list of files (path, size in bytes, modification time) and the
image size, so the second run of an experiment reads one ``.npy`` file instead of
decoding thousands of JPEGs. The SHA-1 of every file's bytes is kept with it, so the same
photo in two splits can be reported.

Example:

```python
classes, layout, root = find_class_folders("../shared/data/fish-train")
paths = [p for files in classes.values() for p in files]
photos = load_photos(paths, 96)      # photos.images: (6225, 96, 96, 3) uint8
print(photos.summary())              # decoded 6,225 photos at 2,600/s, or "from the cache"
```

Reference: Géron, Hands-On ML (3rd ed.), chapter 13 (preprocess once, cache, prefetch).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from recipes.checks import InputError

__all__ = ["CACHE_VERSION", "IMAGE_EXTENSIONS", "ClassFolders", "Photos", "decode_photo",
           "find_class_folders", "load_photos", "photo_cache_dir"]

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
CACHE_VERSION = 1  # bump when decoding changes, so old caches are not reused
_SKIP_DIRS = {"__MACOSX"}


def photo_cache_dir() -> Path:
    """Where decoded photos are cached.

    Returns:
        ``$RECIPES_PHOTO_CACHE`` if set, else ``$RECIPES_DATA_DIR/photos``, by default
        ``~/.cache/ch11-recipes/photos``.
    """
    if os.environ.get("RECIPES_PHOTO_CACHE"):
        return Path(os.environ["RECIPES_PHOTO_CACHE"]).expanduser()
    root = os.environ.get("RECIPES_DATA_DIR") or Path.home() / ".cache" / "ch11-recipes"
    return Path(root).expanduser() / "photos"


def _is_image(p: Path) -> bool:
    return not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()


def _subdirs(folder: Path) -> list[Path]:
    out = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.name in _SKIP_DIRS:
            continue
        try:
            if p.is_symlink():
                p.resolve(strict=True)
            if p.is_dir():
                out.append(p)
        except (OSError, RuntimeError) as e:
            raise InputError(f"'{p}' is a broken or looping symbolic link ({e.__class__.__name__}"
                             "): remove it or point it at a real folder.") from None
    return out


class ClassFolders(NamedTuple):
    """What `find_class_folders` found."""

    classes: dict[str, list[Path]]
    """class name -> its sorted photo paths."""
    layout: str
    """``"kaggle"`` or ``"class_folders"``."""
    root: Path
    """the folder whose subfolders are the classes."""


def find_class_folders(folder: str | os.PathLike) -> ClassFolders:
    """The class folders of a folder of photos, and its layout.

    Layouts: Kaggle's "A Large Scale Fish Dataset"
    (``[Fish_Dataset/[Fish_Dataset/]]<Class>/<Class>/*.png``; the ``<Class> GT`` mask folders
    are never read) or one folder of photos per class (``<class>/*.jpg``). Photos are the
    files directly in a class folder whose suffix is in `IMAGE_EXTENSIONS` (any case); other
    files are ignored.

    Args:
        folder: the folder.

    Returns:
        ``(classes, layout, root)``: class name -> sorted photo paths, ``"kaggle"`` or
        ``"class_folders"``, and the folder holding the class folders.

    Raises:
        InputError: the folder is missing, holds no class folder, or a class folder holds no
            photo (the message names the folder and the fix).
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(f"Photo folder '{root}' does not exist (or is not a folder): give the "
                         "path of a folder with one subfolder of photos per class.")
    for _ in range(3):  # <root>/Fish_Dataset/Fish_Dataset/... as Kaggle's archive unpacks
        inner = [d for d in _subdirs(root) if d.name.lower() == "fish_dataset"]
        if not inner:
            break
        root = inner[0]
    dirs = _subdirs(root)
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
            raise InputError(f"Class folder '{source}' has no images "
                             f"({', '.join(IMAGE_EXTENSIONS)}): add photos or remove it.")
        classes[d.name] = files
    if not classes:
        loose = any(_is_image(p) for p in root.iterdir())
        hint = ("it holds photos but no class folders: put each class in its own subfolder"
                if loose else "expected one subfolder of photos per class")
        raise InputError(f"No images found in '{root}': {hint}.")
    return ClassFolders(classes, "kaggle" if nested_found else "class_folders", root)


def decode_photo(data: bytes | str | os.PathLike, size: int | tuple[int, int]) -> np.ndarray:
    """One photo as a ``(height, width, 3)`` uint8 array.

    Args:
        data: the file's bytes, or its path.
        size: the square side, or ``(height, width)``.

    Returns:
        The RGB pixels (grayscale, palette and RGBA photos are converted; an alpha channel
        is dropped).

    Raises:
        OSError, ValueError or PIL's ``UnidentifiedImageError``: not a decodable photo
        (truncated, corrupt, or not an image); ``ValueError`` too for an image of more
        than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (refused: a possible decompression bomb).
    """
    h, w = (size, size) if isinstance(size, int) else size
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(source) as im:
                im.draft("RGB", (w, h))  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
                im = im.convert("RGB")
                if im.size != (w, h):
                    im = im.resize((w, h), Image.BILINEAR)
                return np.asarray(im, dtype=np.uint8)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
            raise ValueError(f"refused as a possible decompression bomb ({e})") from None


@dataclass
class Photos:
    """Decoded photos and what it took to get them.

    Attributes:
        images: ``(n_good, height, width, 3)`` uint8, in the order of ``paths`` minus bad ones.
        paths: the good photos' paths, one per image.
        digests: SHA-1 of each good photo's file bytes (hex), to find duplicates.
        bad: ``(path, reason)`` of every file that could not be decoded (skipped).
        from_cache: the images came from the disk cache.
        seconds: time to get them (decoding, or reading the cache).
        cache_file: the cache file, or ``None`` without a cache.
    """

    images: np.ndarray
    paths: list[Path]
    digests: list[str]
    bad: list[tuple[Path, str]] = field(default_factory=list)
    from_cache: bool = False
    seconds: float = 0.0
    cache_file: Path | None = None

    @property
    def photos_per_s(self) -> float:
        """Photos delivered per second (decoded, or read back from the cache)."""
        return len(self.paths) / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        """One line: how many photos, how fast, from where, and how many were skipped."""
        how = "read from the cache" if self.from_cache else "decoded and resized"
        line = (f"{len(self.paths):,} photos {how} in {self.seconds:.2f} s "
                f"({self.photos_per_s:,.0f} photos/s)")
        if self.bad:
            line += f"; {len(self.bad)} unreadable file(s) skipped"
        return line


def _decode_file(path: Path, size: tuple[int, int]) -> tuple[np.ndarray | None, str, str]:
    try:
        data = path.read_bytes()
    except OSError as e:
        return None, "", f"cannot be read ({e.strerror or e})"
    digest = hashlib.sha1(data).hexdigest()
    try:
        image = decode_photo(data, size)
    except (OSError, ValueError, UnidentifiedImageError) as e:
        return None, digest, f"{type(e).__name__}: {e}"
    return image, digest, ""


def _cache_key(paths: Sequence[Path], size: tuple[int, int]) -> str:
    listing = []
    for p in paths:
        st = p.stat()
        listing.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
    text = json.dumps({"version": CACHE_VERSION, "size": size, "files": listing})
    return hashlib.sha256(text.encode()).hexdigest()


def _read_cache(file: Path, n: int) -> tuple[np.ndarray, np.ndarray, list[str], list[str]] | None:
    try:
        with np.load(file, allow_pickle=False) as z:
            images, ok = z["images"], z["ok"]
            digests, reasons = z["digests"].tolist(), z["reasons"].tolist()
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None  # missing, truncated or foreign: decode again
    if len(ok) != n or len(images) != int(ok.sum()):
        return None
    return images, ok, digests, reasons


def _write_cache(file: Path, images: np.ndarray, ok: np.ndarray, digests: list[str],
                 reasons: list[str]) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=file.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, images=images, ok=ok, digests=np.array(digests, dtype="U40"),
                     reasons=np.array(reasons, dtype=str))
        os.replace(tmp, file)  # atomic: a crash never leaves half a cache
    except OSError as e:
        warnings.warn(f"Could not write the photo cache '{file}' ({e}); the photos will be "
                      "decoded again next time.", stacklevel=3)


def load_photos(
    paths: Sequence[str | os.PathLike],
    size: int | tuple[int, int],
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    log: Callable[[str], None] | None = None,
) -> Photos:
    """Decode and resize photos once, in parallel, through a disk cache.

    Unreadable files (truncated or corrupt JPEGs, files that are not photos) are skipped
    and listed in ``Photos.bad``; a ``UserWarning`` counts them and names the first few.

    Args:
        paths: the photo files.
        size: the square side, or ``(height, width)``.
        cache: read and write the disk cache. Defaults to `True`.
        cache_dir: the cache folder. Defaults to `photo_cache_dir()`.
        workers: decoding threads (Pillow decodes without holding the GIL). Defaults to the
            number of CPUs.
        log: called with one progress line (e.g. ``print``). Defaults to `None`.

    Returns:
        The `Photos`.
    """
    size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    paths = [Path(p) for p in paths]
    started = time.perf_counter()
    file = None
    if cache:
        key = _cache_key(paths, size)
        file = Path(cache_dir or photo_cache_dir()) / f"photos_{size[0]}x{size[1]}_{key[:20]}.npz"
        hit = _read_cache(file, len(paths))
        if hit is not None:
            images, ok, digests, reasons = hit
            photos = Photos(images, [p for p, g in zip(paths, ok) if g],
                            [d for d, g in zip(digests, ok) if g],
                            [(p, r) for p, g, r in zip(paths, ok, reasons) if not g],
                            True, time.perf_counter() - started, file)
            _warn_bad(photos.bad)
            return photos
    if log:
        log(f"Decoding {len(paths):,} photos to {size[0]}x{size[1]} (once; then cached)...")
    with ThreadPoolExecutor(max(1, workers or os.cpu_count() or 1)) as pool:
        results = list(pool.map(lambda p: _decode_file(p, size), paths))
    ok = np.array([image is not None for image, _, _ in results], dtype=bool)
    good = [image for image, _, _ in results if image is not None]
    images = (np.stack(good) if good else np.zeros((0, *size, 3), np.uint8))
    digests = [d for _, d, _ in results]
    reasons = [r for _, _, r in results]
    if file is not None:
        _write_cache(file, images, ok, digests, reasons)
    photos = Photos(images, [p for p, g in zip(paths, ok) if g],
                    [d for d, g in zip(digests, ok) if g],
                    [(p, r) for p, g, r in zip(paths, ok, reasons) if not g],
                    False, time.perf_counter() - started, file)
    _warn_bad(photos.bad)
    return photos


def _warn_bad(bad: list[tuple[Path, str]]) -> None:
    if bad:
        first = "; ".join(f"'{p}' ({r})" for p, r in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        warnings.warn(f"Skipped {len(bad)} unreadable photo file(s): {first}{more}. Remove or "
                      "replace them.", stacklevel=3)
