"""Hyperparameter search in one command: ``python -m tuning.search``.

The coursework tunes kernel size (3/5/7), pooling (max/average), epochs and optimizer by
hand, one run at a time; this runs the search with Keras Tuner over the same builders:
hp -> `CNNSpec`/`MLPSpec` -> `build_cnn`/`build_mlp` -> `make_optimizer`/`make_schedule`.
Every trial stops early when the objective stops improving. At the end it writes, in
``<directory>/<project-name>/`` beside Keras Tuner's own files: ``trials.csv`` (one row
per trial, one column per hyperparameter), ``objective_per_trial.png``,
``hyperparameters_vs_objective.png``, ``best_model.keras`` (the best hyperparameters
retrained on train + validation), ``results.json`` and ``report.md``; ``tb/`` holds each
trial's TensorBoard logs with its hyperparameters (``tensorboard --logdir runs/``, HParams
tab; ``RECIPES_TENSORBOARD=off`` writes none).

Examples:

    python -m tuning.search                          # MNIST, CNN, random search
    python -m tuning.search --tuner hyperband --max-epochs 9
    python -m tuning.search --data fish --data-dir ../shared/data/fish-val --imbalance focal
    python -m tuning.search --resume                 # continue a killed search
    python -m tuning.search --resume --max-trials 20 --retrain-final   # extend a finished one
    python -m tuning.distributed --workers 2         # a chief and 2 workers

Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Fine-Tuning Neural Network
Hyperparameters" (Keras Tuner); ch. 11 for the knobs.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from typing import Any

from recipes.checks import InputError
from recipes.cli import parse_config, print_error
from tuning.config import CONFIG_FILE, SearchConfig, check_project, project_trials

__all__ = ["EPILOG", "PROG", "main", "parse_args", "run"]

PROG = "python -m tuning.search"
EPILOG = ("Outputs go to DIRECTORY/PROJECT_NAME/: trials.csv, report.md, best_model.keras,\n"
          "results.json and two PNG plots, beside Keras Tuner's own oracle.json and trial_*/\n"
          "folders; the options go to search_config.json. An UNFINISHED file marks a search\n"
          "that is running, failed or was killed (--resume continues it); a finished search\n"
          "is redone only with --resume --retrain-final. Exit codes: 0 done, 1 the search\n"
          "failed, 2 bad input (RECIPES_DEBUG=1 adds the traceback).")


def parse_args(argv: Sequence[str] | None = None) -> SearchConfig:
    """Parse and check the command line, filling the defaults that depend on others.

    Args:
        argv: the arguments (default `sys.argv[1:]`).

    Returns:
        The resolved `SearchConfig` (`SearchConfig.resolved`), checked against the disk
        (`tuning.config.check_project`).

    Raises:
        SystemExit: on bad input, with a message saying what to change (code 2), or after
            ``--help`` (code 0).
    """
    return parse_config(SearchConfig, argv, prog=PROG, description=__doc__, epilog=EPILOG,
                        finish=lambda config: check_project(config.resolved()))


def run(config: SearchConfig) -> dict[str, Any]:
    """Run the search the config describes (and, unless a worker, write the results).

    Args:
        config: the search's settings (resolved here if they are not yet).

    Returns:
        A summary: ``role``, and for the chief or a local search ``project_dir``,
        ``table`` (the trials DataFrame), ``best_hyperparameters``, ``test``.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10.
    """
    import keras

    from recipes.callbacks import tensorboard_callbacks
    from recipes.losses import class_weights, make_loss
    from recipes.runs import mark_unfinished, set_seed, write_json
    from tuning.cluster import (
        distributed_env,
        quiet_condition_protos,
        serve_oracle,
        wait_at_barrier,
    )
    from tuning.data import load_data
    from tuning.final import finish_search
    from tuning.hypermodels import make_hypermodel
    from tuning.tuners import make_tuner

    started = time.perf_counter()
    config = config.resolved()
    role = config.distributed or "local"
    # Keras Tuner gives each trial its TensorBoard folder, tb/<trial>/execution<k>, with
    # its hyperparameters (the HParams dashboard); the hypermodel's fit adds the gradients.
    board = tensorboard_callbacks(config.project_dir / "tb")  # a bad level fails here
    if config.distributed:
        quiet_condition_protos()
    set_seed(config.seed)
    data = load_data(config.data, data_dir=config.data_dir, subset=config.subset,
                     val_size=config.val_size, test_size=500 if config.quick else None,
                     image_size=config.image_size, seed=config.seed)
    print(f"[{config.tuner_id}] {data.description}", flush=True)
    fit_extra: dict[str, Any] = {}
    loss: Any = "crossentropy"
    if config.imbalance == "class_weight":
        fit_extra["class_weight"] = class_weights(data.y_train, data.num_classes)
    elif config.imbalance == "focal":
        loss = make_loss("focal", alpha=class_weights(data.y_train, data.num_classes))
    strategy = None
    if config.strategy == "mirrored":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        print(f"[{config.tuner_id}] MirroredStrategy with {strategy.num_replicas_in_sync} "
              "replica(s)", flush=True)
    hypermodel = make_hypermodel(config.model, data.input_shape, data.num_classes, loss=loss,
                                 seed=config.seed, train_size=len(data.x_train),
                                 max_epochs=config.max_epochs, run_eagerly=config.run_eagerly)
    project_dir = config.project_dir
    if config.resume and role != "worker" and project_trials(project_dir) is None:
        print(f"[{config.tuner_id}] nothing to resume in {project_dir}: starting a new search",
              flush=True)
    with distributed_env(config.distributed, config.tuner_id, config.oracle):
        tuner = make_tuner(
            config.tuner, hypermodel, objective=config.objective, max_trials=config.max_trials,
            max_epochs=config.max_epochs, directory=config.directory,
            project_name=config.project_name, seed=config.seed,
            executions_per_trial=config.executions_per_trial,
            overwrite=config.overwrite and role != "worker", distribution_strategy=strategy)
        if role != "worker":
            # Keras Tuner's overwrite deletes the folder it has just created: make it again.
            project_dir.mkdir(parents=True, exist_ok=True)
            write_json(project_dir / CONFIG_FILE, config)  # creates the folder's file
            mark_unfinished(project_dir)  # until finish_search's last step
        mode = "min" if "loss" in config.objective else "max"
        fit_kwargs = dict(
            validation_data=(data.x_val, data.y_val), epochs=config.max_epochs,
            callbacks=[keras.callbacks.EarlyStopping(monitor=config.objective, mode=mode,
                                                     patience=config.patience),
                       *board],
            verbose=2 if config.verbose else 0, **fit_extra)
        print(f"[{config.tuner_id}] {config.tuner} search of the {config.model} space in "
              f"{project_dir}: {config.max_trials or 'hyperband schedule'} trials, up to "
              f"{config.max_epochs} epoch(s) each, objective {config.objective}", flush=True)
        if role == "chief":
            tuner.oracle.verbose = 0
            host, port = config.oracle
            serve_oracle(tuner, f"{host}:{port}")
        else:
            if config.start_barrier:
                wait_at_barrier(config.start_barrier[0], int(config.start_barrier[1]),
                                config.tuner_id)
            tuner.search(data.x_train, data.y_train, **fit_kwargs)
    if role == "worker":
        print(f"[{config.tuner_id}] no more trials: done", flush=True)
        return {"role": role}
    summary = finish_search(tuner, hypermodel, data, config, fit_extra=fit_extra,
                            strategy=strategy, started=started)
    return {"role": role, **summary}


class _NoRetracingWarning(logging.Filter):
    """Drop TensorFlow's retracing warning: every trial is a new model, so it retraces."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        return "triggered tf.function retracing" not in record.getMessage()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point.

    Args:
        argv: the arguments (default `sys.argv[1:]`).

    Returns:
        The exit status: 0 on success, 1 when the search failed, 2 on bad input.
    """
    config = parse_args(argv)
    logging.getLogger("tensorflow").addFilter(_NoRetracingWarning())
    # Hyperband's continued trials load a checkpoint with its optimizer variables into a
    # model whose optimizer fit() replaces anyway: Keras warns that it skips them.
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
    try:
        run(config)
    except InputError as e:  # a user's mistake (no MNIST source, a bad photo folder)
        print_error(e)
        return 2
    except (RuntimeError, FileNotFoundError, TimeoutError, ValueError) as e:
        print_error(e)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
