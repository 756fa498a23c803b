"""The gradients experiment: measure every variant at initialization, train it, and write
the run folder."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11._config import headline_seeds, parse_variant, seeds_why
from ch11._evidence import seed_summary, spread_figure
from ch11.gradients import report
from ch11.gradients.config import NAME, Config
from ch11.gradients.report import SATURATED_NET, gradient_verdict
from recipes.builders import build_mlp, count_params
from recipes.diagnosis.measures import gradient_norms, layer_outputs
from recipes.losses import make_loss
from recipes.selu import layer_statistics
from recipes.specs import MLPSpec

__all__ = ["gradient_verdict", "run"]


def _saturation(outputs: dict[str, np.ndarray], activation: str) -> np.ndarray:
    """Per hidden layer, the fraction of sigmoid outputs on the flat tails (NaN otherwise)."""
    if activation != "sigmoid":
        return np.full(len(outputs), np.nan)
    # sigma'(z) = s (1 - s) < 0.025, a tenth of its maximum: s < 0.026 or s > 0.974.
    return np.array([float(np.mean(o * (1 - o) < 0.025)) for o in outputs.values()])


def _profile(model: keras.Model, x: np.ndarray, y: np.ndarray,
             variant: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
    """(per hidden layer: mean, std, grad norm, saturation; every kernel's gradient norms;
    the hidden activations) of a freshly built net."""
    loss = make_loss("crossentropy")
    grads = gradient_norms(model, x, y, loss)  # every kernel, output included: the flow
    hidden = gradient_norms(model, x, y, loss, layers=ex.HIDDEN_LAYERS)
    names = [layer.name for layer in model.layers if layer.name.startswith("act_")]
    outputs = layer_outputs(model, x, names)
    stats = layer_statistics(model, x)
    stats["grad_norm"] = hidden["grad_norm"].to_numpy()
    stats["saturated"] = _saturation(outputs, parse_variant(variant)[0])
    return stats.assign(variant=variant), grads, outputs


def run(config: Config) -> ex.Results:
    """Measure every variant at initialization, train it, and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per variant; per-layer values in layer_profiles.csv).
    """
    if config.quick:
        config = dataclasses.replace(config, depth=min(config.depth, 5), epochs=1,
                                     probe_size=min(config.probe_size, 500))
    run_dir, started = ex.start(NAME, config)
    data = ex.mnist_splits(config.quick)
    x_probe, y_probe = data["x_train"][:config.probe_size], data["y_train"][:config.probe_size]
    rows, histories, profiles, flows, saturated = [], {}, [], {}, {}
    for k, variant in enumerate(config.variants, 1):
        activation, initializer = parse_variant(variant)
        spec = MLPSpec.deep(config.depth, config.units, activation=activation,
                            initializer=initializer, input_norm=config.input_norm)

        def build(spec: MLPSpec = spec, variant: str = variant) -> keras.Model:
            # Measured inside the build, so the profile is of the very weights that train.
            model = build_mlp(spec, (28, 28), 10, adapt_data=data["x_train"])
            stats, flows[variant], outputs = _profile(model, x_probe, y_probe, variant)
            profiles.append(stats)
            if variant == SATURATED_NET:
                saturated.update(outputs)
            return model

        model, history = ex.train_variant(
            build, ex.classifier_compile(config.optimizer, config.learning_rate), data,
            seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
            label=f"variant {k}/{len(config.variants)}: {activation} + {initializer}",
            log_dir=ex.tensorboard_dir(run_dir, variant.replace(":", "_")))
        histories[variant.replace(":", "_")] = history
        rows.append(_row(variant, model, history, data, profiles[-1]))

    table = pd.DataFrame(rows)
    layers = pd.concat(profiles, ignore_index=True)[
        ["variant", "layer", "depth", "mean", "std", "grad_norm", "saturated"]]
    layers.to_csv(run_dir / "layer_profiles.csv", index=False)
    figures, diagnosis = report.figures(run_dir, flows, layers, saturated, config)
    seeds = headline_seeds(config)
    main_rows = [report.seed_values(r["variant"], p["grad_norm"].to_numpy(), r["val_acc"])
                 for r, p in zip(rows, profiles)]
    per_seed = ex.over_seeds(seeds, config.seed, main_rows,
                             lambda s: _rerun(config, data, x_probe, y_probe, s))
    summary = seed_summary(per_seed, "variant", report.HEADLINE_COLUMNS)
    evidence = report.evidence(summary, per_seed, seeds, seeds_why(config), config)
    figures.append(spread_figure(run_dir, per_seed, "variant", ["val_acc"],
                                 f"Validation accuracy after {config.epochs} epoch(s), per seed"))
    return ex.finish(NAME, config, run_dir, started, table,
                     title="Vanishing and exploding gradients on MNIST",
                     intro=report.intro(config), histories=histories, figures=figures,
                     notes=[evidence.headline, *report.notes(table, config)],
                     metrics=report.metrics(table, flows),
                     sections=[("Diagnostics", diagnosis)], evidence=evidence)


def _rerun(config: Config, data: dict, x: np.ndarray, y: np.ndarray, seed: int) -> list[dict]:
    """Every variant again with another seed: its gradients at initialization, then trained."""
    rows = []
    for variant in config.variants:
        activation, initializer = parse_variant(variant)
        spec = MLPSpec.deep(config.depth, config.units, activation=activation,
                            initializer=initializer, input_norm=config.input_norm)
        measured = {}

        def build(spec: MLPSpec = spec, measured: dict = measured) -> keras.Model:
            model = build_mlp(spec, (28, 28), 10, adapt_data=data["x_train"])
            measured["norms"] = gradient_norms(model, x, y, make_loss("crossentropy"),
                                               layers=ex.HIDDEN_LAYERS)["grad_norm"].to_numpy()
            return model

        _, history = ex.train_variant(
            build, ex.classifier_compile(config.optimizer, config.learning_rate), data,
            seed=seed, epochs=config.epochs, batch_size=config.batch_size,
            label=f"seed {seed}: {activation} + {initializer}")
        rows.append(report.seed_values(variant, measured["norms"],
                                       history.history["val_accuracy"][-1]))
    return rows


def _row(variant: str, model: keras.Model, history, data, profile: pd.DataFrame) -> dict:
    h = history.history
    grads = profile["grad_norm"].to_numpy()
    activation, initializer = parse_variant(variant)
    return {
        "variant": variant, "activation": activation, "initializer": initializer,
        "act_std_first": profile["std"].iloc[0], "act_std_last": profile["std"].iloc[-1],
        "grad_first": grads[0], "grad_last": grads[-1],
        "grad_max_over_min": grads.max() / grads.min() if grads.min() > 0 else float("inf"),
        "zero_grad_layers": int(np.sum(grads == 0)),
        "gradients": gradient_verdict(grads),
        "saturated": profile["saturated"].mean(),
        "val_acc": h["val_accuracy"][-1], "test_acc": ex.test_accuracy(model, data),
        "s_per_epoch": sum(h["epoch_time"]) / len(h["epoch_time"]),
        "trainable": count_params(model)["trainable"],
    }
