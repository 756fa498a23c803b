"""Weight initialization: Glorot vs He vs LeCun vs fan_avg He, matched and mismatched.

Hands-On ML, chapter 11, "Glorot and He Initialization" (Table 11-1). Each initializer
trains the same deep MLP twice: with the activation the chapter's table pairs it with,
and with a mismatched one (Glorot: tanh / ReLU; He: ReLU / tanh; LeCun: SELU / ReLU; the
book's ``VarianceScaling(scale=2, mode="fan_avg", distribution="uniform")``, here
``he_avg_uniform``: ReLU / SELU). The run reports learning curves, accuracy after the
first and the last epoch, and the spread of the last hidden layer's activations at
initialization, which tells whether the initializer kept the signal alive.

Run: ``python -m ch11.initialization`` (``make recipe-init``), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import keras
import pandas as pd

from ch11 import _experiment as ex
from ch11._text import inputs_text, mnist_text, quick_note
from ch11.gradients import parse_variant, parse_variants
from recipes.builders import build_mlp
from recipes.initializers import recommended_initializer
from recipes.plots import layer_profile, learning_curves
from recipes.runs import save_figure
from recipes.selu import layer_statistics
from recipes.specs import MLPSpec

__all__ = ["Config", "initializer_family", "is_matched", "main", "run"]

NAME = "initialization"
DEFAULT_VARIANTS = (
    "tanh:glorot_uniform", "relu:glorot_uniform",
    "relu:he_normal", "tanh:he_normal",
    "selu:lecun_normal", "relu:lecun_normal",
    "relu:he_avg_uniform", "selu:he_avg_uniform",
)


def initializer_family(name: str) -> str:
    """The variance rule behind an initializer name: glorot, he, lecun or random.

    Args:
        name: a `recipes.initializers.make_initializer` name.

    Returns:
        ``"glorot"`` (variance 1/fan_avg), ``"he"`` (2/fan_in, or the book's 2/fan_avg),
        ``"lecun"`` (1/fan_in) or ``"random"`` (RandomNormal(stddev=1)).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, Table 11-1.
    """
    return "he" if name == "variance_scaling_fan_avg" else name.split("_")[0]


def is_matched(activation: str, initializer: str) -> bool:
    """Whether Table 11-1 pairs this initializer's family with this activation.

    Args:
        activation: an activation name.
        initializer: an initializer name.

    Returns:
        ``True`` for e.g. ``("relu", "he_avg_uniform")``, ``False`` for
        ``("relu", "glorot_uniform")``.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, Table 11-1.
    """
    recommended = recommended_initializer(activation)
    return initializer_family(initializer) == initializer_family(recommended)


@dataclass(frozen=True)
class Config(ex.ExperimentConfig):
    """The experiment's settings; the defaults are the book's values where it gives them."""

    depth: int = ex.option(20, "hidden layers of the deep MLP")
    units: int = ex.option(100, "units per hidden layer")
    variants: tuple[str, ...] = ex.option(
        DEFAULT_VARIANTS, "'activation:initializer' pairs, each initializer with its "
                          "activation and a mismatched one")
    input_norm: str = ex.input_norm_option("SELU needs it")
    epochs: int = ex.option(3, "epochs per variant")
    optimizer: str = ex.optimizer_option("momentum", "optimizer (the book's SGD with momentum 0.9)")
    learning_rate: float = ex.option(1e-3, "learning rate")
    batch_size: int = ex.option(32, "mini-batch size")
    out_dir: str = ex.out_dir_option()

    def __post_init__(self) -> None:
        self._at_least(1, "depth", "units", "epochs", "batch_size")
        self._positive("learning_rate")
        parse_variants(self.variants)


def run(config: Config) -> ex.Results:
    """Train every variant and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per activation x initializer).
    """
    if config.quick:
        config = dataclasses.replace(config, depth=min(config.depth, 5), epochs=1)
    run_dir, started = ex.start(NAME, config)
    data = ex.mnist_splits(config.quick)
    # Training images: the Normalization layer was adapted on them (a validation image may
    # light a pixel that is near-constant in training, which standardizing blows up).
    probe = data["x_train"][:1000]
    rows, histories, stats = [], {}, []
    for k, variant in enumerate(config.variants, 1):
        activation, initializer = parse_variant(variant)
        spec = MLPSpec.deep(config.depth, config.units, activation=activation,
                            initializer=initializer, input_norm=config.input_norm)

        def build(spec: MLPSpec = spec, variant: str = variant) -> keras.Model:
            model = build_mlp(spec, (28, 28), 10, adapt_data=data["x_train"])
            stats.append(layer_statistics(model, probe).assign(variant=variant))  # at init
            return model

        matched = is_matched(activation, initializer)
        model, history = ex.train_variant(
            build, ex.classifier_compile(config.optimizer, config.learning_rate), data,
            seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
            label=f"variant {k}/{len(config.variants)}: {activation} + {initializer} "
                  f"({'matched' if matched else 'mismatched'})")
        histories[variant.replace(":", "_")] = history
        h = history.history
        rows.append({
            "variant": variant, "activation": activation, "initializer": initializer,
            "matched": matched, "init_std_last_layer": stats[-1]["std"].iloc[-1],
            "val_acc_epoch1": h["val_accuracy"][0], "val_acc": h["val_accuracy"][-1],
            "test_acc": ex.test_accuracy(model, data), "final_loss": h["loss"][-1],
            "s_per_epoch": sum(h["epoch_time"]) / len(h["epoch_time"]),
        })

    table = pd.DataFrame(rows)
    figures = _figures(run_dir, histories, pd.concat(stats, ignore_index=True), config)
    return ex.finish(NAME, config, run_dir, started, table,
                     title="Weight initialization on MNIST", intro=_intro(config),
                     histories=histories, figures=figures, notes=_notes(table, config),
                     metrics=_metrics(table))


def _figures(run_dir, histories, stats: pd.DataFrame, config: Config) -> list[tuple[str, str]]:
    figures = []
    activations = list(dict.fromkeys(parse_variant(v)[0] for v in config.variants))
    for activation in activations:
        group = {}
        for variant in config.variants:
            act, init = parse_variant(variant)
            if act == activation:
                tag = "matched" if is_matched(act, init) else "mismatched"
                group[f"{init} ({tag})"] = histories[variant.replace(":", "_")]
        name = f"learning_curves_{activation}.png"
        save_figure(learning_curves(group, title=f"{activation}: one initializer per line"),
                    run_dir / name)
        figures.append((f"{activation}: learning curves per initializer (dashed: training, "
                        "solid: validation)", name))
    save_figure(layer_profile(stats, "std", log=True,
                              ylabel="activation std (1,000 training images)",
                              title="Hidden activations' std at initialization"),
                run_dir / "activation_std_init.png")
    figures.append(("Activation std per hidden layer at initialization",
                    "activation_std_init.png"))
    return figures


def _metrics(table: pd.DataFrame) -> dict:
    return {f"{r.variant.replace(':', '_')}_{c}": getattr(r, c)
            for r in table.itertuples() for c in ("val_acc_epoch1", "val_acc", "test_acc")}


def _notes(table: pd.DataFrame, config: Config) -> list[str]:
    notes = []
    for activation, group in table.groupby("activation", sort=False):
        if len(group) < 2:
            continue
        parts = []
        checkpoints = [("val_acc_epoch1", "after epoch 1")]
        if config.epochs > 1:
            checkpoints.append(("val_acc", f"after epoch {config.epochs}"))
        for column, when in checkpoints:
            ranked = group.sort_values(column, ascending=False)
            best = ranked.iloc[0]
            ranking = ", ".join(f"{r.initializer} {getattr(r, column):.4f}"
                                for r in ranked.itertuples())
            tag = "matched" if best["matched"] else "MISMATCHED"
            parts.append(f"{when}: {ranking} (best: the {tag} {best['initializer']})")
        notes.append(f"{activation}, validation accuracy {'; '.join(parts)}.")
    pairs = table[table["matched"]].merge(table[~table["matched"]], on="initializer",
                                          suffixes=("_m", "_x"))
    wins = int((pairs["val_acc_m"] > pairs["val_acc_x"]).sum())
    if len(pairs):
        detail = "; ".join(f"{r.initializer}: {r.activation_m} {r.val_acc_m:.4f} vs "
                           f"{r.activation_x} {r.val_acc_x:.4f}" for r in pairs.itertuples())
        notes.append(f"Per initializer, its matched activation beats the mismatched one in "
                     f"{wins} of {len(pairs)} pairs ({detail}). This compares activations as "
                     "well as initializers; the per-activation lines above hold the "
                     "activation fixed.")
    faded = table[table["init_std_last_layer"] < 0.1]
    if len(faded):
        notes.append("At initialization the last hidden layer's activation std is below 0.1 "
                     "for " + ", ".join(f"{r.variant} ({r.init_std_last_layer:.2g})"
                                        for r in faded.itertuples())
                     + ": the signal fades through the depth when the variance rule does not "
                       "fit the activation.")
    blown = table[table["init_std_last_layer"] > 10]
    if len(blown):
        notes.append("At initialization the last hidden layer's activation std is above 10 for "
                     + ", ".join(f"{r.variant} ({r.init_std_last_layer:.3g})"
                                 for r in blown.itertuples()) + ": the signal grows with depth.")
    he = table[(table["activation"] == "relu")
               & table["initializer"].isin(["he_normal", "he_avg_uniform"])].set_index(
        "initializer")
    if len(he) == 2:
        gap = he.loc["he_avg_uniform", "val_acc"] - he.loc["he_normal", "val_acc"]
        notes.append(f"ReLU with the book's fan_avg He vs plain He (fan_in): validation "
                     f"accuracy {gap:+.4f}. With equal-width hidden layers fan_avg = fan_in, "
                     "so only the first layer's weights differ; this is one seed, so rerun "
                     "with another --seed before reading much into the gap.")
    if config.quick:
        notes.append(quick_note("a shallow net, a small slice and one epoch"))
    headline = []
    for activation, group in table.groupby("activation", sort=False):
        matched, other = group[group["matched"]], group[~group["matched"]]
        if len(matched) and len(other):
            m = matched.loc[matched["val_acc"].idxmax()]
            o = other.loc[other["val_acc"].idxmax()]
            headline.append(f"{activation} {m['initializer']} {m['val_acc_epoch1']:.3f}->"
                            f"{m['val_acc']:.3f} vs {o['initializer']} "
                            f"{o['val_acc_epoch1']:.3f}->{o['val_acc']:.3f}")
    if headline:
        notes.insert(0, "Matched vs mismatched initializer, validation accuracy after epoch 1 "
                        f"-> epoch {config.epochs}: " + "; ".join(headline) + ".")
    return notes


def _intro(config: Config) -> str:
    return (
        f"MLP: {config.depth} hidden layers x {config.units} units; variants "
        f"(activation:initializer): {', '.join(config.variants)}. 'matched' = the initializer "
        "is of the family Table 11-1 gives for the activation (Glorot for tanh/sigmoid, He for "
        "the ReLU family, LeCun for SELU; he_avg_uniform is the book's fan_avg He). Inputs "
        f"{inputs_text(config.input_norm)}. Every variant: {config.optimizer} (learning rate "
        f"{config.learning_rate:g}), "
        f"batch {config.batch_size}, {config.epochs} epoch(s), seed {config.seed} re-applied "
        f"before each variant, {mnist_text(config.quick)}.")


main = ex.make_main(Config, run, __doc__,
                    "python -m ch11.initialization [--quick] [--variants a:i ...] ...")


if __name__ == "__main__":
    raise SystemExit(main())
