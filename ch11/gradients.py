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
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from ch11._experiment import Results, cli, finish, mnist_splits, start, train_variant
from recipes import diagnostics
from recipes.activations import ACTIVATION_NAMES
from recipes.builders import build_mlp, count_params
from recipes.initializers import INITIALIZER_NAMES
from recipes.losses import make_loss
from recipes.optimizers import OPTIMIZER_NAMES, make_optimizer
from recipes.plots import activation_histograms, gradient_flow, layer_profile
from recipes.runs import save_figure
from recipes.selu import layer_statistics
from recipes.specs import MLPSpec

__all__ = ["Config", "gradient_norms", "gradient_verdict", "main", "parse_variant", "run"]

NAME = "gradients"
DEFAULT_VARIANTS = ("sigmoid:random_normal", "sigmoid:glorot_uniform", "relu:he_normal",
                    "selu:lecun_normal")
SATURATED_NET = "sigmoid:random_normal"  # the net whose activation histograms are drawn


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


@dataclass(frozen=True)
class Config:
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seed: int = field(default=42, metadata={"help": "seed, re-applied before each variant"})
    quick: bool = field(default=False, metadata={"help": "small slice, one epoch (tests)"})
    depth: int = field(default=30, metadata={"help": "hidden layers of the deep MLP"})
    units: int = field(default=100, metadata={"help": "units per hidden layer"})
    variants: tuple[str, ...] = field(
        default=DEFAULT_VARIANTS,
        metadata={"help": "'activation:initializer' pairs to compare ('random_normal' is "
                          "the chapter's bad RandomNormal(stddev=1))"})
    input_norm: str = field(
        default="normalization",
        metadata={"help": "inputs of every variant: standardized by a Normalization layer "
                          "adapted on the training set (SELU needs it; the init theory "
                          "assumes zero-mean inputs) or pixels in [0, 1]",
                  "choices": ("normalization", "none")})
    probe_size: int = field(default=1000, metadata={
        "help": "training images of the batch that measures activations and gradients"})
    epochs: int = field(default=1, metadata={"help": "training epochs after the measurement"})
    optimizer: str = field(default="momentum", metadata={
        "help": "optimizer (the book's SGD with momentum 0.9)", "choices": OPTIMIZER_NAMES})
    learning_rate: float = field(default=1e-3, metadata={"help": "learning rate"})
    batch_size: int = field(default=32, metadata={"help": "mini-batch size"})
    out_dir: str = field(default="runs", metadata={"help": "where run folders go"})

    def __post_init__(self) -> None:
        for name in ("depth", "units", "probe_size", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}.")
        if not self.variants:
            raise ValueError("variants must name at least one 'activation:initializer' pair.")
        for text in self.variants:
            parse_variant(text)


def gradient_norms(model: keras.Model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """L2 (Frobenius) norm of the loss gradient for each hidden Dense kernel, on one batch.

    The ``hidden_*`` rows of `recipes.diagnostics.gradient_norms` with the cross-entropy
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
    """The hidden kernels' norms of a `recipes.diagnostics.gradient_norms` table."""
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


def run(config: Config) -> Results:
    """Measure every variant at initialization, train it, and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per variant; per-layer values in layer_profiles.csv).
    """
    if config.quick:
        config = dataclasses.replace(config, depth=min(config.depth, 5), epochs=1,
                                     probe_size=min(config.probe_size, 500))
    run_dir, started = start(NAME, config)
    data = mnist_splits(config.quick)
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

        compile_kwargs = {
            "optimizer": make_optimizer(config.optimizer, learning_rate=config.learning_rate),
            "loss": make_loss("crossentropy"), "metrics": ["accuracy"]}
        model, history = train_variant(
            build, compile_kwargs, data, seed=config.seed, epochs=config.epochs,
            batch_size=config.batch_size,
            label=f"variant {k}/{len(config.variants)}: {activation} + {initializer}")
        histories[variant.replace(":", "_")] = history
        rows.append(_row(variant, model, history, data, profiles[-1]))

    table = pd.DataFrame(rows)
    layers = pd.concat(profiles, ignore_index=True)[
        ["variant", "layer", "depth", "mean", "std", "grad_norm", "saturated"]]
    layers.to_csv(run_dir / "layer_profiles.csv", index=False)
    figures, diagnosis = _figures(run_dir, flows, layers, saturated, config)
    return finish(NAME, config, run_dir, started, table,
                  title="Vanishing and exploding gradients on MNIST", intro=_intro(config),
                  histories=histories, figures=figures, notes=_notes(table, config),
                  metrics=_metrics(table, flows), sections=[("Diagnostics", diagnosis)])


def _row(variant: str, model: keras.Model, history, data, profile: pd.DataFrame) -> dict:
    h = history.history
    _, test_acc = model.evaluate(data["x_test"], data["y_test"], verbose=0)
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
        "val_acc": h["val_accuracy"][-1], "test_acc": test_acc,
        "s_per_epoch": sum(h["epoch_time"]) / len(h["epoch_time"]),
        "trainable": count_params(model)["trainable"],
    }


