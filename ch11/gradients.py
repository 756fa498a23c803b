"""Vanishing and exploding gradients: per-layer signal and gradients of a deep MLP at init.

Hands-On ML, chapter 11, "The Vanishing/Exploding Gradients Problems" (figure 11-1) and
"Glorot and He Initialization". A deep MLP (30 hidden layers of 100 units) is built four
ways: sigmoid with the bad ``RandomNormal(stddev=1)`` weights of the chapter's opening,
sigmoid with Glorot, ReLU with He and SELU with LeCun. At initialization the run measures
every hidden layer's activation std and the norm of the loss gradient with respect to its
kernel (one batch of training images); then each net trains for one epoch from those same
weights. Plots: layer vs activation std, the gradient flow (layer vs gradient norm, log
scale, `recipes.plots.gradient_flow`) and the sigmoid + RandomNormal(1) net's activation
histograms per layer (`recipes.plots.activation_histograms`), where saturation shows.

Run: ``python -m ch11.gradients`` (``make recipe-gradients``), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11 import _gradients_report as report
from ch11._gradients_report import SATURATED_NET
from recipes.activations import ACTIVATION_NAMES
from recipes.builders import build_mlp, count_params
from recipes.diagnosis import measures as diagnostics
from recipes.initializers import INITIALIZER_NAMES
from recipes.losses import make_loss
from recipes.selu import layer_statistics
from recipes.specs import MLPSpec

__all__ = ["Config", "gradient_norms", "gradient_verdict", "main", "parse_variant",
           "parse_variants", "run"]

NAME = "gradients"
DEFAULT_VARIANTS = ("sigmoid:random_normal", "sigmoid:glorot_uniform", "relu:he_normal",
                    "selu:lecun_normal")


def parse_variant(text: str) -> tuple[str, str]:
    """Split an ``"activation:initializer"`` variant and check both names.

    Args:
        text: e.g. ``"relu:he_normal"``.

    Returns:
        ``(activation, initializer)``.

    Raises:
        ValueError: if the text has no single ``:`` or a name is unknown.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, Table 11-1.
    """
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"Variant {text!r} must look like 'activation:initializer', "
                         "e.g. 'relu:he_normal'.")
    activation, initializer = parts
    if activation not in ACTIVATION_NAMES:
        raise ValueError(f"Unknown activation {activation!r} in variant {text!r}. "
                         f"Valid: {', '.join(ACTIVATION_NAMES)}.")
    if initializer not in INITIALIZER_NAMES:
        raise ValueError(f"Unknown initializer {initializer!r} in variant {text!r}. "
                         f"Valid: {', '.join(INITIALIZER_NAMES)}.")
    return activation, initializer


def parse_variants(texts: Sequence[str]) -> list[tuple[str, str]]:
    """`parse_variant` for each of a non-empty list of variants.

    Args:
        texts: e.g. ``("sigmoid:glorot_uniform", "relu:he_normal")``.

    Returns:
        One ``(activation, initializer)`` per variant, in order.

    Raises:
        ValueError: if `texts` is empty, or as `parse_variant`.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, Table 11-1.
    """
    if not texts:
        raise ValueError("variants must name at least one 'activation:initializer' pair.")
    return [parse_variant(text) for text in texts]


@dataclass(frozen=True)
class Config(ex.ExperimentConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    depth: int = ex.option(30, "hidden layers of the deep MLP")
    units: int = ex.option(100, "units per hidden layer")
    variants: tuple[str, ...] = ex.option(
        DEFAULT_VARIANTS, "'activation:initializer' pairs to compare ('random_normal' is the "
                          "chapter's bad RandomNormal(stddev=1))")
    input_norm: str = ex.input_norm_option(
        "SELU needs it; the init theory assumes zero-mean inputs")
    probe_size: int = ex.option(
        1000, "training images of the batch that measures activations and gradients")
    epochs: int = ex.option(1, "training epochs after the measurement")
    optimizer: str = ex.optimizer_option("momentum", "optimizer (the book's SGD with momentum 0.9)")
    learning_rate: float = ex.option(1e-3, "learning rate")
    batch_size: int = ex.option(32, "mini-batch size")
    out_dir: str = ex.out_dir_option()

    def __post_init__(self) -> None:
        self._at_least(1, "depth", "units", "probe_size", "epochs", "batch_size")
        self._positive("learning_rate")
        parse_variants(self.variants)


def gradient_norms(model: keras.Model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """L2 (Frobenius) norm of the loss gradient for each hidden Dense kernel, on one batch.

    The ``hidden_*`` rows of `recipes.diagnosis.measures.gradient_norms` with the cross-entropy
    (training mode; batch-norm statistics are left unchanged).

    Args:
        model: a model from `recipes.builders.build_mlp` (layers ``hidden_0`` ...).
        x: a batch of inputs.
        y: its integer labels.

    Returns:
        One norm per hidden layer, input side first.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "The Vanishing/Exploding Gradients
    Problems".
    """
    return _hidden(diagnostics.gradient_norms(model, x, y, make_loss("crossentropy")))


def _hidden(grads: pd.DataFrame) -> np.ndarray:
    """The hidden kernels' norms of a `recipes.diagnosis.measures.gradient_norms` table."""
    return grads.loc[grads["layer"].str.fullmatch(r"hidden_\d+"), "grad_norm"].to_numpy()


