"""The regularization experiment: train every variant and MC dropout, write the run folder."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11._config import headline_seeds, seeds_why
from ch11._evidence import seed_summary, spread_figure
from ch11.regularization import report
from ch11.regularization.config import NAME, Config
from recipes.builders import build_mlp, count_params
from recipes.diagnosis.measures import weight_stats
from recipes.regularization import mc_predict
from recipes.specs import MLPSpec

__all__ = ["VARIANTS", "prediction_stats", "run"]

VARIANTS = ("none", "l2", "dropout", "max_norm", "selu", "alpha_dropout")


def _specs(config: Config) -> dict[str, MLPSpec]:
    base = MLPSpec(hidden_units=config.hidden_units, activation="relu")
    selu = MLPSpec(hidden_units=config.hidden_units, activation="selu",
                   input_norm="normalization")
    return {
        "none": base,
        "l2": dataclasses.replace(base, l2=config.l2),
        "dropout": dataclasses.replace(base, dropout_rate=config.dropout_rate),
        "max_norm": dataclasses.replace(base, max_norm=config.max_norm),
        "selu": selu,
        "alpha_dropout": dataclasses.replace(selu, dropout_rate=config.alpha_dropout_rate,
                                             dropout_kind="alpha"),
    }


def _describe(config: Config) -> dict[str, str]:
    return {
        "none": "ReLU, He init",
        "l2": f"ReLU + l2({config.l2:g}) on kernels",
        "dropout": f"ReLU + Dropout({config.dropout_rate:g}) after each hidden layer",
        "mc_dropout": f"the dropout model, mean of {config.mc_samples} passes with dropout on",
        "max_norm": f"ReLU + MaxNorm({config.max_norm:g}) on kernels",
        "selu": "SELU, LeCun init, standardized inputs",
        "alpha_dropout": f"SELU + AlphaDropout({config.alpha_dropout_rate:g})",
    }


def prediction_stats(mean: np.ndarray, y: np.ndarray, std: np.ndarray | None = None) -> dict:
    """Accuracy, log loss and confidence of class probabilities, split by correct/wrong.

    Args:
        mean: class probabilities, shape ``(n, classes)`` (MC dropout: the mean of passes).
        y: integer labels, shape ``(n,)``.
        std: MC dropout's std of the probabilities over passes, or ``None``.

    Returns:
        ``acc``, ``nll`` (mean negative log probability of the true class), ``conf_correct``
        and ``conf_wrong`` (mean top probability on correct/wrong predictions), and with
        ``std``: ``std_correct``/``std_wrong`` (mean std of the predicted class's
        probability); NaN where a group is empty or ``std`` is ``None``.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Monte Carlo (MC) Dropout".
    """
    mean, y = np.asarray(mean, dtype="float64"), np.asarray(y)
    pred = mean.argmax(axis=1)
    correct = pred == y
    rows = np.arange(len(y))
    top = mean[rows, pred]

    def avg(values: np.ndarray, mask: np.ndarray) -> float:
        return float(values[mask].mean()) if mask.any() else float("nan")

    out = {
        "acc": float(correct.mean()),
        "nll": float(-np.log(np.clip(mean[rows, y], 1e-12, 1.0)).mean()),
        "conf_correct": avg(top, correct), "conf_wrong": avg(top, ~correct),
        "std_correct": float("nan"), "std_wrong": float("nan"),
    }
    if std is not None:
        spread = np.asarray(std, dtype="float64")[rows, pred]
        out["std_correct"], out["std_wrong"] = avg(spread, correct), avg(spread, ~correct)
    return out


def _hidden_kernels(model: keras.Model) -> dict:
    """Hidden kernels' global L2 norm (`weight_stats`), largest unit norm, and the arrays."""
    stats = weight_stats(model)
    hidden = stats[stats["layer"].str.fullmatch(r"hidden_\d+")
                   & stats["variable"].str.endswith("kernel")]
    arrays = {f"{n} (norm {v:.3g})": model.get_layer(n).kernel.numpy()
              for n, v in zip(hidden["layer"], hidden["norm"])}
    return {"kernel_norm": float(np.sqrt((hidden["norm"] ** 2).sum())),
            "max_unit_norm": max(float(np.linalg.norm(a, axis=0).max()) for a in arrays.values()),
            "arrays": arrays}


