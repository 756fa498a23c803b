"""The command line of ``python -m tuning.search``: options, defaults, input checks.

`build_parser` documents every option (``--help``); `parse_args` checks the input (an
unknown tuner, model or data set lists the choices; ``--data fish`` needs
``--data-dir``; ``--max-trials 0`` is refused; an existing project needs ``--resume`` or
``--overwrite``; a resumed project must keep its data, model and tuner) and fills the
defaults that depend on other options (``--quick``, the tuner, the data set).

Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Fine-Tuning Neural Network
Hyperparameters".
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["CONFIG_FILE", "OBJECTIVES", "build_parser", "parse_args", "project_trials"]

_DESCRIPTION = ("Hyperparameter search with Keras Tuner over the recipes builders "
                "(hp -> CNNSpec/MLPSpec -> build_cnn/build_mlp), one command.")
OBJECTIVES = ("val_accuracy", "val_loss", "accuracy", "loss")
CONFIG_FILE = "search_config.json"
_SAME_ON_RESUME = ("data", "model", "tuner", "objective", "quick", "subset", "image_size")


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
        return value

    return parse


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"must be HOST:PORT (e.g. 127.0.0.1:8000), got {text!r}")
    return host, int(port)


class _Formatter(argparse.HelpFormatter):
    """Show a default unless the help already explains it (or there is none)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m tuning.search``.

    Returns:
        The parser (every option documented in ``--help``).
    """
    from tuning.data import DATASETS
    from tuning.hypermodels import MODELS
    from tuning.tuners import TUNERS

    p = argparse.ArgumentParser(
        prog="python -m tuning.search", description=_DESCRIPTION,
        formatter_class=_Formatter,
        epilog="Outputs go to DIRECTORY/PROJECT_NAME/: trials.csv, report.md, "
               "best_model.keras, results.json and two PNG plots, beside Keras Tuner's "
               "own oracle.json and trial_*/ folders.")
    g = p.add_argument_group("data")
    g.add_argument("--data", choices=DATASETS, default="mnist",
                   help="data set; 'synthetic' is a tiny generated set for smoke runs")
    g.add_argument("--data-dir", help="folder of fish photos, one subfolder per class "
                                      "(required with --data fish)")
    g.add_argument("--subset", type=_int_at_least(0),
                   help="MNIST: use the first N training images, 0 for all 60,000 "
                        "(default 12,000; 1,200 with --quick); synthetic: N examples")
    g.add_argument("--val-size", type=_int_at_least(1),
                   help="MNIST validation images, the last of the subset (default: a sixth "
                        "of it, 5,000 for the full set)")
    g.add_argument("--image-size", type=_int_at_least(8),
                   help="fish photos are resized to this square size (default 64; 32 "
                        "with --quick)")
    g.add_argument("--imbalance", choices=("auto", "class_weight", "focal", "none"),
                   default="auto", help="class imbalance: balanced class weights, focal "
                   "loss weighted by them, or nothing; auto = class_weight for fish, "
                   "none otherwise")
    g = p.add_argument_group("search")
    g.add_argument("--model", choices=tuple(MODELS), default="cnn", help="search space")
    g.add_argument("--tuner", choices=tuple(TUNERS), default="random", help="algorithm")
    g.add_argument("--max-trials", type=_int_at_least(1),
                   help="trials at most (default 10; 3 with --quick); for hyperband a cap "
                        "on its own schedule (default: no cap)")
    g.add_argument("--max-epochs", type=_int_at_least(1),
                   help="epochs per trial, hyperband's largest budget (default 5; with "
                        "--quick 1, or 3 for hyperband)")
    g.add_argument("--executions-per-trial", type=_int_at_least(1), default=1,
                   help="models trained per trial, metrics averaged")
    g.add_argument("--objective", choices=OBJECTIVES, default="val_accuracy",
                   help="metric to optimize (loss: lower is better)")
    g.add_argument("--patience", type=_int_at_least(1), default=2,
                   help="early stopping: epochs without improvement of the objective")
    g.add_argument("--seed", type=int, default=42, help="seed of the oracle and each trial")
    g.add_argument("--quick", action="store_true",
                   help="smoke run: a small slice, 1 epoch, 3 trials, 500 test images, "
                        "--run-eagerly")
    g.add_argument("--run-eagerly", action="store_true",
                   help="train without tf.function graphs: faster for tiny runs (no "
                        "tracing), slower for real ones")
    g.add_argument("--strategy", choices=("none", "mirrored"), default="none",
                   help="train each trial with tf.distribute.MirroredStrategy (all local "
                        "GPUs; one CPU replica without GPUs)")
    g = p.add_argument_group("output")
    g.add_argument("--directory", default="runs/tuning", help="tuning folder")
    g.add_argument("--project-name",
                   help="project folder (default DATA_MODEL_TUNER, + _quick with --quick)")
    mode = g.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue an existing project; completed trials are kept")
    mode.add_argument("--overwrite", action="store_true",
                      help="delete an existing project and start again")
    g.add_argument("--top-k", type=_int_at_least(1), default=5, help="trials printed")
    g.add_argument("--no-retrain", action="store_true",
                   help="skip retraining the best model on train + validation")
    g.add_argument("--verbose", action="store_true",
                   help="Keras's line per epoch and Keras Tuner's trial tables")
    g = p.add_argument_group("distributed (Keras Tuner's chief/worker over gRPC)")
    g.add_argument("--distributed", choices=("chief", "worker"),
                   help="role; sets KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and "
                        "KERASTUNER_ORACLE_PORT. The chief serves the oracle and writes "
                        "the results; workers run trials. `python -m tuning.distributed` "
                        "starts both on this machine.")
    g.add_argument("--oracle", type=_address, metavar="HOST:PORT",
                   help="the chief's address (with --distributed)")
    g.add_argument("--tuner-id", help="worker name (default worker-PID); the chief is "
                                      "'chief'")
    g.add_argument("--start-barrier", nargs=2, metavar=("DIR", "N"),
                   help="worker: wait until N workers are ready (files in DIR) before "
                        "taking trials; set by the launcher")
    return p


def project_trials(project_dir: str | os.PathLike) -> int | None:
    """Number of trials of an existing project.

    Args:
        project_dir: ``DIRECTORY/PROJECT_NAME``.

    Returns:
        The number of ``trial_*`` folders, or `None` when there is no project (no
        ``oracle.json``).
    """
    project_dir = Path(project_dir)
    if not (project_dir / "oracle.json").exists():
        return None
    return len(list(project_dir.glob("trial_*")))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line, filling the defaults that depend on others.

    Args:
        argv: the arguments (default `sys.argv[1:]`).

    Returns:
        The namespace.

    Raises:
        SystemExit: on bad input, with a message saying what to change (argparse).
    """
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.data == "fish" and not a.data_dir:
        parser.error("--data fish needs --data-dir DIR: a folder of fish photos with one "
                     "subfolder per class (e.g. --data-dir ../shared/data/fish-val).")
    if a.data != "fish" and a.data_dir:
        parser.error(f"--data-dir is only read with --data fish, not --data {a.data}.")
    if a.data_dir and not Path(a.data_dir).is_dir():
        parser.error(f"--data-dir {a.data_dir!r} is not a folder.")
    if a.data == "fish" and a.subset is not None:
        parser.error("--subset applies to --data mnist and synthetic; fish uses all photos.")
    if (a.distributed is None) != (a.oracle is None):
        parser.error("--distributed chief|worker and --oracle HOST:PORT go together.")
    if a.start_barrier and a.distributed != "worker":
        parser.error("--start-barrier is for workers (--distributed worker).")
    if a.start_barrier and not a.start_barrier[1].isdigit():
        parser.error(f"--start-barrier DIR N: N must be an integer, got {a.start_barrier[1]!r}.")
    hyperband = a.tuner == "hyperband"
    if a.max_trials is None:
        a.max_trials = 3 if a.quick else (None if hyperband else 10)
    if a.max_epochs is None:
        a.max_epochs = (3 if hyperband else 1) if a.quick else 5
    if a.subset is None and a.data != "fish":
        a.subset = (1200 if a.data == "mnist" else 240) if a.quick \
            else (12000 if a.data == "mnist" else 480)
    a.run_eagerly = a.run_eagerly or a.quick
    if a.image_size is None:
        a.image_size = 32 if a.quick else 64
    if a.imbalance == "auto":
        a.imbalance = "class_weight" if a.data == "fish" else "none"
    if a.project_name is None:
        a.project_name = f"{a.data}_{a.model}_{a.tuner}" + ("_quick" if a.quick else "")
    if a.distributed == "chief":
        a.tuner_id = "chief"
    elif a.distributed == "worker":
        a.tuner_id = a.tuner_id or f"worker-{os.getpid()}"
        if "chief" in a.tuner_id:
            parser.error(f"A worker's --tuner-id must not contain 'chief', got {a.tuner_id!r}.")
    else:
        a.tuner_id = a.tuner_id or "tuner0"
    project = Path(a.directory) / a.project_name
    trials = project_trials(project)
    if a.distributed != "worker" and trials is not None:
        if not (a.resume or a.overwrite):
            parser.error(f"Project {project} already exists ({trials} trial(s)). Choose: "
                         "--resume to continue it (completed trials are kept) or "
                         "--overwrite to delete it and start again (or another "
                         "--project-name).")
        saved = project / CONFIG_FILE
        if a.resume and saved.exists():
            old = json.loads(saved.read_text())
            diff = [k for k in _SAME_ON_RESUME if k in old and old[k] != getattr(a, k)]
            if diff:
                was = ", ".join(f"{k}={old[k]!r}" for k in diff)
                parser.error(f"Cannot resume {project}: it was created with {was}. Resume "
                             "with the same options, or use --overwrite/--project-name.")
    return a
