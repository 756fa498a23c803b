"""The transfer experiment: model A on the seafood species, B variants on the two others."""

from __future__ import annotations

import dataclasses
import sys
import time

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11 import _fish
from ch11.fish_transfer import report
from ch11.fish_transfer.config import NAME, Config
from recipes.callbacks import EpochTimer
from recipes.checks import InputError
from recipes.data.pipeline import make_dataset
from recipes.hardware import clear_session, machine_info
from recipes.metrics import roc_auc_per_class
from recipes.runs import set_seed
from recipes.transfer import build_transfer, fine_tune, reuse_layers

__all__ = ["VARIANTS", "b_scores", "run"]

VARIANTS = ("scratch", "frozen", "fine_tuned")  # and "imagenet" with --weights


def b_scores(model: keras.Model, data: _fish.FishSplits) -> dict[str, float]:
    """Task B's validation figures: accuracy, balanced accuracy and the rare class's AUC."""
    y = data.y["validation"]
    probs = model.predict(data.x["validation"], batch_size=256, verbose=0).astype("float64")
    pred = probs.argmax(1)
    recalls = [float(np.mean(pred[y == c] == c)) for c in np.unique(y)]
    rare = int(np.argmin(np.bincount(y)))  # the smaller class of the evaluated photos
    aucs = roc_auc_per_class(y, probs, data.class_names)
    return {"accuracy": float(np.mean(pred == y)), "balanced_accuracy": float(np.mean(recalls)),
            "rare_recall": recalls[rare] if rare < len(recalls) else np.nan,
            "auc": float(aucs["auc"].iloc[rare])}


def _weights(config: Config) -> str | None:
    return None if config.weights.lower() == "none" else config.weights


def _two_phases(model: keras.Model, data: _fish.FishSplits, config: Config, seed: int,
                base: str, frozen: int, tuned: int) -> tuple[keras.Model, float, dict]:
    """`recipes.transfer.fine_tune` through the static pipeline; returns the time taken."""
    started = time.perf_counter()
    phases = fine_tune(
        model, make_dataset(data.x["train"], data.y["train"], config.batch_size, seed=seed),
        make_dataset(data.x["validation"], data.y["validation"], 256, shuffle=False),
        base_layers=base, optimizer=config.optimizer, learning_rate=config.b_learning_rate,
        frozen_epochs=frozen, fine_tune_epochs=tuned, fine_tune_lr_factor=0.1,
        callbacks=[EpochTimer()], verbose=1 if sys.stdout.isatty() else 2)
    history: dict[str, list] = {}
    for h in phases.values():
        for key, values in h.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
    return model, time.perf_counter() - started, history


def _train_b(variant: str, model_a: keras.Model, data_b: _fish.FishSplits, config: Config,
             seed: int) -> tuple[keras.Model, float, dict]:
    clear_session()  # keeps the dtype policy (recipes.hardware)
    set_seed(seed)
    k = len(data_b.class_names)
    if variant == "scratch":
        spec = _fish.recipe_spec(quick=config.quick)
        m = _fish.train_cnn(spec, data_b, epochs=config.b_epochs, patience=None,
                            batch_size=config.batch_size, max_lr=config.b_learning_rate,
                            optimizer=config.optimizer, seed=seed, name="b_scratch",
                            verbose=1 if sys.stdout.isatty() else 2)
        return m.model, m.seconds, m.history
    if variant == "imagenet":
        model = build_transfer("mobilenetv2", (data_b.image_size,) * 2 + (3,), k,
                               weights=_weights(config))
        return _two_phases(model, data_b, config, seed, "backbone", config.frozen_epochs,
                           config.fine_tune_epochs)
    model = reuse_layers(model_a, "global_pool",
                         [keras.layers.Dropout(0.3, name="b_dropout"),
                          keras.layers.Dense(k, activation="softmax", dtype="float32",
                                             name="b_output")], name=f"b_{variant}")
    if variant == "frozen":  # the same number of epochs, all with A's layers frozen
        return _two_phases(model, data_b, config, seed, "global_pool",
                           config.frozen_epochs + config.fine_tune_epochs, 0)
    return _two_phases(model, data_b, config, seed, "global_pool", config.frozen_epochs,
                       config.fine_tune_epochs)