def run(config: Config) -> ex.Results:
    """Train every variant, evaluate them (and MC dropout) and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per variant, MC dropout included).
    """
    if config.quick:
        config = dataclasses.replace(config, epochs=1, train_size=min(config.train_size, 2000),
                                     mc_samples=min(config.mc_samples, 10))
    run_dir, started = ex.start(NAME, config)
    data = ex.train_subset(ex.mnist_splits(config.quick), config.train_size)
    n = min(len(data["x_valid"]), len(data["x_train"]))
    probe_x = {"train": data["x_train"][:n], "val": data["x_valid"], "test": data["x_test"]}
    probe_y = {"train": data["y_train"][:n], "val": data["y_valid"], "test": data["y_test"]}
    describe = _describe(config)
    specs = _specs(config)
    rows, histories, mc_detail, weights = [], {}, {}, {}
    for k, (name, spec) in enumerate(specs.items(), 1):
        adapt = data["x_train"] if spec.input_norm == "normalization" else None
        model, history = ex.train_variant(
            lambda s=spec, a=adapt: build_mlp(s, (28, 28), 10, adapt_data=a),
            ex.classifier_compile(config.optimizer, config.learning_rate,
                                  loss="sparse_categorical_crossentropy"),
            data, seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
            label=f"variant {k}/{len(specs)}: {describe[name]}",
            log_dir=ex.tensorboard_dir(run_dir, name))
        histories[name] = history
        weights[name] = _hidden_kernels(model)
        # Called, not predict(): predict traces a graph for every new model (and each new
        # batch shape), and after five TensorFlow warns about retracing (Keras's advice
        # for data that fits in memory).
        probs = {s: keras.ops.convert_to_numpy(model(x, training=False))
                 for s, x in probe_x.items()}
        rows.append(_row(name, describe[name], model, history,
                         {s: prediction_stats(p, probe_y[s]) for s, p in probs.items()},
                         weights[name]))
        if name == "dropout":
            print(f"MC dropout: {config.mc_samples} passes over train/val/test", flush=True)
            mc = {s: mc_predict(model, x, samples=config.mc_samples, batch_size=2048)
                  for s, x in probe_x.items()}
            stats = {s: prediction_stats(m, probe_y[s], sd) for s, (m, sd) in mc.items()}
            rows.append(_row("mc_dropout", describe["mc_dropout"], model, history, stats,
                             weights[name]))
            pred = mc["test"][0].argmax(axis=1)
            mc_detail = {"std": mc["test"][1][np.arange(len(pred)), pred],
                         "correct": pred == probe_y["test"],
                         "confidence": mc["test"][0].max(axis=1),
                         "one_pass": probs["test"].max(axis=1),
                         "one_pass_correct": probs["test"].argmax(axis=1) == probe_y["test"]}
    table = pd.DataFrame(rows)
    figures = report.figures(run_dir, histories, table, mc_detail)
    diag_figures, diagnosis, detection = report.diagnostics(run_dir, table, weights, mc_detail)
    notes = report.notes(table, config, len(data["y_valid"]), len(data["y_test"]))
    notes += report.normalization_note(histories, data)
    seeds = headline_seeds(config)
    main_rows = [{"variant": r.variant, "train_val_gap": r.train_val_gap, "val_acc": r.val_acc}
                 for r in table.itertuples() if r.variant in specs]
    per_seed = ex.over_seeds(seeds, config.seed, main_rows,
                             lambda s: _rerun(config, specs, data, probe_x, probe_y, s))
    summary = seed_summary(per_seed, "variant", report.HEADLINE_COLUMNS)
    evidence = report.evidence(summary, per_seed, seeds, seeds_why(config), config)
    spread = spread_figure(run_dir, per_seed, "variant", report.HEADLINE_COLUMNS,
                           "Train-validation gap and validation accuracy, per seed")
    return ex.finish(NAME, config, run_dir, started, table,
                     title="Regularization on (a subset of) MNIST", intro=report.intro(config, n),
                     histories=histories, figures=figures + diag_figures + [spread],
                     notes=[evidence.headline, *notes],
                     metrics=report.metrics(table) | detection,
                     sections=[("Diagnostics", diagnosis)], evidence=evidence)


def _rerun(config: Config, specs: dict, data: dict, probe_x: dict, probe_y: dict,
           seed: int) -> list[dict]:
    """Every variant again with another seed: its train-validation gap and accuracy."""
    rows = []
    for name, spec in specs.items():
        adapt = data["x_train"] if spec.input_norm == "normalization" else None
        model, _ = ex.train_variant(
            lambda s=spec, a=adapt: build_mlp(s, (28, 28), 10, adapt_data=a),
            ex.classifier_compile(config.optimizer, config.learning_rate,
                                  loss="sparse_categorical_crossentropy"),
            data, seed=seed, epochs=config.epochs, batch_size=config.batch_size,
            label=f"seed {seed}: {name}")
        acc = {s: prediction_stats(model.predict(probe_x[s], batch_size=1024, verbose=0),
                                   probe_y[s])["acc"] for s in ("train", "val")}
        rows.append({"variant": name, "train_val_gap": acc["train"] - acc["val"],
                     "val_acc": acc["val"]})
    return rows


def _row(name: str, description: str, model: keras.Model, history: keras.callbacks.History,
         stats: dict[str, dict], weights: dict) -> dict:
    h = history.history
    best = int(np.argmax(h["val_accuracy"]))
    mc = name == "mc_dropout"
    return {
        "variant": name, "regularization": description, "train_acc": stats["train"]["acc"],
        "val_acc": stats["val"]["acc"], "train_val_gap": stats["train"]["acc"]
        - stats["val"]["acc"], "test_acc": stats["test"]["acc"], "test_nll": stats["test"]["nll"],
        "best_val_acc": float("nan") if mc else h["val_accuracy"][best],
        "best_epoch": 0 if mc else best + 1,
        "conf_correct": stats["test"]["conf_correct"], "conf_wrong": stats["test"]["conf_wrong"],
        "mc_std_correct": stats["test"]["std_correct"],
        "mc_std_wrong": stats["test"]["std_wrong"],
        "kernel_norm": weights["kernel_norm"], "max_unit_norm": weights["max_unit_norm"],
        "s_per_epoch": float(np.mean(h["epoch_time"])),
        "params": count_params(model)["trainable"],
    }
