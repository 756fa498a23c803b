"""Fish species from photos: a CNN from scratch vs transfer learning, on unequal classes.

Hands-On ML, chapter 11 ("Reusing Pretrained Layers", "Transfer Learning with Keras",
"Avoiding Overfitting Through Regularization") on the user's own folder of photos. Trains
a CNN built from `CNNSpec` (BN, He init, dropout, flip/rotation/zoom/contrast
augmentation, inputs rescaled inside the model) and a `keras.applications` backbone
(frozen, then fine-tuned with `recipes.transfer.fine_tune`), with class weights and/or
focal loss against the imbalance; reports per-class metrics, ROC curves, the confusion
matrix, saliency maps and the diagnostics' findings, and saves the best model.

Run: ``python -m ch11.fish --data-dir DIR`` (``make recipe-fish DATA_DIR=DIR``),
``--quick`` for a smoke run, ``python -m ch11.fish predict --model PATH IMAGE...``.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from ch11._experiment import Results, cli, finish, start, train_variant
from ch11.fish_predict import InputError, save_model_with_classes
from ch11.fish_predict import main as predict_main
from ch11.fish_report import (
    Trained,
    evaluate,
    figures_and_sections,
    imbalance_rows,
    markdown,
    notes,
)
from recipes.builders import build_cnn
from recipes.data import load_fish
from recipes.losses import class_weights, make_loss
from recipes.runs import EpochTimer
from recipes.specs import CNNSpec
from recipes.transfer import fine_tune

NAME = "fish"
BACKBONES = ("mobilenetv2", "efficientnetb0")
IMBALANCE = ("none", "class_weight", "focal", "both")
DEFAULT_DIR = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "fish-val")
BN_MOMENTUM_FROM_SCRATCH = 0.9
AUGMENTATION = ("flip", "rotation", "zoom", "contrast")


@dataclass(frozen=True)
class Config:
    """The workflow's settings (CPU-sized defaults; the book's recipe otherwise)."""

    data_dir: str = field(default=DEFAULT_DIR, metadata={"help": "folder of fish photos "
                          "(one subfolder per class, Kaggle layout, or train/val/test)"})
    seed: int = field(default=42, metadata={"help": "seed of the split and of each model"})
    quick: bool = field(default=False, metadata={"help": "32x32 images, one epoch (tests)"})
    image_size: int = field(default=96, metadata={"help": "photos are resized to this square"})
    validation_split: float = field(default=0.2, metadata={"help": "fraction for validation"})
    test_split: float = field(default=0.1, metadata={"help": "fraction for testing"})
    batch_size: int = field(default=32, metadata={"help": "mini-batch size"})
    cnn_epochs: int = field(default=20, metadata={"help": "epochs of the CNN from scratch"})
    backbone: str = field(default="mobilenetv2", metadata={"help": "keras.applications "
                          "backbone of the transfer model", "choices": BACKBONES})
    weights: str = field(default="imagenet", metadata={"help": "backbone weights: imagenet "
                         "(download or Keras cache), none (train from scratch) or a file path"})
    width: float = field(default=0.35, metadata={"help": "MobileNetV2 width multiplier alpha"})
    frozen_epochs: int = field(default=3, metadata={"help": "transfer phase 1 (frozen) epochs"})
    fine_tune_epochs: int = field(default=6, metadata={"help": "transfer phase 2 epochs"})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    imbalance: str = field(default="class_weight", metadata={"help": "loss against the class "
                           "imbalance", "choices": IMBALANCE})
    compare_imbalance: bool = field(default=False, metadata={"help": "also train the CNN with "
                                    "none/class_weight/focal and compare the rare classes"})
    saliency_per_class: int = field(default=2, metadata={"help": "test photos per class in "
                                    "the saliency maps"})
    out_dir: str = field(default="runs", metadata={"help": "where run folders go"})

    def __post_init__(self) -> None:
        for name in ("image_size", "batch_size", "cnn_epochs", "fine_tune_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.frozen_epochs < 0 or self.saliency_per_class < 0:
            raise ValueError("frozen_epochs and saliency_per_class must be >= 0.")
        if self.backbone not in BACKBONES:
            raise ValueError(f"Unknown backbone {self.backbone!r}. Valid: {', '.join(BACKBONES)}.")
        if self.imbalance not in IMBALANCE:
            raise ValueError(f"Unknown imbalance {self.imbalance!r}. Valid: "
                             f"{', '.join(IMBALANCE)}.")
        if self.learning_rate <= 0 or not 0 < self.width <= 1.4:
            raise ValueError("learning_rate must be > 0 and width in (0, 1.4].")


def _arrays(ds) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds]) if ds.cardinality() else ((), ())
    return np.concatenate(xs), np.concatenate(ys).astype("int64")


def load(config: Config) -> tuple[object, dict[str, np.ndarray]]:
    """`load_fish` on the folder, as numpy arrays of raw pixels (the set is small).

    Raises:
        InputError: the folder is missing or bad (load_fish's message, unchanged).
    """
    try:
        data = load_fish(config.data_dir, image_size=config.image_size,
                         validation_split=config.validation_split,
                         test_split=config.test_split, seed=config.seed,
                         batch_size=config.batch_size)
    except (ValueError, FileNotFoundError) as e:
        raise InputError(str(e)) from None
    missing = [s for s in ("validation", "test") if data.counts[s].sum() == 0]
    if missing:
        raise InputError(f"The {' and '.join(missing)} split(s) of '{config.data_dir}' are "
                         "empty: give --validation-split/--test-split > 0 or add val/test.")
    arrays = {}
    for split, key in (("train", "train"), ("validation", "valid"), ("test", "test")):
        arrays[f"x_{key}"], arrays[f"y_{key}"] = _arrays(getattr(data, split))
    return data, arrays


def _loss_and_weights(imbalance: str, y_train: np.ndarray, k: int):
    loss = make_loss("focal" if imbalance in ("focal", "both") else "crossentropy")
    weights = class_weights(y_train, k) if imbalance in ("class_weight", "both") else None
    return loss, weights


def settle_batch_norm(model: keras.Model) -> keras.Model:
    """Set every BN layer's momentum to `BN_MOMENTUM_FROM_SCRATCH` (in place).

    With a few hundred photos an epoch is ~25 steps: Keras's 0.99 (0.999 in MobileNetV2)
    would leave the moving averages near their initial values for the whole run, and the
    model would predict garbage at inference while training accuracy climbs.
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM_FROM_SCRATCH
    return model


def cnn_spec(quick: bool) -> CNNSpec:
    """The CNN from scratch: He init (auto for ReLU), BN, dropout, augmentation, rescale."""
    return CNNSpec(filters=(8, 16) if quick else (16, 32, 64), dense_units=(64,),
                   global_pooling=True, batch_norm="before", batch_norm_from=1,
                   augmentation=AUGMENTATION,
                   input_norm="rescale", dropout_rate=0.4)


def train_cnn(config: Config, arrays: dict, k: int, imbalance: str, label: str) -> Trained:
    """Build the CNN through `CNNSpec` and fit it with the chosen imbalance remedy."""
    loss, weights = _loss_and_weights(imbalance, arrays["y_train"], k)
    size = (config.image_size, config.image_size, 3)
    model, history = train_variant(
        lambda: settle_batch_norm(build_cnn(cnn_spec(config.quick), size, k, name="cnn")),
        {"optimizer": keras.optimizers.Adam(config.learning_rate), "loss": loss,
         "metrics": ["accuracy"]}, arrays, seed=config.seed, epochs=config.cnn_epochs,
        batch_size=config.batch_size, label=label,
        fit_kwargs={"class_weight": weights})
    return Trained("cnn", model, dict(history.history), imbalance, "")


def build_transfer(config: Config, k: int) -> keras.Model:
    """Raw pixels -> augmentation -> the backbone's preprocessing -> backbone -> head.

    Raises:
        InputError: ImageNet weights can be neither downloaded nor found in the Keras
            cache, or the weights file does not fit.
    """
    size = (config.image_size, config.image_size, 3)
    weights = None if config.weights.lower() == "none" else config.weights
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise InputError(f"Weights file '{weights}' does not exist (use --weights imagenet, "
                         "none or the path of a no-top .h5/.weights.h5 file).")
    try:
        if config.backbone == "mobilenetv2":
            base = keras.applications.MobileNetV2(input_shape=size, alpha=config.width,
                                                  include_top=False, weights=weights,
                                                  name="backbone")
            prep = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")
        else:
            base = keras.applications.EfficientNetB0(input_shape=size, include_top=False,
                                                     weights=weights, name="backbone")
            prep = keras.layers.Identity(name="preprocess")  # rescales inside the backbone
    except Exception as e:  # noqa: BLE001 - download failures come in many kinds
        first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        if weights == "imagenet":
            raise InputError(
                f"Cannot get the ImageNet weights of {config.backbone} ({first}): no internet "
                "and not in the Keras cache (~/.keras/models). Copy the no-top weights file "
                "there, pass --weights PATH to a local file, or --weights none to train the "
                "backbone from scratch.") from None
        raise InputError(f"Cannot build {config.backbone} with weights '{config.weights}': "
                         f"{first}") from None
    inputs = keras.Input(shape=size)
    x = inputs
    for aug in AUGMENTATION:
        x = {"flip": lambda: keras.layers.RandomFlip("horizontal", name="aug_flip"),
             "rotation": lambda: keras.layers.RandomRotation(0.1, name="aug_rotation"),
             "zoom": lambda: keras.layers.RandomZoom(0.1, name="aug_zoom"),
             "contrast": lambda: keras.layers.RandomContrast(0.2, name="aug_contrast")}[aug]()(x)
    if weights is None:  # MobileNetV2's BN momentum 0.999 needs thousands of steps to warm up
        settle_batch_norm(base)
    x = base(prep(x))
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    x = keras.layers.Dropout(0.3, name="dropout_head")(x)
    outputs = keras.layers.Dense(k, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name=f"transfer_{config.backbone}")


def train_transfer(config: Config, arrays: dict, k: int) -> Trained:
    """Frozen backbone then fine-tuning; with random weights, one phase training all."""
    print(f"\n=== transfer: {config.backbone}, weights {config.weights} ===", flush=True)
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    model = build_transfer(config, k)
    loss, weights = _loss_and_weights(config.imbalance, arrays["y_train"], k)
    pretrained = config.weights.lower() != "none"
    if pretrained:
        frozen, factor, how = config.frozen_epochs, 0.1, (
            f"{config.weights} weights: {config.frozen_epochs} epochs with the backbone "
            f"frozen, then {config.fine_tune_epochs} fine-tuning everything (BN kept frozen) "
            "at a tenth of the learning rate")
    else:
        frozen, factor, how = 0, 1.0, (
            f"NO pretrained weights (--weights none): the backbone was trained from scratch "
            f"for {config.frozen_epochs + config.fine_tune_epochs} epochs in one phase "
            "(freezing a random backbone would teach nothing; its BN layers train too, with "
            f"momentum {BN_MOMENTUM_FROM_SCRATCH} instead of 0.999 so that their moving "
            "averages settle within a few epochs)")
    verbose = 1 if sys.stdout.isatty() else 2
    phases = fine_tune(model, (arrays["x_train"], arrays["y_train"]),
                       (arrays["x_valid"], arrays["y_valid"]), base_layers="backbone",
                       learning_rate=config.learning_rate, frozen_epochs=frozen,
                       fine_tune_epochs=config.fine_tune_epochs + (0 if pretrained else
                                                                  config.frozen_epochs),
                       fine_tune_lr_factor=factor, loss=loss, class_weight=weights,
                       batch_size=config.batch_size, keep_bn_frozen=pretrained,
                       callbacks=[EpochTimer()], verbose=verbose)
    history: dict[str, list] = {}
    for h in phases.values():
        for key, values in h.history.items():
            history.setdefault(key, []).extend(values)
    return Trained("transfer", model, history, config.imbalance, how)


def run(config: Config) -> Results:
    """Load the photos, train both models, evaluate, save the best and write the report.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per model).

    Raises:
        InputError: bad photo folder or unavailable backbone weights.
    """
    if config.quick:
        config = dataclasses.replace(config, image_size=min(config.image_size, 32),
                                     cnn_epochs=1, frozen_epochs=min(config.frozen_epochs, 1),
                                     fine_tune_epochs=1, saliency_per_class=1)
    cpu0 = time.process_time()
    data, arrays = load(config)  # before start(): a bad folder leaves no run folder
    run_dir, started = start(NAME, config)
    print(data.summary(), flush=True)
    k = len(data.class_names)
    models = [train_cnn(config, arrays, k, config.imbalance,
                        f"model 1/2: CNN from scratch, imbalance {config.imbalance}"),
              train_transfer(config, arrays, k)]
    for m in models:
        evaluate(m, arrays, data.class_names)
    best = max(models, key=lambda m: m.val_acc)
    for m in models:
        save_model_with_classes(m.model, run_dir / f"{m.name}.keras", data.class_names,
                                kind=m.name, imbalance=m.imbalance)
    shutil.copy(run_dir / f"{best.name}.keras", run_dir / "best.keras")
    shutil.copy(run_dir / f"{best.name}.classes.json", run_dir / "best.classes.json")
    compare = []
    if config.compare_imbalance:
        for i, kind in enumerate(("none", "class_weight", "focal"), 1):
            if kind == config.imbalance:  # the model above, same seed: not trained twice
                compare.append(models[0])
                continue
            m = train_cnn(config, arrays, k, kind, f"imbalance comparison {i}/3: CNN, {kind}")
            evaluate(m, arrays, data.class_names)
            compare.append(m)
    table = pd.DataFrame([m.row() for m in models])
    figures, sections = figures_and_sections(run_dir, data, arrays, models, best, config)
    if compare:
        sections.append(("Imbalance comparison (CNN, rare classes, test set)",
                         markdown(imbalance_rows(compare, data))))
    cpu = time.process_time() - cpu0
    metrics = {"best_model": best.name, "cpu_time_s": round(cpu, 1),
               **{f"{m.name}_test_acc": m.test_acc for m in models}}
    return finish(NAME, config, run_dir, started, table, title="Fish species from photos",
                  intro=f"Photos: `{data.directory}` ({data.layout}), {k} classes, resized to "
                        f"{config.image_size}x{config.image_size}. CPU time {cpu:.0f} s. "
                        f"Best model (validation accuracy): **{best.name}**, saved as "
                        "`best.keras` with its class names in `best.classes.json`.",
                  histories={m.name: m.history for m in models},
                  metrics=metrics, figures=figures, sections=sections,
                  notes=notes(models, compare, data, config))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ch11.fish [options]`` or ``python -m ch11.fish predict ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["predict"]:
        return predict_main(argv[1:])
    try:
        return cli(Config, run, argv, __doc__)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


__all__ = ["BACKBONES", "Config", "IMBALANCE", "build_transfer", "cnn_spec",
           "load", "main", "run", "settle_batch_norm", "train_cnn", "train_transfer"]

if __name__ == "__main__":
    raise SystemExit(main())
