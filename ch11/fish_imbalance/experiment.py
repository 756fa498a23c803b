"""The imbalance study: every remedy once per seed, the rare class measured each time."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11 import _fish
from ch11.fish_imbalance import report
from ch11.fish_imbalance.config import NAME, Config
from recipes.builders import build_cnn
from recipes.diagnosis.measures import class_gradient_shares
from recipes.hardware import clear_session, machine_info
from recipes.losses import class_weights, make_loss
from recipes.metrics import class_report, confusion_matrix
from recipes.runs import set_seed

__all__ = ["rare_class", "rare_row", "run", "threshold_moved"]


def rare_class(data: _fish.FishSplits) -> int:
    """The index of the smallest class of the training split."""
    return int(np.argmin(np.bincount(data.y["train"], minlength=len(data.class_names))))


def threshold_moved(probs: np.ndarray, y_train: np.ndarray) -> np.ndarray:
    """Probabilities divided by the training class frequencies, renormalized.

    The plain model's posteriors carry the training priors; dividing by them gives the
    decision a balanced prior (the "threshold moving" remedy: no retraining).

    Args:
        probs: ``(n, k)`` predicted probabilities.
        y_train: the training labels (the priors).

    Returns:
        ``(n, k)`` adjusted probabilities, rows summing to 1.
    """
    prior = np.bincount(y_train, minlength=probs.shape[1]) / len(y_train)
    adjusted = probs / np.maximum(prior, 1e-12)
    return adjusted / adjusted.sum(axis=1, keepdims=True)


def rare_row(probs: dict[str, np.ndarray], data: _fish.FishSplits, rare: int, *, seed: int,
             remedy: str, trained: _fish.Trained | None = None) -> dict:
    """The rare class's test figures (and the overall ones) for one model."""
    y_test = data.y["test"]
    rep = class_report(y_test, probs["test"], data.class_names).set_index("index")
    matrix = confusion_matrix(y_test, probs["test"], data.class_names).to_numpy()
    names = data.class_names
    off = matrix[rare].copy()
    off[rare] = 0
    into = matrix[:, rare].copy()
    into[rare] = 0
    y_train_seen = probs.get("train_y")
    train_recall = (float(np.mean(probs["train"].argmax(1)[y_train_seen == rare] == rare))
                    if "train" in probs and np.any(y_train_seen == rare) else np.nan)
    return {
        "seed": seed, "remedy": remedy,
        "test_acc": float(np.mean(probs["test"].argmax(1) == y_test)),
        "macro_auc": float(np.nanmean(rep["auc"])),
        "rare_auc": float(rep.loc[rare, "auc"]), "rare_recall": float(rep.loc[rare, "recall"]),
        "rare_precision": float(rep.loc[rare, "precision"]),
        "rare_train_recall": train_recall,
        "mistaken_for": (f"{names[int(off.argmax())]} ({int(off.max())})" if off.max() else "-"),
        "taken_for_rare": (f"{names[int(into.argmax())]} ({int(into.max())})"
                           if into.max() else "-"),
        "best_epoch": trained.best_epoch if trained else np.nan,
        "train_s": round(trained.seconds, 1) if trained else 0.0,
    }


def _probs(m: _fish.Trained, data: _fish.FishSplits, rare: int) -> dict[str, np.ndarray]:
    """Test probabilities, and the training photos of the rare class and a sample of others."""
    y = data.y["train"]
    rng = np.random.default_rng(0)
    others = rng.choice(np.flatnonzero(y != rare), min(500, int(np.sum(y != rare))),
                        replace=False)
    pick = np.concatenate([np.flatnonzero(y == rare), others])
    return {"test": m.model.predict(data.x["test"], batch_size=256, verbose=0).astype("float64"),
            "train": m.model.predict(data.x["train"][pick], batch_size=256,
                                     verbose=0).astype("float64"),
            "train_y": y[pick]}


def _shares(model: keras.Model, data: _fish.FishSplits, rare: int, when: str) -> list[dict]:
    out = []
    loss = make_loss("crossentropy")
    for weighted in (False, True):
        weights = class_weights(data.y["train"], len(data.class_names)) if weighted else None
        frame = class_gradient_shares(model, data.x["train"], data.y["train"], loss,
                                      class_weight=weights, per_class=64)
        row = frame.set_index("class").loc[rare]
        out.append({"when": when, "class_weights": "yes" if weighted else "no",
                    "rare_weight": row["weight"], "rare_weight_share": row["weight_share"],
                    "rare_gradient_share": row["share"],
                    "median_other_gradient_share": float(
                        frame[frame["class"] != rare]["share"].median())})
    return out


def run(config: Config) -> ex.Results:
    """Train every remedy once per seed, measure the rare class, write the report.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per seed and remedy, threshold moving included).

    Raises:
        InputError: a bad photo folder.
    """
    if config.quick:
        config = dataclasses.replace(config, image_size=min(config.image_size, 32),
                                     seeds=config.seeds[:1], epochs=2, batch_size=16)
    policy = _fish.set_precision(config.precision)
    data = _fish.load_splits(config)
    rare = rare_class(data)
    run_dir, started = ex.start(NAME, config)
    spec = _fish.recipe_spec(quick=config.quick)
    clear_session()  # keeps the dtype policy (recipes.hardware)
    set_seed(config.seeds[0])
    shares = _shares(build_cnn(spec, (data.image_size,) * 2 + (3,), len(data.class_names)),
                     data, rare, "at initialization")
    rows, histories = [], {}
    total = len(config.seeds) * len(config.remedies)
    k = 0
    for seed in config.seeds:
        for remedy in config.remedies:
            k += 1
            m = _fish.train_cnn(spec, data, remedy=remedy, epochs=config.epochs,
                                patience=config.patience, batch_size=config.batch_size,
                                max_lr=config.learning_rate, optimizer=config.optimizer,
                                seed=seed, label=f"model {k}/{total}: {remedy}, seed {seed}",
                                log_dir=ex.tensorboard_dir(run_dir, f"{remedy}_s{seed}"))
            probs = _probs(m, data, rare)
            rows.append(rare_row(probs, data, rare, seed=seed, remedy=remedy, trained=m))
            histories[f"{remedy}_s{seed}"] = m.history
            if remedy == "none":
                moved = {key: threshold_moved(v, data.y["train"]) if key != "train_y" else v
                         for key, v in probs.items()}
                rows.append(rare_row(moved, data, rare, seed=seed, remedy="threshold"))
            if seed == config.seeds[0] and remedy in ("none", "class_weight"):
                shares += _shares(m.model, data, rare, f"after training ({remedy})")
    table = pd.DataFrame(rows)
    summary = report.summary(table)
    shares = pd.DataFrame(shares)
    figures = report.figures(run_dir, table, data.class_names[rare])
    metrics = {"policy": policy, "machine": machine_info(), "rare_class": data.class_names[rare],
               "rare_train_photos": int(np.sum(data.y["train"] == rare)),
               "rare_test_photos": int(np.sum(data.y["test"] == rare)),
               **report.metrics(summary)}
    notes = report.notes(summary, shares, data, rare, config)
    return ex.finish(NAME, config, run_dir, started, table,
                     precision=_fish.precision_entry(config.precision),
                     title="The rare species: remedies against the class imbalance",
                     intro=report.intro(config, data, rare, policy), histories=histories,
                     metrics=metrics, figures=figures,
                     sections=report.sections(summary, shares, data, rare),
                     notes=notes, evidence=report.evidence(table, summary, notes[0],
                                                           data.class_names[rare], config))
