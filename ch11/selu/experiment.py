"""The SELU experiment: train both deep nets (over seeds), investigate when a deep SELU net
trains, and write the run folder."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11._config import headline_seeds, seeds_why
from ch11._evidence import seed_summary, spread_figure
from ch11.selu import report
from ch11.selu.config import NAME, Config
from ch11.selu.report import INVESTIGATION, TRAINS_AT
from recipes.builders import build_mlp, count_params
from recipes.diagnosis.measures import gradient_norms
from recipes.losses import make_loss
from recipes.selu import build_selu_mlp, layer_statistics
from recipes.specs import MLPSpec

__all__ = ["TRAINS_AT", "input_profile", "run", "self_normalized"]


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


def input_profile(x: np.ndarray, limit: float = 10.0) -> dict[str, float]:
    """What standardizing each pixel does to a set of images.

    Args:
        x: images in [0, 1], shape (N, ...).
        limit: the standardized value counted as an outlier. Defaults to `10.0`.

    Returns:
        ``pixels``, ``constant_pixels`` (std 0), ``tiny_std_pixels`` (std < 0.01),
        ``global_std`` (all pixels' std), ``max_z`` (the largest |standardized value|, the
        std floored at 1e-7 as Keras's Normalization does), ``images`` and
        ``images_beyond`` (images with a pixel beyond `limit` std), and ``max_z_floored``
        (the same with each pixel's std floored at ``global_std``).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "SELU" (standardized inputs).
    """
    flat = np.asarray(x, dtype="float64").reshape(len(x), -1)
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    z = np.abs(flat - mean) / np.maximum(std, 1e-7)
    top = z.max(axis=1)
    floored = np.abs(flat - mean) / np.maximum(std, flat.std())
    return {"pixels": flat.shape[1], "constant_pixels": int(np.sum(std == 0)),
            "tiny_std_pixels": int(np.sum(std < 0.01)), "global_std": float(flat.std()),
            "max_z": float(top.max()), "images": len(flat),
            "images_beyond": int(np.sum(top > limit)), "limit": limit,
            "max_z_floored": float(floored.max())}


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
    """Train both nets over the seeds, run the investigation and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per net, at ``config.seed``).
    """
    if config.quick:
        config = dataclasses.replace(config, depth=min(config.depth, 10), epochs=1,
                                     probe_size=min(config.probe_size, 500),
                                     investigate_train=min(config.investigate_train, 500),
                                     trace_every=min(config.trace_every, 5))
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
    seeds = headline_seeds(config)
    per_seed = ex.over_seeds(seeds, config.seed, [_seed_row(r) for r in rows],
                             lambda s: _rerun(config, builders, data, s))
    summary = seed_summary(per_seed, "net", report.HEADLINE_COLUMNS)
    evidence = report.evidence(summary, per_seed, seeds, seeds_why(config), config)
    figures.append(spread_figure(run_dir, per_seed, "net", ["val_acc_epoch1", "val_acc"],
                                 f"{config.depth}-layer nets: validation accuracy per seed"))
    profile = input_profile(data["x_train"])
    sections = []
    if config.investigate:
        runs, trace = _investigate(config, data)
        trace.to_csv(run_dir / "investigation_trace.csv", index=False)
        figures += report.trace_figures(run_dir, trace, config)
        sections.append(("When does a deep SELU net train on MNIST?",
                         report.investigation_section(runs, trace, profile, config)))
    notes = [evidence.headline, *report.notes(table, config, outliers, profile)]
    return ex.finish(NAME, config, run_dir, started, table,
                     title=f"SELU vs ReLU, {config.depth} layers deep, on MNIST",
                     intro=report.intro(config), histories=histories, figures=figures,
                     notes=notes, metrics=report.metrics(table), sections=sections,
                     evidence=evidence)


def _seed_row(row: Mapping) -> dict:
    return {"net": row["net"], **{c: row[c] for c in report.HEADLINE_COLUMNS}}


def _rerun(config: Config, builders: dict, data: dict, seed: int) -> list[dict]:
    """Both nets again with another seed: their validation accuracies."""
    rows = []
    for name, make in builders.items():
        _, history = ex.train_variant(
            make, ex.classifier_compile(config.optimizer, config.learning_rate), data,
            seed=seed, epochs=config.epochs, batch_size=config.batch_size,
            label=f"seed {seed}: {config.depth} x {config.units} {name}")
        h = history.history
        rows.append({"net": name, "val_acc_epoch1": h["val_accuracy"][0],
                     "val_acc": h["val_accuracy"][-1]})
    return rows


class _LayerTrace(keras.callbacks.Callback):
    """Every `every` steps, each hidden activation's mean and std on a fixed batch."""

    def __init__(self, x: np.ndarray, every: int) -> None:
        super().__init__()
        self.x, self.every, self.step, self.rows = x, every, 0, []

    def on_train_begin(self, logs: dict | None = None) -> None:
        names = [layer.name for layer in self.model.layers if layer.name.startswith("act_")]
        inputs = self.model.inputs[0] if len(self.model.inputs) == 1 else self.model.inputs
        self.probe = keras.Model(inputs, [self.model.get_layer(n).output for n in names])
        self._record(float("nan"))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step += 1
        if self.step % self.every == 0:
            self._record((logs or {}).get("loss", float("nan")))

    def _record(self, loss: float) -> None:
        outputs = self.probe(self.x, training=False)
        for depth, out in enumerate(outputs):
            values = keras.ops.convert_to_numpy(out).astype("float64")
            self.rows.append({"step": self.step, "depth": depth, "mean": values.mean(),
                              "std": values.std(), "loss": float(loss)})


def _investigate(config: Config, data: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The SELU net for one epoch on a subset under each condition of `INVESTIGATION`."""
    subset = ex.train_subset(data, config.investigate_train)
    x = data["x_train"]
    mean, std = x.mean(axis=0), x.std(axis=0)
    floor = float(x.std())
    floored = {k: (v - mean) / np.maximum(std, floor) if k.startswith("x_") else v
               for k, v in subset.items()}
    probe = data["x_train"][:256]
    runs, traces = [], []
    raw = MLPSpec.deep(config.depth, config.units, activation="selu",
                       initializer="lecun_normal", input_norm="none")
    for k, (label, optimizer, rate, inputs, dropout) in enumerate(INVESTIGATION, 1):

        def build(inputs: str = inputs, dropout: float = dropout) -> keras.Model:
            if inputs == "floored":  # standardized outside the model, the std floored
                return build_mlp(raw, (28, 28), 10)
            return build_selu_mlp(config.depth, config.units, (28, 28), 10, x_train=x,
                                  alpha_dropout=dropout)

        train, x_probe = (floored, (probe - mean) / np.maximum(std, floor)) \
            if inputs == "floored" else (subset, probe)
        trace = _LayerTrace(x_probe, config.trace_every)
        _, history = ex.train_variant(
            build, ex.classifier_compile(optimizer, rate), train, seed=config.seed, epochs=1,
            batch_size=config.batch_size, callbacks=[trace, keras.callbacks.TerminateOnNaN()],
            label=f"investigation {k}/{len(INVESTIGATION)}: SELU, {label}")
        h = history.history
        runs.append({"condition": label, "optimizer": optimizer, "learning_rate": rate,
                     "inputs": inputs, "alpha_dropout": dropout, "steps": trace.step,
                     "loss": h["loss"][-1],
                     "val_acc": h["val_accuracy"][-1] if "val_accuracy" in h else float("nan")})
        traces.append(pd.DataFrame(trace.rows).assign(condition=label))
    return pd.DataFrame(runs), pd.concat(traces, ignore_index=True)


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
