"""Skip connections in a very deep MLP: per-layer gradient norms with and without them.

Hands-On ML, chapter 11, "The Vanishing/Exploding Gradients Problems" and "Batch
Normalization", with the residual connections of chapter 14 ("ResNet") applied to a
50-layer MLP. The same deep MLP is built with and without identity skip connections
around every hidden layer (``MLPSpec(residual=True)``) and with and without batch norm,
for each activation; from the same seed. The run measures the norm of the loss gradient
for every hidden kernel at initialization and after one epoch of plain SGD, the loss at
initialization, and the accuracy.

Run: ``python -m ch11.residual`` (``make recipe-residual``), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11._text import mnist_text, quick_note
from recipes.activations import ACTIVATION_NAMES
from recipes.builders import build_mlp, count_params
from recipes.diagnosis.measures import gradient_norms
from recipes.losses import make_loss
from recipes.runs import save_figure
from recipes.specs import BATCH_NORM_CHOICES, MLPSpec

__all__ = ["Config", "hidden_gradient_norms", "main", "run"]

NAME = "residual"
_HUGE = 1e3  # a gradient norm above this is called exploding


@dataclass(frozen=True)
class Config(ex.ExperimentConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    quick: bool = ex.option(False, "shallow net, small slice (tests)")
    depth: int = ex.option(50, "hidden layers of the deep MLP")
    units: int = ex.option(100, "units per hidden layer")
    activations: tuple[str, ...] = ex.option(
        ("sigmoid", "relu"), "hidden activations to compare (each with its 'auto' initializer: "
                             "Glorot for sigmoid, He for ReLU)", ACTIVATION_NAMES)
    batch_norms: tuple[str, ...] = ex.option(
        ("none", "before"), "batch-norm placements to cross with plain/residual",
        BATCH_NORM_CHOICES)
    probe_size: int = ex.option(1000, "training images of the batch that measures the gradients")
    epochs: int = ex.option(1, "training epochs")
    optimizer: str = ex.optimizer_option(
        "sgd", "optimizer (plain SGD: a step is proportional to the gradient, so vanishing "
               "gradients show)")
    learning_rate: float = ex.option(0.01, "learning rate")
    batch_size: int = ex.option(32, "mini-batch size")
    out_dir: str = ex.out_dir_option()

    def __post_init__(self) -> None:
        self._at_least(1, "depth", "units", "probe_size", "epochs", "batch_size")
        self._positive("learning_rate")
        if not self.activations or not self.batch_norms:
            raise ValueError("activations and batch_norms must name at least one value each.")
        for a in self.activations:
            if a not in ACTIVATION_NAMES:
                raise ValueError(f"Unknown activation {a!r}. Valid: {', '.join(ACTIVATION_NAMES)}.")
        for b in self.batch_norms:
            if b not in BATCH_NORM_CHOICES:
                raise ValueError(f"Unknown batch_norm {b!r}. "
                                 f"Valid: {', '.join(BATCH_NORM_CHOICES)}.")


def hidden_gradient_norms(model: keras.Model, x: np.ndarray,
                          y: np.ndarray) -> tuple[np.ndarray, float]:
    """The loss gradient's L2 norm for each hidden Dense kernel, and the loss, on one batch.

    The ``hidden_*`` rows of `recipes.diagnosis.measures.gradient_norms` with the cross-entropy:
    the forward pass runs in training mode, so batch norm uses the batch's statistics, as
    it does during a training step; its moving statistics are put back afterwards, so the
    model is left unchanged.

    Args:
        model: a model from `recipes.builders.build_mlp` (layers ``hidden_0`` ...).
        x: a batch of inputs.
        y: its integer labels.

    Returns:
        ``(norms, loss)``: one norm per hidden layer, input side first (NaN where the
        gradient is not finite), and the batch's cross-entropy.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "The Vanishing/Exploding Gradients
    Problems".
    """
    grads = gradient_norms(model, x, y, make_loss("crossentropy"))
    hidden = grads["layer"].str.fullmatch(r"hidden_\d+")
    return grads.loc[hidden, "grad_norm"].to_numpy(), grads.attrs["loss"]


def _name(activation: str, residual: bool, bn: str) -> str:
    return (f"{activation} {'residual' if residual else 'plain'}"
            + ("" if bn == "none" else f" + BN {bn}"))


def run(config: Config) -> ex.Results:
    """Measure and train every variant and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per variant; per-layer norms in layer_gradients.csv).
    """
    if config.quick:
        config = dataclasses.replace(config, depth=min(config.depth, 6), epochs=1,
                                     probe_size=min(config.probe_size, 200))
    run_dir, started = ex.start(NAME, config)
    data = ex.mnist_splits(config.quick)
    x_probe, y_probe = data["x_train"][:config.probe_size], data["y_train"][:config.probe_size]
    plan = [(a, r, b) for a in config.activations for r in (False, True)
            for b in config.batch_norms]
    rows, histories, layers = [], {}, []
    for k, (activation, residual, bn) in enumerate(plan, 1):
        name = _name(activation, residual, bn)
        spec = MLPSpec.deep(config.depth, config.units, activation=activation,
                            residual=residual, batch_norm=bn)
        init = {}

        def build(spec: MLPSpec = spec, init: dict = init) -> keras.Model:
            model = build_mlp(spec, (28, 28), 10)
            init["norms"], init["loss"] = hidden_gradient_norms(model, x_probe, y_probe)
            return model

        model, history = ex.train_variant(
            build, ex.classifier_compile(config.optimizer, config.learning_rate), data,
            seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
            callbacks=[keras.callbacks.TerminateOnNaN()],
            label=f"variant {k}/{len(plan)}: {name}")
        after, after_loss = hidden_gradient_norms(model, x_probe, y_probe)
        histories[name.replace(" + ", "_").replace(" ", "_")] = history
        for when, norms in (("initialization", init["norms"]), ("after training", after)):
            layers.append(pd.DataFrame({"variant": name, "activation": activation,
                                        "when": when, "depth": np.arange(len(norms)),
                                        "grad_norm": norms}))
        rows.append(_row(name, activation, residual, bn, init, after, after_loss, model,
                         history, data))

    table = pd.DataFrame(rows)
    profile = pd.concat(layers, ignore_index=True)
    profile.to_csv(run_dir / "layer_gradients.csv", index=False)
    figures = _figures(run_dir, profile, config)
    notes = _notes(table, config)
    return ex.finish(NAME, config, run_dir, started, table,
                     title=f"Skip connections in a {config.depth}-layer MLP on MNIST",
                     intro=_intro(config), histories=histories, figures=figures, notes=notes,
                     metrics=_metrics(table))


def _ratio(norms: np.ndarray) -> float:
    return float(norms[0] / norms[-1]) if norms[-1] > 0 else float("nan")


def _row(name, activation, residual, bn, init, after, after_loss, model, history,
         data) -> dict:
    h = history.history
    init_norms = init["norms"]
    params = count_params(model)
    finite = np.isfinite(after_loss) and np.all(np.isfinite(after))
    return {
        "variant": name, "activation": activation, "residual": residual, "batch_norm": bn,
        "init_loss": init["loss"], "grad_first_init": init_norms[0],
        "grad_last_init": init_norms[-1], "grad_max_init": float(np.max(init_norms)),
        "first_over_last_init": _ratio(init_norms),
        "zero_grad_layers_init": int(np.sum(init_norms == 0)),
        "first_over_last_after": _ratio(after) if finite else float("nan"),
        "diverged": not finite or not np.isfinite(h["loss"][-1]),
        "val_acc": h["val_accuracy"][-1] if "val_accuracy" in h else float("nan"),
        "test_acc": ex.test_accuracy(model, data), "s_per_epoch": float(np.mean(h["epoch_time"]))
        if h.get("epoch_time") else float("nan"),
        "trainable": params["trainable"], "non_trainable": params["non_trainable"],
    }


def _figures(run_dir, profile: pd.DataFrame, config: Config) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt

    out = []
    for activation in config.activations:
        part = profile[profile["activation"] == activation]
        fig, axes = plt.subplots(1, 2, figsize=(13, 4), sharey=True)
        for ax, when in zip(axes, ("initialization", "after training")):
            for name, rows in part[part["when"] == when].groupby("variant", sort=False):
                values = rows["grad_norm"].where(rows["grad_norm"] > 0)  # log axis: no 0/NaN
                ax.plot(rows["depth"], values, marker=".", label=name)
            ax.set_yscale("log")
            ax.set_xlabel("hidden layer (0 = next to the input)")
            ax.set_title(f"{when}" + (f" ({config.epochs} epoch(s))"
                                      if when == "after training" else ""))
            ax.grid(alpha=0.3, which="both")
        axes[0].set_ylabel("||dLoss / dKernel|| (probe batch)")
        axes[0].legend(fontsize=8)
        fig.suptitle(f"{activation}: gradient norm per hidden layer, {config.depth} layers")
        fig.tight_layout()
        file = f"gradients_{activation}.png"
        save_figure(fig, run_dir / file)
        out.append((f"{activation}: gradient norm per hidden kernel (log scale; a layer whose "
                    "gradient is 0 or not finite is not drawn)", file))
    return out


def _verdict(row: pd.Series) -> str:
    ratio, zeros, top = (row["first_over_last_init"], row["zero_grad_layers_init"],
                         row["grad_max_init"])
    if not np.isfinite(top):
        return "are not finite"
    if top > _HUGE:
        return f"explode, norms up to {top:.3g},"
    if zeros > 0 or ratio < 0.1:
        return "vanish toward the input" + (f", {zeros} layers getting exactly 0," if zeros else "")
    if ratio > 10:
        return "grow toward the input"
    return "stay within 10x end to end"


def _notes(table: pd.DataFrame, config: Config) -> list[str]:
    notes = []
    t = table.set_index("variant")
    last = f"hidden_{config.depth - 1}"
    for activation in config.activations:
        for bn in config.batch_norms:
            plain, res = _name(activation, False, bn), _name(activation, True, bn)
            p, r = t.loc[plain], t.loc[res]
            exploding_bn = bn != "none" and _verdict(p).startswith("explode")
            notes.append(
                f"{activation}, {'no BN' if bn == 'none' else 'BN ' + bn}: at initialization "
                f"the plain net's gradients {_verdict(p)} (hidden_0 / {last} = "
                f"{p['first_over_last_init']:.3g}); with skip connections they {_verdict(r)} "
                f"({r['first_over_last_init']:.3g}). Test accuracy after {config.epochs} "
                f"epoch(s): {p['test_acc']:.4f} plain vs {r['test_acc']:.4f} residual"
                + (" (the residual net diverged)" if r["diverged"] else "")
                + (" (the plain net diverged)" if p["diverged"] else "")
                + ("; a deep stack of BN layers makes gradients explode at initialization "
                   "(Yang et al., 2019)" if exploding_bn else "") + ".")
            if r["init_loss"] > 10 * max(p["init_loss"], 1e-12):
                notes.append(
                    f"{res} starts with a loss of {r['init_loss']:.3g} ({plain}: "
                    f"{p['init_loss']:.3g}): each block adds its output to its input, so the "
                    "signal's scale grows with depth and the logits blow up"
                    + ("; ResNets put BN in every block (or scale the branches down at "
                       "initialization) to stop it." if bn == "none" else
                       "; here BN normalizes each branch but not the sum, which still grows."))
    for activation in config.activations:
        part = table[table["activation"] == activation].set_index("variant")["test_acc"]
        notes.append(f"{activation}, test accuracy after {config.epochs} epoch(s): "
                     + ", ".join(f"{v} {a:.4f}" for v, a in part.items())
                     + f"; best: {part.idxmax()}.")
    diverged = table.loc[table["diverged"], "variant"].tolist()
    if diverged:
        notes.append(f"Diverged (loss or gradients not finite): {', '.join(diverged)}.")
    if config.quick:
        notes.append(quick_note("a shallow net, a small slice and one epoch"))
    return notes


def _metrics(table: pd.DataFrame) -> dict:
    key = {r.variant: r.variant.replace(" + ", "_").replace(" ", "_")
           for r in table.itertuples()}
    return {f"{key[r.variant]}_{c}": getattr(r, c) for r in table.itertuples()
            for c in ("first_over_last_init", "test_acc")}


def _intro(config: Config) -> str:
    return (
        f"MLP: {config.depth} hidden layers x {config.units} units; 'residual' adds the "
        "layer's input to its output (Dense -> [BN] -> activation -> Add) for every hidden "
        "layer after the first (`MLPSpec(residual=True)`); 'BN before' = Dense without bias "
        "-> BN -> activation. Initializers from the recipes' 'auto' table. Gradient norms "
        f"of the cross-entropy on {config.probe_size} training images (training mode), at "
        f"initialization and after {config.epochs} epoch(s) of {config.optimizer} at "
        f"{config.learning_rate:g}, batch {config.batch_size}, seed {config.seed} re-applied "
        f"before each variant, {mnist_text(config.quick, ' (pixels in [0, 1])')}. A run that "
        "produces a NaN loss stops there (TerminateOnNaN).")


main = ex.make_main(Config, run, __doc__,
                    "python -m ch11.residual [--quick] [--depth N] [--activations a ...] ...")


if __name__ == "__main__":
    raise SystemExit(main())
