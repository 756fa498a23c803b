"""The transfer experiment: train model A, then B from scratch and B on A for every seed,
and write the run folder."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11._config import headline_seeds, seeds_why
from ch11._evidence import seed_summary
from ch11.transfer import report
from ch11.transfer.config import NAME, Config
from ch11.transfer.report import VARIANTS
from recipes.builders import build_mlp, count_params
from recipes.callbacks import EpochTimer, tensorboard_callbacks
from recipes.optimizers import make_optimizer
from recipes.runs import set_seed
from recipes.specs import MLPSpec
from recipes.transfer import fine_tune, reuse_layers

__all__ = ["run", "split_tasks"]


def split_tasks(data: Mapping[str, np.ndarray], classes_b: Sequence[int],
                n_train_b: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Split MNIST into task A (8 digits, relabeled 0-7) and task B (2 digits, 0/1).

    Args:
        data: `mnist_splits` output.
        classes_b: the two digits of task B; label 1 is the second one.
        n_train_b: keep only the first ``n_train_b`` training images of task B.

    Returns:
        ``(data_a, data_b)``, dicts with the keys of `data`; A's labels are the ranks of
        its digits (0-7), B's labels are float32 0/1.

    Raises:
        ValueError: if task B has fewer than ``n_train_b`` training images.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Transfer Learning with Keras".
    """
    keep_a = np.array([c for c in range(10) if c not in classes_b])
    relabel = np.full(10, -1, dtype="int64")
    relabel[keep_a] = np.arange(len(keep_a))
    data_a, data_b = {}, {}
    for part in ("train", "valid", "test"):
        x, y = data[f"x_{part}"], data[f"y_{part}"]
        in_b = np.isin(y, classes_b)
        data_a[f"x_{part}"], data_a[f"y_{part}"] = x[~in_b], relabel[y[~in_b]]
        data_b[f"x_{part}"] = x[in_b]
        data_b[f"y_{part}"] = (y[in_b] == classes_b[1]).astype("float32")
    if len(data_b["x_train"]) < n_train_b:
        raise ValueError(f"Task B has only {len(data_b['x_train'])} training images, fewer "
                         f"than n_train_b={n_train_b}.")
    data_b["x_train"], data_b["y_train"] = (data_b["x_train"][:n_train_b],
                                            data_b["y_train"][:n_train_b])
    return data_a, data_b