def run(config: Config) -> ex.Results:
    """Train model A once, then every B variant once per seed; compare them on task B.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per seed and B variant).

    Raises:
        InputError: a bad photo folder, an unknown B class, or unavailable weights.
    """
    if config.quick:
        config = dataclasses.replace(config, image_size=min(config.image_size, 32),
                                     seeds=config.seeds[:1], a_epochs=1, b_epochs=2,
                                     frozen_epochs=1, fine_tune_epochs=1, b_per_class=5,
                                     batch_size=16)
    policy = _fish.set_precision("auto")
    data = _fish.load_splits(config, require_test=False)
    unknown = [c for c in config.b_classes if c not in data.class_names]
    if unknown:
        raise InputError(f"Task B class(es) {unknown} are not among the photo folder's classes "
                         f"({', '.join(data.class_names)}): give --b-classes from that list.")
    a_names = [c for c in data.class_names if c not in config.b_classes]
    if len(a_names) < 2:
        raise InputError(f"Task A needs at least 2 classes besides task B's; found {a_names}.")
    variants = VARIANTS + (("imagenet",) if _weights(config) else ())
    if _weights(config):  # fail now, not after model A has trained
        build_transfer("mobilenetv2", (config.image_size,) * 2 + (3,), 2,
                       weights=_weights(config))
        clear_session()  # keeps the dtype policy (recipes.hardware)
    run_dir, started = ex.start(NAME, config)
    data_a = _fish.subset_classes(data, a_names)
    a = _fish.train_cnn(_fish.recipe_spec(quick=config.quick), data_a, epochs=config.a_epochs,
                        patience=4, batch_size=64, max_lr=config.a_learning_rate,
                        optimizer=config.optimizer, seed=config.seed, name="model_a",
                        label=f"model A: {len(a_names)} classes, {len(data_a.y['train']):,} "
                              "photos", log_dir=ex.tensorboard_dir(run_dir, "model_a"))
    a_acc = float(np.mean(a.model.predict(data_a.x["validation"], batch_size=256, verbose=0)
                          .argmax(1) == data_a.y["validation"]))
    a.model.save(run_dir / "model_a.keras")
    rows, histories = [], {"model_a": a.history}
    total = len(config.seeds) * len(variants)
    k = 0
    for seed in config.seeds:
        data_b = _fish.subset_classes(data, list(config.b_classes), config.b_per_class, seed)
        for variant in variants:
            k += 1
            print(f"\n=== B {k}/{total}: {variant}, seed {seed}, "
                  f"{len(data_b.y['train'])} photos ===", flush=True)
            model, seconds, history = _train_b(variant, a.model, data_b, config, seed)
            rows.append({"seed": seed, "variant": variant, **b_scores(model, data_b),
                         "train_s": round(seconds, 1)})
            histories[f"b_{variant}_s{seed}"] = history
    table = pd.DataFrame(rows)
    summary = report.summary(table)
    figures = report.figures(run_dir, table, histories, config)
    metrics = {"policy": policy, "machine": machine_info(), "model_a_val_acc": a_acc,
               "model_a_classes": len(a_names), "weights": config.weights,
               **report.metrics(summary)}
    notes = report.notes(summary, config)
    return ex.finish(NAME, config, run_dir, started, table,
                     precision=_fish.precision_entry("auto"),
                     title="Transfer learning on fish photos: model A -> model B",
                     intro=report.intro(config, data, data_a, a_acc, policy),
                     histories=histories, metrics=metrics, figures=figures,
                     sections=report.sections(summary, config), notes=notes,
                     evidence=report.evidence(table, summary, notes[0], config))
