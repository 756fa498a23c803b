"""Hyperparameter search in one command: ``python -m tuning.search``.

The coursework tunes kernel size (3/5/7), pooling (max/average), epochs and optimizer by
hand, one run at a time; this runs the search with Keras Tuner over the same builders:
hp -> `CNNSpec`/`MLPSpec` -> `build_cnn`/`build_mlp` -> `make_optimizer`/`make_schedule`.
Every trial stops early when the objective stops improving. ``--data fish`` searches the
fish photo CNN space (`tuning.fish`: the hand recipe's family of `CNNSpec`, image size
included) with Hyperband on the course's training photos, the validation photos giving the
objective (accuracy, macro ROC AUC or the rare class's recall), and compares the best model
with the hand recipe of ``make recipe-fish`` on the same test photos. At the end it writes, in
``<directory>/<project-name>/`` beside Keras Tuner's own files: ``trials.csv`` (one row
per trial, one column per hyperparameter), ``objective_per_trial.png``,
``hyperparameters_vs_objective.png``, ``best_model.keras`` (the best hyperparameters
retrained on train + validation), ``results.json`` and ``report.md``; ``tb/`` holds each
trial's TensorBoard logs with its hyperparameters (``tensorboard --logdir runs/``, HParams
tab; ``RECIPES_TENSORBOARD=off`` writes none).

Examples:

    python -m tuning.search                          # MNIST, CNN, random search
    python -m tuning.search --tuner hyperband --max-epochs 9
    python -m tuning.search --data fish              # make tune-fish: Hyperband, ~30 min
    python -m tuning.search --data fish --test-dir DIR --objective val_macro_auc
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
from tuning.config import CONFIG_FILE, SearchConfig
from tuning.names import RARE_OBJECTIVE
from tuning.project import check_project, project_trials

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
        (`tuning.project.check_project`).

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
    from recipes.hardware import choose_precision
    from recipes.losses import class_weights, make_loss
    from recipes.runs import mark_unfinished, set_seed, write_json
    from tuning.cluster import (
        distributed_env,
        quiet_condition_protos,
        serve_oracle,
        wait_at_barrier,
    )
    from tuning.data import load_data, load_fish_sizes, rare_class
    from tuning.final import finish_search
    from tuning.fish import FishCNNHyperModel
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
    photos = None
    if config.data == "fish":
        train, val, test = config.fish_folders()
        photos = load_fish_sizes(
            config.image_size, train_dir=train, val_dir=val, test_dir=test,
            test_from=config.test_from, test_split=config.test_split,
            validation_split=config.validation_split, seed=config.seed,
            log=lambda line: print(f"[{config.tuner_id}] {line}", flush=True))
        data = next(iter(photos.values()))
        for size_data in photos.values():
            print(f"[{config.tuner_id}] {size_data.description}", flush=True)
        print(f"[{config.tuner_id}] test photos: {data.sources['test']}", flush=True)
    else:
        data = load_data(config.data, subset=config.subset, val_size=config.val_size,
                         test_size=500 if config.quick else None, seed=config.seed)
        print(f"[{config.tuner_id}] {data.description}", flush=True)
    rare = rare_class(data.y_train, data.num_classes)
    if config.objective == RARE_OBJECTIVE and not (data.y_val == rare).any():
        raise InputError(f"The rare class '{data.class_names[rare]}' (the smallest of the "
                         "training split) has no photo in the validation split, so its recall "
                         "cannot be the objective: add some, or choose another --objective.")
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
    precision = ("float32" if config.model == "mlp" and config.precision == "auto"
                 else choose_precision(config.precision)[0])
    print(f"[{config.tuner_id}] dtype policy of every trial: {precision}", flush=True)
    common = dict(loss=loss, seed=config.seed, max_epochs=config.max_epochs,
                  run_eagerly=config.run_eagerly, class_names=data.class_names, rare_class=rare,
                  precision=precision)
    if photos is not None and config.model == "cnn":
        hypermodel = FishCNNHyperModel(photos, **common)
        search_args: tuple = (photos,)  # each trial takes the photos of its image size
        validation: dict[str, Any] = {}
    else:
        hypermodel = make_hypermodel(config.model, data.input_shape, data.num_classes,
                                     train_size=len(data.x_train), **common)
        search_args = (data.x_train, data.y_train)
        validation = {"validation_data": (data.x_val, data.y_val)}
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
        if role != "worker":  # (--overwrite has just removed the folder)
            project_dir.mkdir(parents=True, exist_ok=True)
            write_json(project_dir / CONFIG_FILE, config)
            mark_unfinished(project_dir)  # until finish_search's last step
        mode = "min" if "loss" in config.objective else "max"
        fit_kwargs = dict(
            **validation, epochs=config.max_epochs,
            callbacks=[keras.callbacks.EarlyStopping(monitor=config.objective, mode=mode,
                                                     patience=config.patience),
                       *board],
            verbose=2 if config.verbose else 0, **fit_extra)
        space = "fish CNN" if isinstance(hypermodel, FishCNNHyperModel) else config.model
        print(f"[{config.tuner_id}] {config.tuner} search of the {space} space in "
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
            tuner.search(*search_args, **fit_kwargs)
    if role == "worker":
        print(f"[{config.tuner_id}] no more trials: done", flush=True)
        return {"role": role}
    searched = photos if isinstance(hypermodel, FishCNNHyperModel) else data
    summary = finish_search(tuner, hypermodel, searched, config, fit_extra=fit_extra,
                            strategy=strategy, started=started, rare=rare)
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
        The exit status: 0 on success, 1 when the search failed, 2 on bad input (options,
        or photo folders whose problem shows only when they are read: the message names
        the folder or class and the fix).
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
