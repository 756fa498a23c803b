"""Predict fish species with a model saved by ``python -m ch11.fish``.

The class names travel with the model in a JSON file next to it: ``best.keras`` has
``best.classes.json`` (``{"class_names": [...], "image_size": [H, W], "model": ...}``).
The model takes raw pixels in [0, 255] (its first layers rescale them), so any photo is
decoded exactly as in training (`recipes.data.photos.decode_photo`: RGB, resized to the
model's input size).

Run: ``python -m ch11.fish predict --model runs/fish/<run>/best.keras PHOTO... [FOLDER...]``
(``--mc-samples 30`` adds the MC dropout uncertainty). A folder's photos are all
classified and written to a CSV (``--csv``). Arguments are parsed before TensorFlow is
imported; bad input ends with one ``error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recipes.checks import InputError
from recipes.data.photos import IMAGE_EXTENSIONS

if TYPE_CHECKING:
    import keras

__all__ = ["InputError", "classes_path", "expand_inputs", "load_model_with_classes", "main",
           "mc_model", "predict_images", "read_images", "save_model_with_classes"]


def classes_path(model_path: str | Path) -> Path:
    """The JSON file holding the class names of a saved model: ``<stem>.classes.json``.

    Args:
        model_path: the ``.keras`` file.

    Returns:
        ``best.keras`` -> ``best.classes.json`` in the same folder.
    """
    path = Path(model_path)
    return path.with_name(path.stem + ".classes.json")


def save_model_with_classes(model: keras.Model, path: str | Path, class_names: Sequence[str],
                            **extra: Any) -> Path:
    """Save ``model`` as ``.keras`` and its class names in ``<stem>.classes.json`` beside it.

    Args:
        model: the trained model (taking raw pixels).
        path: the ``.keras`` file to write.
        class_names: one name per output unit, in order.
        **extra: more JSON-ready facts to store (which model, which loss ...).

    Returns:
        The model's path.
    """
    path = Path(path)
    model.save(path)
    info = {"class_names": list(class_names),
            "image_size": list(model.input_shape[1:3]), **extra}
    classes_path(path).write_text(json.dumps(info, indent=2))
    return path


def load_model_with_classes(path: str | Path) -> tuple[keras.Model, list[str]]:
    """Load a ``.keras`` model and the class names saved next to it.

    Args:
        path: the ``.keras`` file.

    Returns:
        ``(model, class_names)``.

    Raises:
        InputError: the model or its ``.classes.json`` is missing or does not match.
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise InputError(f"Model file '{path}' does not exist.")
    info_path = classes_path(path)
    if not info_path.is_file():
        raise InputError(f"'{info_path}' (the class names of '{path.name}') is missing: keep "
                         "it next to the model, as python -m ch11.fish writes it.")
    try:
        names = json.loads(info_path.read_text())["class_names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise TypeError("class_names is not a list of names")
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"'{info_path}' is not a class-name file written by ch11.fish "
                         f"({type(e).__name__}: {e}): it must be JSON with a "
                         "\"class_names\" list.") from None
    try:
        model = keras.models.load_model(path)
    except Exception as e:  # noqa: BLE001 - truncated zips, foreign files, old formats...
        first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise InputError(f"'{path}' cannot be loaded as a Keras model ({type(e).__name__}: "
                         f"{first}): is it a complete .keras file saved by ch11.fish?") from None
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[-1] != 3 or None in shape[1:3]:
        raise InputError(f"The model in '{path}' takes inputs of shape {shape[1:]}, not "
                         "photos (height, width, 3): use a model saved by ch11.fish.")
    if model.output_shape[-1] != len(names):
        raise InputError(f"'{info_path}' lists {len(names)} classes but the model has "
                         f"{model.output_shape[-1]} outputs.")
    return model, list(names)


def expand_inputs(inputs: Sequence[str | Path]) -> tuple[list[Path], bool]:
    """Photos from files and folders (a folder gives its photos, sorted, subfolders too).

    Args:
        inputs: photo files and folders.

    Returns:
        ``(photos, any_folder)``.

    Raises:
        InputError: a path that does not exist, or a folder without photos.
    """
    photos, any_folder = [], False
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*")
                           if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            if not found:
                raise InputError(f"Folder '{item}' holds no photos "
                                 f"({', '.join(IMAGE_EXTENSIONS)}).")
            photos += found
            any_folder = True
        elif item.is_file():
            photos.append(item)
        else:
            raise InputError(f"Image '{item}' does not exist.")
    return photos, any_folder


