"""Hyperparameter search in one command: ``python -m tuning.search``.

The coursework tunes kernel size (3/5/7), pooling (max/average), epochs and optimizer by
hand, one run at a time; this runs the search with Keras Tuner over the same builders:
hp -> `CNNSpec`/`MLPSpec` -> `build_cnn`/`build_mlp` -> `make_optimizer`/`make_schedule`.
Every trial stops early when the objective stops improving. At the end it writes, in
``<directory>/<project-name>/`` beside Keras Tuner's own files: ``trials.csv`` (one row
per trial, one column per hyperparameter), ``objective_per_trial.png``,
``hyperparameters_vs_objective.png``, ``best_model.keras`` (the best hyperparameters
retrained on train + validation), ``results.json`` and ``report.md``.

Examples:

```
python -m tuning.search                                   # MNIST, CNN, random search
python -m tuning.search --tuner hyperband --max-epochs 9
python -m tuning.search --data fish --data-dir ../shared/data/fish-val --imbalance focal
python -m tuning.search --resume                          # continue a killed search
python -m tuning.distributed --workers 2                  # a chief and 2 workers
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Fine-Tuning Neural Network
Hyperparameters" (Keras Tuner); ch. 11 for the knobs.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuning.options import CONFIG_FILE, OBJECTIVES, build_parser, parse_args, project_trials

__all__ = ["OBJECTIVES", "build_parser", "main", "parse_args", "run"]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the search the arguments describe (and, unless a worker, write the results).

    Args:
        args: `parse_args` output.

    Returns:
        A summary: ``role``, and for the chief or a local search ``project_dir``,
        ``table`` (the trials DataFrame), ``best_hyperparameters``, ``test``.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10.
    """
    import keras

    from recipes.losses import class_weights, make_loss
    from recipes.runs import set_seed, write_json
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
    role = args.distributed or "local"
    if args.distributed:
        quiet_condition_protos()
    set_seed(args.seed)
    data = load_data(args.data, data_dir=args.data_dir, subset=args.subset,
                     val_size=args.val_size, test_size=500 if args.quick else None,
                     image_size=args.image_size, seed=args.seed)
    print(f"[{args.tuner_id}] {data.description}", flush=True)
    fit_extra: dict[str, Any] = {}
    loss: Any = "crossentropy"
    if args.imbalance == "class_weight":
        fit_extra["class_weight"] = class_weights(data.y_train, data.num_classes)
    elif args.imbalance == "focal":
        loss = make_loss("focal", alpha=class_weights(data.y_train, data.num_classes))
    strategy = None
    if args.strategy == "mirrored":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        print(f"[{args.tuner_id}] MirroredStrategy with {strategy.num_replicas_in_sync} "
              "replica(s)", flush=True)
    hypermodel = make_hypermodel(args.model, data.input_shape, data.num_classes, loss=loss,
                                 seed=args.seed, train_size=len(data.x_train),
                                 max_epochs=args.max_epochs, run_eagerly=args.run_eagerly)
    project_dir = Path(args.directory) / args.project_name
    if args.resume and role != "worker" and project_trials(project_dir) is None:
        print(f"[{args.tuner_id}] nothing to resume in {project_dir}: starting a new search",
              flush=True)
    with distributed_env(args.distributed, args.tuner_id, args.oracle):
        tuner = make_tuner(
            args.tuner, hypermodel, objective=args.objective, max_trials=args.max_trials,
            max_epochs=args.max_epochs, directory=args.directory,
            project_name=args.project_name, seed=args.seed,
            executions_per_trial=args.executions_per_trial,
            overwrite=args.overwrite and role != "worker", distribution_strategy=strategy)
        if role != "worker":
            write_json(Path(tuner.project_dir) / CONFIG_FILE, vars(args))  # creates it
        mode = "min" if "loss" in args.objective else "max"
        fit_kwargs = dict(
            validation_data=(data.x_val, data.y_val), epochs=args.max_epochs,
            callbacks=[keras.callbacks.EarlyStopping(monitor=args.objective, mode=mode,
                                                     patience=args.patience)],
            verbose=2 if args.verbose else 0, **fit_extra)
        print(f"[{args.tuner_id}] {args.tuner} search of the {args.model} space in "
              f"{project_dir}: {args.max_trials or 'hyperband schedule'} trials, up to "
              f"{args.max_epochs} epoch(s) each, objective {args.objective}", flush=True)
        if role == "chief":
            tuner.oracle.verbose = 0
            host, port = args.oracle
            serve_oracle(tuner, f"{host}:{port}")
        else:
            if args.start_barrier:
                wait_at_barrier(args.start_barrier[0], int(args.start_barrier[1]),
                                args.tuner_id)
            tuner.search(data.x_train, data.y_train, **fit_kwargs)
    if role == "worker":
        print(f"[{args.tuner_id}] no more trials: done", flush=True)
        return {"role": role}
    summary = finish_search(tuner, hypermodel, data, args, fit_extra=fit_extra,
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
    args = parse_args(argv)
    logging.getLogger("tensorflow").addFilter(_NoRetracingWarning())
    # Hyperband's continued trials load a checkpoint with its optimizer variables into a
    # model whose optimizer fit() replaces anyway: Keras warns that it skips them.
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
    try:
        run(args)
    except (RuntimeError, FileNotFoundError, TimeoutError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
