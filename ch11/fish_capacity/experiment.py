"""The capacity sweep: widths x (plain, regularized) x seeds on a small training subset."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11 import _fish
from ch11.fish_capacity import report
from ch11.fish_capacity.config import NAME, Config
from recipes.builders import count_params
from recipes.hardware import machine_info
from recipes.specs import CNNSpec

__all__ = ["REGIMES", "run", "spec_for", "subset_indices"]

REGIMES = ("plain", "regularized")


def subset_indices(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """`per_class` training indices of each class (all of a smaller class), seeded.

    Args:
        y: the training labels.
        per_class: photos per class.
        seed: which photos.

    Returns:
        The sorted indices.
    """
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(y == c), min(per_class, int(np.sum(y == c))),
                        replace=False) for c in np.unique(y)]
    return np.sort(np.concatenate(picks))


def spec_for(config: Config, units: int, regime: str) -> CNNSpec:
    """The swept CNN: fixed conv blocks, a flattened dense head of `units` units."""
    regularized = regime == "regularized"
    return CNNSpec(filters=config.filters, first_stride=2, dense_units=(int(units),),
                   global_pooling=False, batch_norm="before", batch_norm_momentum=0.9,
                   input_norm="rescale",
                   augmentation=("flip", "rotation", "zoom") if regularized else (),
                   dropout_rate=config.dropout_rate if regularized else 0.0,
                   l2=config.l2 if regularized else 0.0)


def run(config: Config) -> ex.Results:
    """Train every width in both regimes for every seed; tabulate and plot the gaps.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per width, regime and seed).

    Raises:
        InputError: a bad photo folder.
    """
    if config.quick:
        config = dataclasses.replace(config, image_size=min(config.image_size, 32),
                                     dense_units=config.dense_units[:2], filters=(8, 16),
                                     seeds=config.seeds[:1], epochs=2, per_class=5)
    policy = _fish.set_precision("auto")
    data = _fish.load_splits(config, require_test=False)
    rows_subset = subset_indices(data.y["train"], config.per_class, config.seed)
    run_dir, started = ex.start(NAME, config)
    rows, histories = [], {}
    plan = [(u, r, s) for u in config.dense_units for r in REGIMES for s in config.seeds]
    for k, (units, regime, seed) in enumerate(plan, 1):
        m = _fish.train_cnn(spec_for(config, units, regime), data, epochs=config.epochs,
                            patience=None, batch_size=config.batch_size,
                            max_lr=config.learning_rate, optimizer=config.optimizer, seed=seed,
                            train_indices=rows_subset, name=f"cnn_{units}",
                            label=f"model {k}/{len(plan)}: dense {units}, {regime}, seed {seed}",
                            log_dir=ex.tensorboard_dir(run_dir, f"dense{units}_{regime}_s{seed}"))
        x_sub, y_sub = data.x["train"][rows_subset], data.y["train"][rows_subset]
        train_acc = float(np.mean(m.model.predict(x_sub, batch_size=256, verbose=0)
                                  .argmax(1) == y_sub))
        val_acc = float(np.mean(m.model.predict(data.x["validation"], batch_size=256,
                                                verbose=0).argmax(1) == data.y["validation"]))
        params = count_params(m.model)
        rows.append({"dense_units": units, "regime": regime, "seed": seed,
                     "params": params["trainable"] + params["non_trainable"],
                     "train_acc": train_acc, "val_acc": val_acc, "gap": train_acc - val_acc,
                     "best_val_acc": max(m.history.get("val_accuracy", [val_acc])),
                     "train_s": round(m.seconds, 1)})
        histories[f"dense{units}_{regime}_s{seed}"] = m.history
    table = pd.DataFrame(rows)
    summary = report.summary(table)
    figures = report.figures(run_dir, table, histories, config)
    metrics = {"policy": policy, "machine": machine_info(),
               "train_photos": int(len(rows_subset)), **report.metrics(summary)}
    return ex.finish(NAME, config, run_dir, started, table,
                     precision=_fish.precision_entry("auto"),
                     title="Overfitting from capacity on a few photos per class",
                     intro=report.intro(config, data, len(rows_subset), policy),
                     histories=histories, metrics=metrics, figures=figures,
                     sections=report.sections(summary), notes=report.notes(summary, config),
                     evidence=report.evidence(table, config))
