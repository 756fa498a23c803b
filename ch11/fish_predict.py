"""Predict fish species with a model saved by ``python -m ch11.fish``.

The class names travel with the model in a JSON file next to it: ``best.keras`` has
``best.classes.json`` (``{"class_names": [...], "image_size": [H, W], "model": ...}``).
The model takes raw pixels in [0, 255] (its first layers rescale them), so any photo is
decoded as RGB (a grayscale photo is converted) and resized to the model's input size.

Run: ``python -m ch11.fish predict --model runs/fish/<run>/best.keras IMAGE...``
(``--mc-samples 30`` adds the MC dropout uncertainty).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from recipes.regularization import MCDropout, mc_predict

__all__ = ["classes_path", "load_model_with_classes", "main", "mc_model", "predict_images",
           "read_images", "save_model_with_classes"]


class InputError(ValueError):
    """Bad user input: printed by the CLI as one ``error:`` line (exit status 2)."""


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
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Model file '{path}' does not exist.")
    info_path = classes_path(path)
    if not info_path.is_file():
        raise InputError(f"'{info_path}' (the class names of '{path.name}') is missing: keep "
                         "it next to the model, as python -m ch11.fish writes it.")
    names = json.loads(info_path.read_text())["class_names"]
    model = keras.models.load_model(path)
    if model.output_shape[-1] != len(names):
        raise InputError(f"'{info_path}' lists {len(names)} classes but the model has "
                         f"{model.output_shape[-1]} outputs.")
    return model, list(names)


def read_images(paths: Sequence[str | Path], image_size: Sequence[int]) -> np.ndarray:
    """Decode photos as RGB floats in [0, 255], resized to ``image_size`` (H, W).

    Any size is resized (aspect ratio not kept, as in training); grayscale and palette
    photos become 3 equal channels / RGB.

    Args:
        paths: the photos.
        image_size: the model's ``(H, W)``.

    Returns:
        A float32 array ``(N, H, W, 3)``.

    Raises:
        InputError: a file is missing or cannot be decoded (named in the message).
    """
    out = []
    for p in paths:
        if not Path(p).is_file():
            raise InputError(f"Image '{p}' does not exist.")
        try:
            image = tf.io.decode_image(tf.io.read_file(str(p)), channels=3,
                                       expand_animations=False)
        except (tf.errors.InvalidArgumentError, ValueError) as e:
            raise InputError(f"Image '{p}' cannot be decoded (not a JPEG/PNG/GIF/BMP "
                             f"photo?): {str(e).splitlines()[0][:120]}") from None
        out.append(tf.image.resize(image, tuple(int(s) for s in image_size)).numpy())
    return np.stack(out).astype("float32")


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
    """``python -m ch11.fish predict --model PATH IMAGE...``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m ch11.fish predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a .keras file saved by ch11.fish")
    parser.add_argument("--mc-samples", type=int, default=0,
                        help="MC dropout passes for the uncertainty (0: one plain pass)")
    parser.add_argument("--top", type=int, default=3, help="classes shown per photo")
    parser.add_argument("images", nargs="+", help="photos to classify")
    args = parser.parse_args(argv)
    if args.mc_samples < 0 or args.top < 1:
        parser.error("--mc-samples must be >= 0 and --top >= 1.")
    try:
        model, names = load_model_with_classes(args.model)
        images = read_images(args.images, model.input_shape[1:3])
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path, top in zip(args.images, predict_images(model, names, images, args.top,
                                                     args.mc_samples)):
        print(path)
        for r in top:
            extra = f" +/- {r['std']:.3f} (MC dropout std)" if "std" in r else ""
            print(f"  {r['class']:<40s} {r['probability']:.3f}{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