class _TestError(keras.callbacks.Callback):
    """Log the binary test error rate after each epoch as ``test_error``."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        super().__init__()
        self.x, self.y = x, y

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        with warnings.catch_warnings():
            # reuse_layers' model B takes its inputs as a one-element list; calling it on
            # a bare array is correct but makes Keras warn about the structure.
            warnings.filterwarnings("ignore", "The structure of `inputs`", UserWarning)
            p = keras.ops.convert_to_numpy(self.model(self.x, training=False))[:, 0]
        logs["test_error"] = float(np.mean((p > 0.5) != (self.y > 0.5)))


def run(config: Config) -> ex.Results:
    """Train model A, then B from scratch and B on A for every seed; write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per B variant with the error rates' mean and spread).
    """
    if config.quick:
        config = dataclasses.replace(config, epochs_a=1,
                                     epochs_b=2, frozen_epochs=1, fine_tune_epochs=1,
                                     hidden_units=config.hidden_units[:2])
    run_dir, started = ex.start(NAME, config)
    data_a, data_b = split_tasks(ex.mnist_splits(config.quick), config.classes_b, config.n_train_b)
    spec = MLPSpec(hidden_units=config.hidden_units, activation="relu")
    lr = config.learning_rate
    seeds = headline_seeds(config)
    total = 1 + 2 * len(seeds)
    model_a, history_a = ex.train_variant(
        lambda: build_mlp(spec, (28, 28), 8, name="model_A"),
        ex.classifier_compile(config.optimizer, lr), data_a, seed=config.seed,
        epochs=config.epochs_a, batch_size=config.batch_size,
        label=f"variant 1/{total}: model A on the {len(np.unique(data_a['y_train']))} other "
              f"digits ({len(data_a['x_train']):,} images)",
        log_dir=ex.tensorboard_dir(run_dir, "A"))
    acc_a = ex.test_accuracy(model_a, data_a)
    base = [layer.name for layer in model_a.layers
            if not isinstance(layer, keras.layers.InputLayer)].index("output")
    histories: dict[str, dict] = {"A": history_a.history}
    per_seed = []
    for i, seed in enumerate(seeds):
        test_error = _TestError(data_b["x_test"], data_b["y_test"])
        _, history = ex.train_variant(
            lambda: build_mlp(spec, (28, 28), 1, name="model_B"),
            ex.classifier_compile(config.optimizer, lr, loss="binary_crossentropy"), data_b,
            seed=seed, epochs=config.epochs_b, batch_size=config.batch_size,
            callbacks=[test_error], verbose=0,
            label=f"variant {2 + 2 * i}/{total}: B from scratch, seed {seed}",
            log_dir=ex.tensorboard_dir(run_dir, f"B_scratch_s{seed}"))
        scratch = history.history["test_error"][-1]
        print(f"test error {scratch:.4f}", flush=True)
        histories[f"B_scratch_s{seed}"] = history.history

        print(f"\n=== variant {3 + 2 * i}/{total}: B on A (frozen, then fine-tuned), "
              f"seed {seed} ===", flush=True)
        keras.backend.clear_session(free_memory=False)
        set_seed(seed)
        model_b = reuse_layers(model_a, base, new_head=1, name="model_B_on_A")
        phases = fine_tune(
            model_b, (data_b["x_train"], data_b["y_train"]),
            (data_b["x_valid"], data_b["y_valid"]), base_layers=base,
            optimizer=make_optimizer(config.optimizer, learning_rate=lr), learning_rate=lr,
            frozen_epochs=config.frozen_epochs, fine_tune_epochs=config.fine_tune_epochs,
            fine_tune_lr_factor=config.fine_tune_lr_factor, loss="binary_crossentropy",
            callbacks=[EpochTimer(), test_error, *tensorboard_callbacks(
                ex.tensorboard_dir(run_dir, f"B_on_A_s{seed}"),
                (data_b["x_train"][:256], data_b["y_train"][:256]))],
            verbose=0, batch_size=config.batch_size)
        both = {k: phases["phase1"].history[k] + phases["phase2"].history.get(k, [])
                for k in phases["phase1"].history}
        frozen, tuned = both["test_error"][config.frozen_epochs - 1], both["test_error"][-1]
        print(f"test error {frozen:.4f} after the frozen phase, {tuned:.4f} after "
              "fine-tuning", flush=True)
        histories[f"B_on_A_s{seed}"] = both
        per_seed.append({"seed": seed, "scratch": scratch, "frozen": frozen,
                         "fine_tuned": tuned,
                         "scratch_train_acc": history.history["accuracy"][-1],
                         "fine_tuned_train_acc": both["accuracy"][-1]})
    per_seed = pd.DataFrame(per_seed)
    table = _summary(per_seed, config)
    figures = report.figures(run_dir, per_seed, histories, config)
    long = per_seed.melt(id_vars="seed", value_vars=list(VARIANTS), var_name="variant",
                         value_name="test_error")
    summary = seed_summary(long, "variant", report.HEADLINE_COLUMNS)
    evidence = report.evidence(summary, per_seed, seeds, seeds_why(config), config)
    return ex.finish(
        NAME, config, run_dir, started, table, title="Transfer learning on MNIST, over seeds",
        intro=report.intro(config, data_a, data_b, acc_a, seeds), histories=histories,
        figures=figures, notes=[evidence.headline, *report.notes(per_seed, config)],
        metrics={**report.metrics(per_seed, acc_a),
                 "model_A_params": count_params(model_a)["total"],
                 "model_B_on_A_params": count_params(model_b)["total"]},
        sections=[("Test error per seed", report.markdown(per_seed))], evidence=evidence)


def _summary(seeds: pd.DataFrame, config: Config) -> pd.DataFrame:
    epochs = {"scratch": config.epochs_b, "frozen": config.frozen_epochs,
              "fine_tuned": config.frozen_epochs + config.fine_tune_epochs}
    rows = []
    for v in VARIANTS:
        e = seeds[v]
        rows.append({
            "variant": v, "epochs": epochs[v], "seeds": len(e),
            "mean_error": e.mean(), "std_error": e.std(ddof=1) if len(e) > 1 else float("nan"),
            "min_error": e.min(), "max_error": e.max(),
            "beats_scratch": "" if v == "scratch" else
            f"{int((e < seeds['scratch']).sum())}/{len(e)}",
        })
    return pd.DataFrame(rows)
