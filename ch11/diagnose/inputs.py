"""The training doctor's inputs: the saved model, the data samples and the history CSV."""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from ch11.diagnose.config import Config
from recipes.data import load_fish, load_mnist
from recipes.diagnosis.probing import check_input_shape, leaf_layers

__all__ = ["load_data", "load_history", "load_keras_model"]

_HISTORY_HINT = ("Give the CSV of a Keras History (pd.DataFrame(history.history).to_csv(path)) "
                 "or of keras.callbacks.CSVLogger.")


def load_keras_model(path: str | Path) -> keras.Model:
    """Load a saved Keras model, or raise a ValueError that says why it is not one.

    Args:
        path: a ``.keras`` (or legacy ``.h5``) file.

    Returns:
        The model (compiled when it was saved compiled).

    Raises:
        ValueError: the file is missing or is not a loadable Keras model.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Saving and Restoring a Model".
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Model file '{path}' does not exist.")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ValueError(f"'{path}' is not a Keras model file: a .keras file is a zip archive "
                         "and this one is not. Give a file written by model.save('name.keras').")
    try:
        model = keras.models.load_model(path)
    except Exception as e:  # noqa: BLE001 - any failure means "not a model we can read"
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"'{path}' is not a Keras model file ({type(e).__name__}: {reason[:200]}). "
            "Give a file written by model.save('name.keras').") from None
    if not isinstance(model, keras.Model):
        raise ValueError(f"'{path}' holds a {type(model).__name__}, not a Keras model.")
    return model


def _raw_pixels(model: keras.Model) -> bool:
    for _, layer in leaf_layers(model):
        if isinstance(layer, keras.layers.Rescaling):
            return True
        if layer.weights:
            return False
    return False


def _fit_mnist(model: keras.Model, x: np.ndarray) -> np.ndarray:
    shape = tuple(model.inputs[0].shape[1:])
    if shape == (28, 28, 1):
        return x[..., None]
    if shape == (784,):
        return x.reshape(len(x), 784)
    return x


def _input_shape(model: keras.Model) -> tuple:
    inputs = model.inputs
    if len(inputs) != 1:
        raise ValueError(f"Model '{model.name}' has {len(inputs)} inputs; the diagnosis takes "
                         "single-input classifiers.")
    return tuple(inputs[0].shape[1:])


def load_data(config: Config, model: keras.Model) -> dict:
    """The training and validation samples, scaled by the pixel rule, with class info.

    Args:
        config: the run's `Config`.
        model: the loaded model (its input size and first layers decide the data's form).

    Returns:
        A dict with x, y, x_val, y_val, class_names, class_counts, scale ("0-1" or "raw").

    Raises:
        ValueError: the data do not fit the model (image size, channels, classes).
        FileNotFoundError: the fish folder does not exist.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10 (MNIST scaled to [0, 1]), ch. 14 (a
    Rescaling layer inside the model).
    """
    n = min(config.samples, 200) if config.quick else config.samples
    rng = np.random.default_rng(config.seed)
    raw = _raw_pixels(model)
    shape = _input_shape(model)
    if config.data == "mnist":
        if shape not in ((28, 28), (28, 28, 1), (784,)):
            raise ValueError(f"--data mnist gives 28x28 grey images, but model '{model.name}' "
                             f"takes inputs of shape {(None, *shape)}.")
        (x_tr, y_tr), (x_te, y_te) = load_mnist()
        i, j = rng.choice(len(x_tr), n, replace=False), rng.choice(len(x_te), n, replace=False)
        x, y, x_val, y_val = x_tr[i], y_tr[i], x_te[j], y_te[j]
        names, counts = [str(c) for c in range(10)], np.bincount(y_tr, minlength=10)
        x, x_val = _fit_mnist(model, x), _fit_mnist(model, x_val)
    else:
        if len(shape) != 3 or shape[-1] != 3 or None in shape:
            raise ValueError(f"--data fish gives (H, W, 3) colour photos, but model "
                             f"'{model.name}' takes inputs of shape {(None, *shape)}.")
        fish = load_fish(config.data_dir, image_size=shape[:2], seed=config.seed, shuffle=False)
        x, y = _sample(fish.train, n, rng)
        x_val, y_val = _sample(fish.validation.concatenate(fish.test), n, rng)
        names, counts = fish.class_names, fish.counts["train"].to_numpy()
    x = x.astype("float32") / (1.0 if raw else 255.0)
    x_val = x_val.astype("float32") / (1.0 if raw else 255.0)
    units = model.outputs[0].shape[-1]
    if units != len(names) and not (units == 1 and len(names) == 2):
        raise ValueError(f"Model '{model.name}' has {units} output units, but the {config.data} "
                         f"data have {len(names)} classes.")
    check_input_shape(model, x)
    return {"x": x, "y": y.astype("int64"), "x_val": x_val, "y_val": y_val.astype("int64"),
            "class_names": names, "class_counts": counts, "scale": "raw" if raw else "0-1"}


def _sample(dataset, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*[(bx.numpy(), by.numpy()) for bx, by in dataset])
    x, y = np.concatenate(xs), np.concatenate(ys)
    keep = rng.choice(len(x), min(n, len(x)), replace=False)  # shuffled: files sort by class
    return x[keep], y[keep]


def load_history(path: str | Path) -> pd.DataFrame:
    """Read a training-history CSV, or raise a ValueError that says why it is not one.

    A history has one row per epoch and numeric columns, ``loss`` among them (Keras's
    ``History.history`` written by pandas, or ``keras.callbacks.CSVLogger``'s file); any
    other file would be ignored by the overfitting check without a word, so it is refused.

    Args:
        path: the CSV file.

    Returns:
        The history, one row per epoch.

    Raises:
        ValueError: the file is missing, is not a CSV, has no ``loss`` column, no epoch,
            or a column that is not numeric.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Using Callbacks" (``CSVLogger``).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"History file '{path}' does not exist.")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"'{path}' is not a history CSV ({reason[:200]}). "
                         f"{_HISTORY_HINT}") from None
    if "loss" not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:8])) or "none"
        raise ValueError(f"'{path}' is not a history CSV: it has no 'loss' column (columns: "
                         f"{columns}). {_HISTORY_HINT}")
    if frame.empty:
        raise ValueError(f"History file '{path}' holds no epoch (a header and no rows).")
    text = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if text:
        raise ValueError(f"'{path}' is not a history CSV: column(s) {', '.join(text)} hold "
                         f"text, not numbers. {_HISTORY_HINT}")
    return frame
