"""The fish classifier: train the chapter's CNN from scratch on the real splits, evaluate it."""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from pathlib import Path

import keras
import pandas as pd

from ch11 import _experiment as ex
from ch11 import _fish
from ch11.fish import report
from ch11.fish.config import NAME, Config
from ch11.fish.predict import save_model_with_classes
from recipes.callbacks import EpochTimer
from recipes.data.pipeline import make_dataset
from recipes.hardware import clear_session, machine_info
from recipes.losses import class_weights, make_loss
from recipes.transfer import build_transfer, fine_tune

__all__ = ["run", "train_transfer"]

_BOTH = "both"  # class weights and focal loss together (the original --imbalance choice)


def _weights(config: Config) -> str | None:
    return None if config.weights.lower() == "none" else config.weights


def train_transfer(config: Config, data: _fish.FishSplits) -> _fish.Trained:
    """A ``keras.applications`` backbone: frozen, then fine-tuned (or one phase from scratch)."""
    print(f"\n=== transfer: {config.backbone}, weights {config.weights} ===", flush=True)
    clear_session()  # keeps the dtype policy (recipes.hardware)
    keras.utils.set_random_seed(config.seed)
    k, size = len(data.class_names), (data.image_size, data.image_size, 3)
    model = build_transfer(config.backbone, size, k, weights=_weights(config),
                           width=config.width)
    pretrained = _weights(config) is not None
    frozen = config.frozen_epochs if pretrained else 0
    tune = config.fine_tune_epochs + (0 if pretrained else config.frozen_epochs)
    how = (f"{config.weights} weights: {frozen} epochs with the backbone frozen, then {tune} "
           "fine-tuning everything (BN kept frozen) at a tenth of the learning rate"
           if pretrained else
           f"NO pretrained weights (--weights none): the backbone was trained from scratch for "
           f"{tune} epochs in one phase (its BN momentum 0.9 so the moving averages settle)")
    weights = (class_weights(data.y["train"], k)
               if config.imbalance in ("class_weight", _BOTH) else None)
    loss = make_loss("focal" if config.imbalance in ("focal", _BOTH) else "crossentropy")
    started = time.perf_counter()
    phases = fine_tune(model, make_dataset(data.x["train"], data.y["train"], config.batch_size,
                                           seed=config.seed),
                       make_dataset(data.x["validation"], data.y["validation"], 256,
                                    shuffle=False), base_layers="backbone",
                       learning_rate=config.learning_rate or 1e-3, frozen_epochs=frozen,
                       fine_tune_epochs=tune, fine_tune_lr_factor=0.1 if pretrained else 1.0,
                       loss=loss, class_weight=weights, keep_bn_frozen=pretrained,
                       callbacks=[EpochTimer()], verbose=1 if sys.stdout.isatty() else 2)
    history: dict[str, list] = {}
    for h in phases.values():
        for key, values in h.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
    return _fish.Trained("transfer", model, history, config.imbalance,
                         time.perf_counter() - started, config.learning_rate or 1e-3, how)


def _train_cnn(config: Config, data: _fish.FishSplits, remedy: str, label: str,
               log_dir: Path | None = None) -> _fish.Trained:
    spec = _fish.recipe_spec(quick=config.quick, augmentation=config.augmentations)
    return _fish.train_cnn(spec, data, remedy=remedy if remedy != _BOTH else "focal",
                           epochs=config.cnn_epochs, patience=config.patience,
                           batch_size=config.batch_size, max_lr=config.learning_rate,
                           optimizer=config.optimizer, seed=config.seed, label=label,
                           class_weighted=remedy == _BOTH, log_dir=log_dir)


def run(config: Config) -> ex.Results:
    """Load the photos, train the CNN (and a backbone if asked), evaluate, write the report.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per model).

    Raises:
        InputError: a bad photo folder or unavailable backbone weights (before any training).
    """
    started_all = time.perf_counter()
    if config.quick:
        config = dataclasses.replace(config, image_size=min(config.image_size, 32),
                                     cnn_epochs=min(config.cnn_epochs, 2),
                                     frozen_epochs=min(config.frozen_epochs, 1),
                                     fine_tune_epochs=1, saliency_per_class=1, batch_size=16)
    policy = _fish.set_precision(config.precision)
    data = _fish.load_splits(config)  # before start(): a bad folder leaves no run folder
    if config.backbone != "none":  # fail now, not after the CNN has trained
        build_transfer(config.backbone, (config.image_size,) * 2 + (3,), 2,
                       weights=_weights(config), width=config.width)
        clear_session()  # keeps the dtype policy (recipes.hardware)
    run_dir, started = ex.start(NAME, config)
    cnn = _train_cnn(config, data, config.imbalance,
                     f"CNN from scratch ({config.imbalance}), {len(data.y['train']):,} photos",
                     ex.tensorboard_dir(run_dir, "cnn"))
    first_step = time.perf_counter() - started_all - cnn.seconds + cnn.first_step_s
    models = [cnn]
    if config.backbone != "none":
        models.append(train_transfer(config, data))
    for m in models:
        _fish.evaluate(m, data)
        report.diagnose_model(m, data)
    best = max(models, key=lambda m: m.accuracy["validation"])
    for m in models:
        save_model_with_classes(m.model, run_dir / f"{m.name}.keras", data.class_names,
                                kind=m.name, imbalance=m.remedy)
    shutil.copy(run_dir / f"{best.name}.keras", run_dir / "best.keras")
    shutil.copy(run_dir / f"{best.name}.classes.json", run_dir / "best.classes.json")
    compare = [cnn]
    if config.compare_imbalance:
        others = [r for r in ("none", "class_weight", "focal", "oversample")
                  if r != config.imbalance]
        for i, remedy in enumerate(others, 2):
            m = _train_cnn(config, data, remedy,
                           f"imbalance comparison {i}/{len(others) + 1}: CNN, {remedy}",
                           ex.tensorboard_dir(run_dir, f"cnn_{remedy}"))
            _fish.evaluate(m, data)
            compare.append(m)
    table = pd.DataFrame([m.row() for m in models])
    timing = {"photos_decoded_per_s": data.decoded_per_s, "photos_from_cache": data.from_cache,
              "load_s": round(data.load_seconds, 2), "first_step_s": round(first_step, 1),
              "train_photos_per_s": round(cnn.photos_per_s, 1),
              "cnn_train_s": round(cnn.seconds, 1)}
    figures, sections = report.figures_and_sections(run_dir, data, models, best, config,
                                                    timing, compare)
    metrics = {"best_model": best.name, "policy": policy, "machine": machine_info(),
               **timing, **{f"{m.name}_{k}": v for m in models
                            for k, v in (("test_acc", m.accuracy["test"]),
                                         ("macro_auc", m.macro_auc),
                                         ("val_acc", m.accuracy["validation"]))},
               **report.rare_metrics(cnn, data)}
    notes = report.notes(models, data, config, compare)
    return ex.finish(NAME, config, run_dir, started, table, title="Fish species from photos",
                     precision=_fish.precision_entry(config.precision),
                     intro=report.intro(config, data, best, policy, timing),
                     histories={m.name: m.history for m in models}, metrics=metrics,
                     figures=figures, sections=sections, notes=notes,
                     evidence=report.evidence(models, table, notes[0], len(data.y["test"]),
                                              config))