def gradient_verdict(norms: Sequence[float], factor: float = 10.0) -> str:
    """Say whether per-layer gradient norms vanish, explode or stay level.

    The norms "stay within an order of magnitude" when the largest is at most
    `factor` times the smallest. Otherwise the median of the first third of the layers
    (input side) is compared with the median of the last third: smaller means the
    gradients vanish toward the first layers, larger that they explode toward them.

    Args:
        norms: one gradient norm per layer, input side first.
        factor: the spread that counts as level. Defaults to `10.0` (an order of magnitude).

    Returns:
        ``"stay within an order of magnitude"``, ``"vanish toward the first layers"`` or
        ``"explode toward the first layers"``.

    Raises:
        ValueError: if `norms` is empty or has a negative or non-finite value.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "The Vanishing/Exploding Gradients
    Problems".
    """
    norms = np.asarray(norms, dtype="float64")
    if norms.size == 0 or not np.all(np.isfinite(norms)) or np.any(norms < 0):
        raise ValueError(f"norms must be finite and >= 0, one per layer; got {norms.tolist()}.")
    if norms.min() > 0 and norms.max() <= factor * norms.min():
        return "stay within an order of magnitude"
    third = max(1, len(norms) // 3)
    first, last = np.median(norms[:third]), np.median(norms[-third:])
    return "vanish toward the first layers" if first < last else "explode toward the first layers"


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
    grads = diagnostics.gradient_norms(model, x, y, make_loss("crossentropy"))
    names = [layer.name for layer in model.layers if layer.name.startswith("act_")]
    outputs = diagnostics.layer_outputs(model, x, names)
    stats = layer_statistics(model, x)
    stats["grad_norm"] = _hidden(grads)
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
            label=f"variant {k}/{len(config.variants)}: {activation} + {initializer}")
        histories[variant.replace(":", "_")] = history
        rows.append(_row(variant, model, history, data, profiles[-1]))

    table = pd.DataFrame(rows)
    layers = pd.concat(profiles, ignore_index=True)[
        ["variant", "layer", "depth", "mean", "std", "grad_norm", "saturated"]]
    layers.to_csv(run_dir / "layer_profiles.csv", index=False)
    figures, diagnosis = report.figures(run_dir, flows, layers, saturated, config)
    return ex.finish(NAME, config, run_dir, started, table,
                     title="Vanishing and exploding gradients on MNIST",
                     intro=report.intro(config), histories=histories, figures=figures,
                     notes=report.notes(table, config), metrics=report.metrics(table, flows),
                     sections=[("Diagnostics", diagnosis)])


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


main = ex.make_main(Config, run, __doc__,
                    "python -m ch11.gradients [--quick] [--depth N] [--variants a:i ...] ...")


if __name__ == "__main__":
    raise SystemExit(main())