def _figures(run_dir, flows: dict[str, pd.DataFrame], layers: pd.DataFrame,
             outputs: dict[str, np.ndarray], config: Config) -> tuple[list, str]:
    """The figures, and the report's sentences on what the diagnostics' figures show."""
    save_figure(layer_profile(layers, "std", log=True, ylabel="activation std (probe batch)",
                              title=f"Hidden activations' std at initialization "
                                    f"({config.depth} layers)"),
                run_dir / "activation_std.png")
    save_figure(gradient_flow(flows, title=f"Gradient flow at initialization "
                                           f"({config.probe_size} training images)"),
                run_dir / "gradient_norm.png")
    spans = "; ".join(f"{v}: {f['grad_norm'].iloc[0]:.3g} -> {f['grad_norm'].iloc[-1]:.3g}"
                      for v, f in flows.items())
    figures = [("Activation std per hidden layer at initialization (depth 0 = next to the "
                "input)", "activation_std.png"),
               ("Gradient flow at initialization: gradient norm per kernel, input to output "
                "(log scale; a gradient of exactly 0 is not drawn)", "gradient_norm.png")]
    text = [f"[gradient_norm.png](gradient_norm.png): the loss gradient's norm per kernel at "
            f"initialization, hidden_0 -> output: {spans}."]
    if outputs:
        sat = layers[layers["variant"] == SATURATED_NET].set_index("layer")["saturated"]
        picks = np.unique(np.linspace(0, len(outputs) - 1, min(len(outputs), 8)).round())
        names = [list(outputs)[int(i)] for i in picks]
        save_figure(activation_histograms(
            {f"{n} ({sat[n]:.0%} saturated)": outputs[n] for n in names},
            title=f"{SATURATED_NET}: hidden sigmoid outputs at initialization"),
            run_dir / "saturation_histograms.png")
        figures.append((f"{SATURATED_NET}: histograms of hidden sigmoid outputs at "
                        "initialization (log counts)", "saturation_histograms.png"))
        text.append(
            f"[saturation_histograms.png](saturation_histograms.png): with RandomNormal(1) "
            f"weights the sigmoid outputs pile up near 0 and 1: {sat.iloc[0]:.0%} of "
            f"{sat.index[0]}'s outputs and {sat.iloc[-1]:.0%} of {sat.index[-1]}'s sit where "
            f"the derivative is under a tenth of its maximum (mean over the hidden layers: "
            f"{sat.mean():.0%}).")
    return figures, "\n\n".join(text)


def _metrics(table: pd.DataFrame, flows: dict[str, pd.DataFrame]) -> dict:
    metrics = {f"{r.variant.replace(':', '_')}_{c}": getattr(r, c) for r in table.itertuples()
               for c in ("grad_max_over_min", "val_acc", "test_acc")}
    return metrics | {f"{v.replace(':', '_')}_grad_output": float(f["grad_norm"].iloc[-1])
                      for v, f in flows.items()}


