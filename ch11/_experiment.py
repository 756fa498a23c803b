"""Shared plumbing of the chapter experiments, written once.

- `Results`: what `run(config)` returns (table, metrics, run folder, figures, notes).
- `ExperimentConfig`, `option(...)` (from `ch11._config`): the frozen ``Config`` base with
  the common fields and checks; options come from the ``Config`` fields, so ``--help``
  lists every one.
- `mnist_splits(config)`: the full MNIST (or the ``--quick`` slice) as floats in [0, 1]
  with a validation split carved from the training set, the book's way; `train_subset`.
- `classifier_compile(...)`: the ``model.compile`` arguments of a classifier.
- `train_variant(...)`: re-seed, fit with Keras's progress bar and an epoch timer, and
  return the history, so every compared variant starts equal; `test_accuracy`. With
  ``log_dir=tensorboard_dir(run_dir, variant)`` it writes the variant's TensorBoard logs
  (`recipes.callbacks.tensorboard_callbacks`).
- `finish(...)`: write results.json, history CSVs, report.md, and print the table.
- `over_seeds(...)`: the headline's values per seed (the full run's, then reruns).

An experiment imports this module as ``ex`` (``ex.option``, ``ex.train_variant`` ...);
the sentences the reports share are in `ch11._text`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from ch11._config import (
    INPUT_NORMS,
    ExperimentConfig,
    input_norm_option,
    optimizer_option,
    option,
    out_dir_option,
)
from recipes.callbacks import EpochTimer, steps_per_execution, tensorboard_callbacks
from recipes.data import load_mnist, make_dataset
from recipes.hardware import choose_precision, clear_session
from recipes.losses import LOSS_NAMES, make_loss
from recipes.optimizers import make_optimizer
from recipes.runs import (
    git_commit,
    intra_op_threads,
    library_versions,
    machine_info,
    make_run_dir,
    mark_finished,
    set_seed,
    write_history,
    write_json,
    write_report,
)

__all__ = ["HIDDEN_LAYERS", "INPUT_NORMS", "MLP_PRECISION", "ExperimentConfig", "Results",
           "classifier_compile", "cnn_precision", "finish", "input_norm_option", "mnist_splits",
           "optimizer_option", "option", "out_dir_option", "over_seeds", "start",
           "tensorboard_dir", "test_accuracy", "train_subset", "train_variant"]

# The dtype policy of every MLP in the MNIST experiments, and why: their 100-300-unit
# layers train slower in bf16 on a CPU at batch 32 (the casts cost more than the smaller
# products save) and gain seconds at most at batch 128, and float32 keeps the chapter's
# numerics (gradient norms, activation variances) as the book's. Measured by
# `python -m bench.precision` (bench/precision.md).
MLP_PRECISION = ("float32", "MLPs of 100-300 units train at 0.87-1.15x their float32 speed "
                            "in bf16 on a CPU (bench/precision.md), and float32 keeps the "
                            "chapter's numerics")


def cnn_precision(requested: str) -> tuple[str, str]:
    """The dtype policy of an MNIST experiment's convolutional models, and why.

    Args:
        requested: the experiment's ``--precision`` (`recipes.names.PRECISIONS`).

    Returns:
        ``(policy, reason)``: ``"auto"`` gives ``mixed_bfloat16`` where the CPU computes
        bf16 natively (a small CNN trains 1.4-1.9x faster in it there, bench/precision.md),
        float32 elsewhere.
    """
    policy, why = choose_precision(requested)
    if requested == "auto" and policy != "float32":
        why += "; a small CNN trains faster in it (bench/precision.md)"
    return policy, why



@dataclass
class Results:
    """What an experiment measured.

    Args:
        experiment: the experiment's name.
        table: one row per variant.
        run_dir: the folder with config.json, results.json, CSVs, figures and report.md.
        metrics: headline numbers (JSON-ready).
        figures: PNG file names inside ``run_dir``.
        notes: what the run shows, in sentences.
    """

    experiment: str
    table: pd.DataFrame
    run_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def start(name: str, config: Any) -> tuple[Path, float]:
    """Seed, create the run folder and write ``config.json``.

    Args:
        name: the experiment's name.
        config: the frozen ``Config`` dataclass (must have ``seed`` and ``out_dir``).

    Returns:
        ``(run_dir, start_time)``.
    """
    set_seed(config.seed)
    run_dir = make_run_dir(name, config.seed, root=config.out_dir)
    write_json(run_dir / "config.json", config)
    return run_dir, time.perf_counter()


def mnist_splits(
    quick: bool, *, val_size: int = 5000, quick_train: int = 2000, quick_test: int = 1000,
    flat: bool = False,
) -> dict[str, np.ndarray]:
    """The full MNIST, scaled to [0, 1], with the last `val_size` training images as validation.

    Args:
        quick: use a small slice (the first `quick_train` training and `quick_test` test images).
        val_size: validation images carved from the training set (the book uses 5,000).
        quick_train: training images in quick mode (validation is a fifth of it).
        quick_test: test images in quick mode.
        flat: return (N, 784) instead of (N, 28, 28).

    Returns:
        A dict with x_train, y_train, x_valid, y_valid, x_test, y_test.
    """
    (x_full, y_full), (x_test, y_test) = load_mnist()
    if quick:
        val_size = quick_train // 5
        x_full, y_full = x_full[: quick_train + val_size], y_full[: quick_train + val_size]
        x_test, y_test = x_test[:quick_test], y_test[:quick_test]
    x_full = x_full.astype("float32") / 255.0
    x_test = x_test.astype("float32") / 255.0
    if flat:
        x_full, x_test = x_full.reshape(len(x_full), -1), x_test.reshape(len(x_test), -1)
    return {
        "x_train": x_full[:-val_size], "y_train": y_full[:-val_size].astype("int64"),
        "x_valid": x_full[-val_size:], "y_valid": y_full[-val_size:].astype("int64"),
        "x_test": x_test, "y_test": y_test.astype("int64"),
    }


def train_subset(data: Mapping[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    """`data` with only its first `size` training images (validation and test untouched).

    Args:
        data: `mnist_splits` output (or any dict with the same keys).
        size: training images to keep.

    Returns:
        A new dict; the arrays are views of `data`'s.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11 (a subset keeps a run to minutes).
    """
    return {k: v[:size] if k in ("x_train", "y_train") else v for k, v in data.items()}


def classifier_compile(
    optimizer: str | keras.optimizers.Optimizer,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule | None = None,
    *,
    loss: str | keras.losses.Loss = "crossentropy",
    metrics: Sequence[str | keras.metrics.Metric] = ("accuracy",),
    **optimizer_kwargs: Any,
) -> dict[str, Any]:
    """The ``model.compile`` arguments of a classifier: a fresh optimizer, a loss, metrics.

    Example:
        ```python
        model.compile(**classifier_compile("momentum", 1e-3, clipnorm=1.0))
        ```

    Args:
        optimizer: a `recipes.optimizers.make_optimizer` name (or optimizer object).
        learning_rate: its rate or schedule. Defaults to `None` (the name's default rate).
        loss: a `recipes.losses.LOSS_NAMES` name (built by `make_loss`), or anything else
            ``compile`` takes (a ``Loss`` object, ``"sparse_categorical_crossentropy"``),
            passed as is. Defaults to `"crossentropy"`.
        metrics: the metrics. Defaults to `("accuracy",)`.
        **optimizer_kwargs: more `make_optimizer` arguments (``clipnorm`` ...).

    Returns:
        ``{"optimizer": ..., "loss": ..., "metrics": [...]}``.

    Raises:
        ValueError: an unknown optimizer name (from `make_optimizer`).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Compiling the model".
    """
    return {
        "optimizer": make_optimizer(optimizer, learning_rate=learning_rate, **optimizer_kwargs),
        "loss": make_loss(loss) if isinstance(loss, str) and loss in LOSS_NAMES else loss,
        "metrics": list(metrics),
    }


def train_variant(
    build: Callable[[], keras.Model],
    compile_kwargs: Mapping[str, Any],
    data: Mapping[str, np.ndarray],
    *,
    seed: int,
    epochs: int,
    batch_size: int = 32,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    label: str = "",
    verbose: int | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    log_dir: str | os.PathLike | None = None,
    precision: str = "float32",
) -> tuple[keras.Model, keras.callbacks.History]:
    """Re-seed, build, compile and fit one variant with the validation set.

    Args:
        build: a function returning a fresh uncompiled model.
        compile_kwargs: arguments of ``model.compile`` (optimizer objects are not shared:
            pass a factory's fresh object per variant).
        data: `mnist_splits` output (or any dict with the same keys).
        seed: re-seeded before building so every variant starts equal (the book's way).
        epochs: epochs to train.
        batch_size: mini-batch size. Defaults to `32` (Keras's default, the book's).
        callbacks: extra callbacks.
        label: printed before training ("variant k/n: name").
        verbose: Keras's verbosity. Defaults to a progress bar on a terminal and one
            line per epoch otherwise (logs, CI).
        fit_kwargs: more ``model.fit`` arguments (``class_weight``,
            ``validation_batch_size`` ...).
        log_dir: the variant's TensorBoard folder (`tensorboard_dir`): per-epoch scalars,
            the learning rate, and gradient norms and dead units on the first 256 training
            examples (`recipes.callbacks.tensorboard_callbacks`; the results are the same
            with or without). Defaults to `None` (no logs).
        precision: the dtype policy the model is built with (`recipes.names.PRECISIONS`
            or a Keras policy name; `cnn_precision` for a convolutional variant). Defaults
            to `"float32"` (`MLP_PRECISION` says why the MLPs keep it).

    Returns:
        ``(model, history)``; ``history.history["epoch_time"]`` holds seconds per epoch.
        The batches come from `recipes.make_dataset` (reshuffled every epoch from `seed`).
        The model is compiled with `recipes.callbacks.steps_per_execution` of the
        callbacks (64 steps per call, 1 when a callback acts on every step), unless
        `compile_kwargs` sets ``steps_per_execution``.
    """
    if label:
        print(f"\n=== {label} ===", flush=True)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    # Without Keras's gc.collect() (recipes.hardware.clear_session): it costs 0.2 s in a
    # fresh process and up to 1 s in a long-lived one (a Jupyter kernel, a test worker) per
    # variant; Python's own collector frees the previous model's reference cycles.
    clear_session(precision)  # without gc.collect(); the model is built with `precision`
    set_seed(seed)
    try:
        model = build()
    finally:  # what is built outside a variant (probes, diagnostics) stays float32
        keras.config.set_dtype_policy("float32")
    board = [] if log_dir is None else tensorboard_callbacks(
        log_dir, (data["x_train"][:256], data["y_train"][:256]))
    # Many steps per call of the compiled train function (the same updates, without the
    # Python work between steps), unless a callback acts on every step.
    model.compile(**{"steps_per_execution": steps_per_execution([*callbacks, *board]),
                     **compile_kwargs})
    # The static input pipeline, not fit(x, y): Keras's numpy adapter pauses 0.5-10 s at
    # some epoch starts on CPU; make_dataset reshuffles every epoch from `seed` without.
    train = make_dataset(data["x_train"], data["y_train"], batch_size, seed=seed)
    val = make_dataset(data["x_valid"], data["y_valid"], batch_size, shuffle=False)
    history = model.fit(
        train, epochs=epochs, validation_data=val,
        callbacks=[EpochTimer(), *callbacks, *board], verbose=verbose,
        **{"shuffle": False, **(fit_kwargs or {})},  # `train` shuffles itself; Keras would warn
    )
    return model, history


def test_accuracy(model: keras.Model, data: Mapping[str, np.ndarray]) -> float:
    """The model's accuracy on ``data["x_test"]``, ``data["y_test"]`` (Keras's evaluate).

    Args:
        model: a model compiled with one metric, the accuracy.
        data: `mnist_splits` output (or any dict with the same keys).

    Returns:
        The test accuracy.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Using the model to make predictions".
    """
    _, accuracy = model.evaluate(data["x_test"], data["y_test"], verbose=0)
    return accuracy


def finish(
    name: str,
    config: Any,
    run_dir: Path,
    started: float,
    table: pd.DataFrame,
    *,
    title: str,
    intro: str = "",
    histories: Mapping[str, keras.callbacks.History | Mapping] | None = None,
    metrics: Mapping[str, Any] | None = None,
    figures: Sequence[str | tuple[str, str]] = (),
    notes: Sequence[str] = (),
    sections: Sequence[tuple[str, str]] = (),
    evidence: Any = None,
    precision: Mapping[str, tuple[str, str]] | None = None,
) -> Results:
    """Write results.json, the history CSVs and report.md; print the table and the folder.

    Args:
        evidence: the headline's `ch11._evidence.Evidence` (its spread over seeds and the
            book's figure): results.json's ``evidence`` entry, and the report's sections
            after `sections`. Defaults to `None`.
        precision: the dtype policy of each family of models and why, e.g.
            ``{"mlp": MLP_PRECISION, "cnn": cnn_precision(config.precision)}``:
            results.json's ``precision`` entry and a line of the report. Defaults to
            `None` (every model in float32: ``{"every model": MLP_PRECISION}``).

    Returns:
        The `Results`.
    """
    for variant, history in (histories or {}).items():
        write_history(run_dir, variant, history)
    wall = time.perf_counter() - started
    metrics = {**(metrics or {}), "wall_time_s": round(wall, 1)}
    precision = precision or {"every model": MLP_PRECISION}
    results = {
        "experiment": name, "seed": config.seed, "quick": getattr(config, "quick", False),
        "metrics": metrics, "table": table, "notes": list(notes),
        "versions": library_versions(), "commit": git_commit(), "machine": machine_info(),
        "tf_intra_op_threads": intra_op_threads(),  # reruns match when this matches
        "precision": {family: {"policy": policy, "why": why}
                      for family, (policy, why) in precision.items()},
    }
    if evidence is not None:
        results["evidence"] = evidence.to_json()
        sections = [*sections, *evidence.sections()]
    write_json(run_dir / "results.json", results)
    policies = "; ".join(f"{family} {entry['policy']} ({entry['why']})"
                         for family, entry in results["precision"].items())
    write_report(run_dir, title, table,
                 intro=intro + f"\n\nWall time: {wall:.0f} s. Dtype policy: {policies}.",
                 figures=figures, notes=notes, sections=sections)
    mark_finished(run_dir)  # last: the folder loses its UNFINISHED marker (recipes.runs)
    with pd.option_context("display.width", 160, "display.max_columns", 30):
        print("\n" + table.to_string(index=False))
    for note in notes:
        print(f"- {note}")
    print(f"\nReport: {run_dir / 'report.md'}")
    names = [f if isinstance(f, str) else f[1] for f in figures]
    return Results(name, table, run_dir, dict(metrics), names, list(notes))


# The hidden Dense layers of recipes.builders.build_mlp (and build_selu_mlp), as a pattern for
# recipes.diagnosis.measures.gradient_norms(..., layers=HIDDEN_LAYERS).
HIDDEN_LAYERS = r"hidden_\d+"



def tensorboard_dir(run_dir: str | os.PathLike, variant: str) -> Path:
    """A variant's TensorBoard folder: ``<run_dir>/tb/<variant>``.

    The variant's name is made safe for a folder the way its ``history_<variant>.csv``
    is (characters other than letters, digits, ``-``, ``_`` and ``.`` become ``_``), so
    ``tensorboard --logdir runs/`` lists each variant under the name of its CSV.

    Args:
        run_dir: the run folder (from `start`).
        variant: the variant's name, as in the ``histories`` given to `finish`.

    Returns:
        The folder (created by TensorBoard's writers when training starts).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Using TensorBoard for Visualization".
    """
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in variant)
    return Path(run_dir) / "tb" / safe


def over_seeds(
    seeds: Sequence[int],
    seed: int,
    main_rows: Sequence[Mapping[str, Any]],
    rerun: Callable[[int], Sequence[Mapping[str, Any]]],
) -> pd.DataFrame:
    """The headline's values per seed: the full run's rows, then a rerun per other seed.

    Args:
        seeds: the headline's seeds (`ch11._config.headline_seeds`).
        seed: the full run's seed; its rows are `main_rows` when it is one of `seeds`.
        main_rows: the headline's values from the full run (one dict per variant).
        rerun: ``rerun(seed)`` trains the headline's variants again with `seed` and
            returns their rows, in the same form.

    Returns:
        One row per variant and seed, with a ``seed`` column, in the order of `seeds`.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 2 (the spread of a measurement).
    """
    rows: list[dict[str, Any]] = []
    for s in seeds:
        got = main_rows if s == seed else rerun(s)
        rows += [{**row, "seed": s} for row in got]
    return pd.DataFrame(rows)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("This module is plumbing; run an experiment, e.g. python -m ch11.batch_norm")