def read_images(paths: Sequence[str | Path], image_size: Sequence[int]) -> np.ndarray:
    """Decode photos exactly as in training: RGB uint8, resized to ``image_size`` (H, W).

    Any size is resized (aspect ratio not kept, as in training); grayscale, palette and
    RGBA photos become RGB.

    Args:
        paths: the photos.
        image_size: the model's ``(H, W)``.

    Returns:
        A uint8 array ``(N, H, W, 3)``.

    Raises:
        InputError: a file is missing or cannot be decoded (named in the message).
    """
    from PIL import UnidentifiedImageError

    from recipes.data.photos import decode_photo

    out = []
    size = tuple(int(s) for s in image_size)
    for p in paths:
        if not Path(p).is_file():
            raise InputError(f"Image '{p}' does not exist.")
        try:
            out.append(decode_photo(p, size))
        except (OSError, ValueError, UnidentifiedImageError) as e:
            raise InputError(f"Image '{p}' cannot be decoded ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:120] if str(e) else ''}).") from None
    return np.stack(out)


def mc_model(model: keras.Model) -> keras.Model:
    """A copy of ``model`` whose ``Dropout`` layers are `MCDropout` (active at inference).

    Batch norm keeps its moving averages and augmentation stays off, unlike a
    ``training=True`` pass.

    Args:
        model: the trained model.

    Returns:
        A new model with the same weights.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Monte Carlo (MC) Dropout".
    """

    import keras

    from recipes.regularization import MCDropout

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if type(layer) is keras.layers.Dropout:
            return MCDropout.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def predict_images(model: keras.Model, class_names: Sequence[str], images: np.ndarray,
                   top: int = 3, mc_samples: int = 0) -> list[list[dict[str, float]]]:
    """Top-``top`` classes of each image: ``[{"class", "probability"[, "std"]}, ...]``.

    With ``mc_samples > 0`` the probabilities are the mean of that many MC dropout passes
    and ``std`` is their standard deviation.

    Args:
        model: the trained model.
        class_names: its class names.
        images: raw photos ``(N, H, W, 3)`` in [0, 255].
        top: classes per photo. Defaults to `3`.
        mc_samples: MC dropout passes; `0` for one deterministic pass.

    Returns:
        One list of ``top`` dicts per photo, most probable first.
    """
    from recipes.regularization import mc_predict

    if mc_samples > 0:
        probs, std = mc_predict(mc_model(model), images, samples=mc_samples)
    else:
        probs, std = model.predict(images, verbose=0), None
    results = []
    for i, row in enumerate(probs):
        best = np.argsort(-row)[:top]
        results.append([{"class": class_names[c], "probability": float(row[c]),
                         **({"std": float(std[i, c])} if std is not None else {})}
                        for c in best])
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ch11.fish predict --model PATH PHOTO|FOLDER...``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m ch11.fish predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a .keras file saved by ch11.fish")
    parser.add_argument("--mc-samples", type=int, default=0,
                        help="MC dropout passes for the uncertainty (0: one plain pass)")
    parser.add_argument("--top", type=int, default=3, help="classes shown per photo")
    parser.add_argument("--csv", help="write every photo's top classes to this CSV (default "
                                      "with a folder: predictions.csv)")
    parser.add_argument("images", nargs="+", metavar="PHOTO_OR_FOLDER",
                        help="photos, or folders of photos, to classify")
    args = parser.parse_args(argv)
    if args.mc_samples < 0 or args.top < 1:
        parser.error("--mc-samples must be >= 0 and --top >= 1.")
    try:
        photos, any_folder = expand_inputs(args.images)
        from recipes._startup import import_tensorflow_quietly

        import_tensorflow_quietly()
        model, names = load_model_with_classes(args.model)
        images = read_images(photos, model.input_shape[1:3])
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results = predict_images(model, names, images, min(args.top, len(names)), args.mc_samples)
    csv_path = args.csv or ("predictions.csv" if any_folder else None)
    if csv_path:
        with open(csv_path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["photo"] + [f"{k}_{i}" for i in range(1, len(results[0]) + 1)
                                         for k in ("class", "probability")
                                         + (("std",) if args.mc_samples else ())])
            for path, top in zip(photos, results):
                writer.writerow([str(path)] + [v for r in top for v in r.values()])
        print(f"{len(photos)} photo(s) classified; top {len(results[0])} classes per photo "
              f"written to {csv_path}")
    if not any_folder or len(photos) <= 20:
        for path, top in zip(photos, results):
            print(path)
            for r in top:
                extra = f" +/- {r['std']:.3f} (MC dropout std)" if "std" in r else ""
                print(f"  {r['class']:<40s} {r['probability']:.3f}{extra}")
    return 0