def _notes(table: pd.DataFrame, config: Config) -> list[str]:
    notes = []
    for _, row in table.iterrows():
        zero = (f"; {row['zero_grad_layers']} layer(s) got a gradient of exactly 0 "
                "(float32 underflow)" if row["zero_grad_layers"] else "")
        notes.append(
            f"{row['activation']} + {row['initializer']}: the gradient norms "
            f"{row['gradients']} (hidden_0: {row['grad_first']:.3g}, "
            f"hidden_{config.depth - 1}: {row['grad_last']:.3g}, largest/smallest over the "
            f"layers: {row['grad_max_over_min']:.3g}{zero}); activation std "
            f"{row['act_std_first']:.3g} in the first hidden layer, {row['act_std_last']:.3g} "
            f"in the last; validation accuracy after {config.epochs} epoch(s): "
            f"{row['val_acc']:.4f}.")
    by_variant = table.set_index("variant")
    claims = [("sigmoid:random_normal", "vanish toward the first layers"),
              ("relu:he_normal", "stay within an order of magnitude")]
    for variant, expected in claims:
        if variant in by_variant.index:
            got = by_variant.loc[variant, "gradients"]
            holds = "holds" if got == expected else "does NOT hold"
            notes.append(f"The chapter's claim that the {variant} gradients {expected}: "
                         f"{holds} in this run (measured: {got}).")
    for _, row in table[table["activation"] == "sigmoid"].iterrows():
        notes.append(
            f"{row['variant']}: {row['saturated']:.1%} of the hidden sigmoid outputs sit on "
            "the flat tails (derivative under a tenth of its maximum 1/4), where a unit "
            "passes almost no gradient back.")
    if "sigmoid:glorot_uniform" in by_variant.index:
        row = by_variant.loc["sigmoid:glorot_uniform"]
        notes.append(
            f"Sigmoid + Glorot: gradients {row['gradients']} (largest/smallest "
            f"{row['grad_max_over_min']:.3g}). Glorot keeps the variance of a unit whose "
            "derivative is about 1 (tanh near 0); the sigmoid's derivative is at most 1/4, so "
            "with this many layers the backward signal still shrinks layer after layer.")
    best, worst = table.loc[table["val_acc"].idxmax()], table.loc[table["val_acc"].idxmin()]
    notes.append(f"After {config.epochs} epoch(s) the best validation accuracy is "
                 f"{best['val_acc']:.4f} ({best['variant']}), the worst {worst['val_acc']:.4f} "
                 f"({worst['variant']}).")
    if config.quick:
        notes.append("Quick mode: a shallow net, a small slice and one epoch; the numbers only "
                     "smoke-test.")
    spread = "; ".join(f"{r.variant} {r.grad_max_over_min:.3g} ({r.gradients})"
                       for r in table.itertuples())
    notes.insert(0, f"Gradient norms at initialization, largest/smallest over the "
                    f"{config.depth} hidden layers: {spread}.")
    return notes


def _intro(config: Config) -> str:
    inputs = ("standardized by a Normalization layer adapted on the training set"
              if config.input_norm == "normalization" else "pixels scaled to [0, 1]")
    return (
        f"MLP: {config.depth} hidden layers x {config.units} units, one variant per "
        f"'activation:initializer' pair ({', '.join(config.variants)}); inputs {inputs}. "
        f"At initialization each net's activations and the gradient of the cross-entropy with "
        f"respect to every hidden kernel are measured on {config.probe_size} training images; "
        f"then it trains {config.epochs} epoch(s) with {config.optimizer} (learning rate "
        f"{config.learning_rate:g}), batch {config.batch_size}, seed {config.seed} re-applied "
        f"before each variant, on {'a slice of ' if config.quick else ''}MNIST with 5,000 "
        "training images held out for validation.")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m ch11.gradients [--quick] [--depth N] [--variants a:i ...] ...``."""
    return cli(Config, run, argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
