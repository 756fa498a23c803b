"""The initialization experiment: train every activation x initializer variant and write
the run folder."""

from __future__ import annotations

import dataclasses

import keras
import pandas as pd

from ch11 import _experiment as ex
from ch11._config import headline_seeds, parse_variant, seeds_why
from ch11._evidence import seed_summary, spread_figure
from ch11.initialization import report
from ch11.initialization.config import NAME, Config
from recipes.builders import build_mlp
from recipes.initializers import recommended_initializer
from recipes.selu import layer_statistics
from recipes.specs import MLPSpec

__all__ = ["initializer_family", "is_matched", "run"]


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
                  f"({'matched' if matched else 'mismatched'})",
            log_dir=ex.tensorboard_dir(run_dir, variant.replace(":", "_")))
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
    figures = report.figures(run_dir, histories, table, pd.concat(stats, ignore_index=True))
    seeds = headline_seeds(config)
    per_seed = ex.over_seeds(seeds, config.seed, report.headline_rows(table),
                             lambda s: _rerun(config, data, s))
    summary = seed_summary(per_seed, "variant", report.HEADLINE_COLUMNS)
    evidence = report.evidence(summary, per_seed, seeds, seeds_why(config), config)
    figures.append(spread_figure(run_dir, per_seed, "variant", report.HEADLINE_COLUMNS,
                                 "Validation accuracy per seed"))
    return ex.finish(NAME, config, run_dir, started, table,
                     title="Weight initialization on MNIST", intro=report.intro(config),
                     histories=histories, figures=figures,
                     notes=[evidence.headline, *report.notes(table, config)],
                     metrics=report.metrics(table), evidence=evidence)


def _rerun(config: Config, data: dict, seed: int) -> list[dict]:
    """Every variant again with another seed: its validation accuracies."""
    rows = []
    for variant in config.variants:
        activation, initializer = parse_variant(variant)
        spec = MLPSpec.deep(config.depth, config.units, activation=activation,
                            initializer=initializer, input_norm=config.input_norm)
        _, history = ex.train_variant(
            lambda s=spec: build_mlp(s, (28, 28), 10, adapt_data=data["x_train"]),
            ex.classifier_compile(config.optimizer, config.learning_rate), data, seed=seed,
            epochs=config.epochs, batch_size=config.batch_size,
            label=f"seed {seed}: {activation} + {initializer}")
        h = history.history
        rows.append({"variant": variant, "activation": activation,
                     "matched": is_matched(activation, initializer),
                     "val_acc_epoch1": h["val_accuracy"][0], "val_acc": h["val_accuracy"][-1]})
    return rows
