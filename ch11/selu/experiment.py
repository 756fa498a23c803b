"""The SELU experiment: train both deep nets, measure them, and write the run folder."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11.selu import report
from ch11.selu.config import NAME, Config
from ch11.selu.report import TRAINS_AT
from recipes.builders import build_mlp, count_params
from recipes.diagnosis.measures import gradient_norms
from recipes.losses import make_loss
from recipes.selu import build_selu_mlp, layer_statistics
from recipes.specs import MLPSpec

__all__ = ["TRAINS_AT", "run", "self_normalized"]


def self_normalized(stats: pd.DataFrame, mean_tol: float = 0.5,
                    std_range: tuple[float, float] = (0.5, 2.0)) -> bool:
    """Whether every layer's activations stay near mean 0 and std 1.

    Args:
        stats: `recipes.selu.layer_statistics` output (columns ``mean`` and ``std``).
        mean_tol: the largest allowed ``|mean|``. Defaults to `0.5`.
        std_range: the allowed ``(low, high)`` std. Defaults to `(0.5, 2.0)`.

    Returns:
        ``True`` when every layer is within both bounds.

    Reference: Klambauer et al., "Self-Normalizing Neural Networks" (2017); Géron,
    Hands-On ML (3rd ed.), ch. 11, "SELU".
    """
    std = stats["std"].to_numpy(dtype=float)
    mean = stats["mean"].to_numpy(dtype=float)
    return bool(np.all(np.isfinite(std)) and np.all(np.abs(mean) <= mean_tol)
                and np.all((std >= std_range[0]) & (std <= std_range[1])))


def _builders(config: Config, x_train: np.ndarray) -> dict:
    relu = MLPSpec.deep(config.depth, config.units, activation="relu",
                        initializer="he_normal", input_norm="normalization")
    return {
        "selu": lambda: build_selu_mlp(config.depth, config.units, (28, 28), 10,
                                       x_train=x_train),
        "relu": lambda: build_mlp(relu, (28, 28), 10, adapt_data=x_train,
                                  name=f"relu_mlp_{config.depth}x{config.units}"),
    }


def run(config: Config) -> ex.Results:
    """Train both nets and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per net).
    """
    if config.quick:
        config = dataclasses.replace(config, depth=min(config.depth, 10), epochs=1,
                                     probe_size=min(config.probe_size, 500))
    run_dir, started = ex.start(NAME, config)
    data = ex.mnist_splits(config.quick)
    x_probe, y_probe = data["x_train"][:config.probe_size], data["y_train"][:config.probe_size]
    builders = _builders(config, data["x_train"])
    rows, histories, stats = [], {}, []
    for k, (name, make) in enumerate(builders.items(), 1):
        measured = {}

        def build(make=make, name=name, measured=measured) -> keras.Model:
            model = make()
            measured["stats"] = layer_statistics(model, x_probe)
            measured["grads"] = gradient_norms(
                model, x_probe, y_probe, make_loss("crossentropy"),
                layers=ex.HIDDEN_LAYERS)["grad_norm"].to_numpy()
            stats.append(measured["stats"].assign(variant=f"{name}, initialization"))
            return model

        model, history = ex.train_variant(
            build, ex.classifier_compile(config.optimizer, config.learning_rate), data,
            seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
            label=f"variant {k}/{len(builders)}: {config.depth} x {config.units} {name}",
            log_dir=ex.tensorboard_dir(run_dir, name))
        trained = layer_statistics(model, x_probe)
        stats.append(trained.assign(variant=f"{name}, after {config.epochs} epoch(s)"))
        histories[name] = history
        rows.append(_row(name, model, history, data, measured, trained))
        outliers = _input_outliers(model, data["x_valid"])

    table = pd.DataFrame(rows)
    figures = report.figures(run_dir, histories, pd.concat(stats, ignore_index=True), config)
    return ex.finish(NAME, config, run_dir, started, table,
                     title=f"SELU vs ReLU, {config.depth} layers deep, on MNIST",
                     intro=report.intro(config), histories=histories, figures=figures,
                     notes=report.notes(table, config, outliers),
                     metrics=report.metrics(table))


def _row(name: str, model: keras.Model, history, data, measured: dict,
         trained: pd.DataFrame) -> dict:
    h = history.history
    init, grads = measured["stats"], measured["grads"]
    params = count_params(model)
    val = h["val_accuracy"][-1]
    return {
        "net": name, "initializer": "lecun_normal" if name == "selu" else "he_normal",
        "init_std_first": init["std"].iloc[0], "init_std_last": init["std"].iloc[-1],
        "init_std_min": init["std"].min(), "init_std_max": init["std"].max(),
        "init_mean_min": init["mean"].min(), "init_mean_max": init["mean"].max(),
        "init_self_normalized": self_normalized(init),
        "grad_first": grads[0], "grad_last": grads[-1],
        "grad_max_over_min": grads.max() / grads.min() if grads.min() > 0 else float("inf"),
        "trained_std_min": trained["std"].min(), "trained_std_max": trained["std"].max(),
        "val_acc_epoch1": h["val_accuracy"][0], "val_acc": val,
        "test_acc": ex.test_accuracy(model, data),
        "loss_first_epoch": h["loss"][0], "loss_last_epoch": h["loss"][-1],
        "trains": bool(np.isfinite(val) and val >= TRAINS_AT),
        "s_per_epoch": sum(h["epoch_time"]) / len(h["epoch_time"]),
        "trainable": params["trainable"], "non_trainable": params["non_trainable"],
    }


def _input_outliers(model: keras.Model, x: np.ndarray) -> tuple[int, float, int]:
    """(images with a standardized input beyond 10 std, the largest |value|, images)."""
    z = keras.ops.convert_to_numpy(
        model.get_layer("input_normalization")(x.reshape(len(x), -1)))
    top = np.abs(z).max(axis=1)
    return int((top > 10).sum()), float(top.max()), len(x)
