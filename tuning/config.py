"""The tuner's settings: `SearchConfig` and `LaunchConfig`, frozen dataclasses, no TensorFlow.

Every field is a command-line option: `recipes.cli` builds ``python -m tuning.search``'s
``--help`` from `SearchConfig` (in four sections: data, search, output, distributed) and
``python -m tuning.distributed``'s from `LaunchConfig`, as for every ``ch11`` experiment.

- `SearchConfig` checks each value and the rules between them (``--data fish`` needs
  ``--data-dir``, ``--distributed`` needs ``--oracle``, ``--resume`` and ``--overwrite``
  exclude each other, ...);
- `SearchConfig.resolved` fills the defaults that depend on other options (``--quick``,
  the tuner, the data set);
- `check_project` checks it against the disk: ``--directory`` can be written,
  ``--data-dir`` is a folder, an existing project needs ``--resume`` or ``--overwrite``,
  a resumed project keeps its data, model, tuner and seed (read from the
  ``search_config.json`` every search writes), and a finished one (its results written,
  no ``UNFINISHED`` marker: `recipes.runs.is_finished`) is not redone unless
  ``--retrain-final`` asks for it.

Example:

```python
config = SearchConfig(model="mlp", tuner="hyperband", quick=True).resolved()
config.max_epochs, config.project_name  # 3, 'mnist_mlp_hyperband_quick'
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Fine-Tuning Neural Network
Hyperparameters".
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from recipes.checks import check_at_least, check_choice, check_positive
from recipes.cli import option
from tuning.names import DATASET_NAMES, MODEL_NAMES, OBJECTIVES, TUNER_NAMES

__all__ = ["CONFIG_FILE", "IMBALANCES", "ROLES", "SAME_ON_RESUME", "STRATEGIES",
           "LaunchConfig", "SearchConfig", "check_project", "parse_address", "project_trials"]

CONFIG_FILE = "search_config.json"
# What a resumed project must keep: another value would mix two searches in one oracle.
SAME_ON_RESUME = ("data", "model", "tuner", "objective", "quick", "subset", "image_size",
                  "seed")
IMBALANCES = ("auto", "class_weight", "focal", "none")
STRATEGIES = ("none", "mirrored")
ROLES = ("chief", "worker")

_DATA = "data"
_SEARCH = "search"
_OUTPUT = "output"
_DISTRIBUTED = "distributed (Keras Tuner's chief/worker over gRPC)"


def parse_address(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` -> ``(HOST, PORT)``.

    Args:
        text: e.g. ``"127.0.0.1:8000"``.

    Returns:
        ``(host, port)``.

    Raises:
        ValueError: ``"must be HOST:PORT (e.g. 127.0.0.1:8000), got <text>"``.
    """
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be HOST:PORT (e.g. 127.0.0.1:8000), got {text!r}")
    return host, int(port)


@dataclass(frozen=True)
class SearchConfig:
    """The settings of one search; `None` means "the default for the other options".

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10.
    """

    data: str = option("mnist", "data set; 'synthetic' is a tiny generated set for smoke runs",
                       DATASET_NAMES, group=_DATA)
    data_dir: str | None = option(None, "folder of fish photos, one subfolder per class "
                                        "(required with --data fish)",
                                  metavar="DIR", group=_DATA)
    subset: int | None = option(
        None, "MNIST: use the first N training images, 0 for all 60,000; synthetic: N "
              "examples (fish uses every photo)",
        metavar="N", group=_DATA,
        default_text="12,000 MNIST or 480 synthetic; 1,200 or 240 with --quick")
    val_size: int | None = option(None, "MNIST validation images, the last of the subset",
                                  metavar="N", group=_DATA,
                                  default_text="a sixth of it, 5,000 for the full set")
    image_size: int | None = option(None, "fish photos are resized to this square size",
                                    metavar="PIXELS", group=_DATA,
                                    default_text="64; 32 with --quick")
    imbalance: str = option("auto", "class imbalance: balanced class weights, focal loss "
                                    "weighted by them, or nothing; auto = class_weight for "
                                    "fish, none otherwise", IMBALANCES, group=_DATA)
    model: str = option("cnn", "search space", MODEL_NAMES, group=_SEARCH)
    tuner: str = option("random", "algorithm", TUNER_NAMES, group=_SEARCH)
    max_trials: int | None = option(None, "trials at most; for hyperband a cap on its own "
                                          "schedule", metavar="N", group=_SEARCH,
                                    default_text="10, 3 with --quick; hyperband: no cap")
    max_epochs: int | None = option(None, "epochs per trial, hyperband's largest budget",
                                    metavar="N", group=_SEARCH,
                                    default_text="5; with --quick 1, or 3 for hyperband")
    executions_per_trial: int = option(1, "models trained per trial, metrics averaged",
                                       metavar="N", group=_SEARCH)
    objective: str = option("val_accuracy", "metric to optimize (loss: lower is better)",
                            OBJECTIVES, group=_SEARCH)
    patience: int = option(2, "early stopping: epochs without improvement of the objective",
                           metavar="EPOCHS", group=_SEARCH)
    seed: int = option(42, "seed of the oracle and each trial", group=_SEARCH)
    quick: bool = option(False, "smoke run: a small slice, 1 epoch, 3 trials, 500 test "
                                "images, --run-eagerly", group=_SEARCH)
    run_eagerly: bool = option(False, "train without tf.function graphs: faster for tiny "
                                      "runs (no tracing), slower for real ones", group=_SEARCH)
    strategy: str = option("none", "train each trial with tf.distribute.MirroredStrategy "
                                   "(all local GPUs; one CPU replica without GPUs)",
                           STRATEGIES, group=_SEARCH)
    directory: str = option("runs/tuning", "tuning folder", metavar="DIR", group=_OUTPUT)
    project_name: str | None = option(None, "project folder", metavar="NAME", group=_OUTPUT,
                                      default_text="DATA_MODEL_TUNER, + _quick with --quick")
    resume: bool = option(False, "continue an existing project; completed trials are kept",
                          group=_OUTPUT)
    overwrite: bool = option(False, "delete an existing project and start again",
                             group=_OUTPUT)
    top_k: int = option(5, "trials printed", metavar="K", group=_OUTPUT)
    retrain: bool = option(True, "retrain the best hyperparameters on train + validation, "
                                 "save and test them (--no-retrain skips it)", group=_OUTPUT)
    retrain_final: bool = option(False, "with --resume on a finished search: run the trials "
                                        "left (e.g. after raising --max-trials), then retrain, "
                                        "test and overwrite best_model.keras, results.json and "
                                        "report.md (without it, --resume refuses a finished "
                                        "search)", group=_OUTPUT)
    verbose: bool = option(False, "Keras's line per epoch and Keras Tuner's trial tables",
                           group=_OUTPUT)
    distributed: str | None = option(
        None, "role; sets KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and "
              "KERASTUNER_ORACLE_PORT. The chief serves the oracle and writes the results; "
              "workers run trials. `python -m tuning.distributed` starts both on this "
              "machine.", ROLES, group=_DISTRIBUTED, default_text="none, a local search")
    oracle: tuple[str, int] | None = option(None, "the chief's address (with --distributed)",
                                            parse=parse_address, metavar="HOST:PORT",
                                            group=_DISTRIBUTED)
    tuner_id: str | None = option(None, "worker name; the chief is 'chief'", metavar="NAME",
                                  group=_DISTRIBUTED,
                                  default_text="worker-PID, or tuner0 for a local search")
    start_barrier: tuple[str, ...] | None = option(
        None, "worker: wait until N workers are ready (files in DIR) before taking trials; "
              "set by the launcher", nargs=2, metavar=("DIR", "N"), group=_DISTRIBUTED)

    def __post_init__(self) -> None:
        for name, valid in (("data", DATASET_NAMES), ("model", MODEL_NAMES),
                            ("tuner", TUNER_NAMES), ("objective", OBJECTIVES),
                            ("imbalance", IMBALANCES), ("strategy", STRATEGIES)):
            check_choice(name, getattr(self, name), valid)
        if self.distributed is not None:
            check_choice("role", self.distributed, ROLES)
        for name, low in (("subset", 0), ("val_size", 1), ("image_size", 8),
                          ("max_trials", 1), ("max_epochs", 1), ("executions_per_trial", 1),
                          ("patience", 1), ("top_k", 1)):
            if getattr(self, name) is not None:
                check_at_least(name, getattr(self, name), low)
        if self.data == "fish" and not self.data_dir:
            raise ValueError("--data fish needs --data-dir DIR: a folder of fish photos with "
                             "one subfolder per class (e.g. --data-dir ../shared/data/fish-val).")
        if self.data != "fish" and self.data_dir:
            raise ValueError(f"--data-dir is only read with --data fish, not --data {self.data}.")
        if self.data == "fish" and self.subset is not None:
            raise ValueError("--subset applies to --data mnist and synthetic; fish uses all "
                             "photos.")
        if self.resume and self.overwrite:
            raise ValueError("--resume and --overwrite exclude each other: continue the "
                             "project or delete it, not both.")
        if self.retrain_final and not self.resume:
            raise ValueError("--retrain-final goes with --resume: it redoes the end of a "
                             "finished search.")
        if self.retrain_final and not self.retrain:
            raise ValueError("--retrain-final and --no-retrain exclude each other.")
        if (self.distributed is None) != (self.oracle is None):
            raise ValueError("--distributed chief|worker and --oracle HOST:PORT go together.")
        if self.oracle is not None:
            host, port = self.oracle
            parse_address(f"{host}:{port}")
        if self.start_barrier is not None:
            if self.distributed != "worker":
                raise ValueError("--start-barrier is for workers (--distributed worker).")
            if len(self.start_barrier) != 2 or not str(self.start_barrier[1]).isdigit():
                count = self.start_barrier[1:2] or ("",)
                raise ValueError("--start-barrier DIR N: N must be an integer, got "
                                 f"{count[0]!r}.")
        if self.distributed == "worker" and self.tuner_id and "chief" in self.tuner_id:
            raise ValueError("A worker's --tuner-id must not contain 'chief', got "
                             f"{self.tuner_id!r}.")

    def resolved(self) -> SearchConfig:
        """The config with the defaults that depend on other options filled in.

        ``max_trials``, ``max_epochs``, ``subset``, ``image_size``, ``imbalance``,
        ``project_name`` and ``tuner_id`` get their defaults for this data set, tuner and
        ``quick``; ``--quick`` turns ``run_eagerly`` on. Resolving twice changes nothing.

        Returns:
            A new `SearchConfig`.
        """
        hyperband = self.tuner == "hyperband"
        fill: dict[str, object] = {"run_eagerly": self.run_eagerly or self.quick}
        if self.max_trials is None:
            fill["max_trials"] = 3 if self.quick else (None if hyperband else 10)
        if self.max_epochs is None:
            fill["max_epochs"] = (3 if hyperband else 1) if self.quick else 5
        if self.subset is None and self.data != "fish":
            fill["subset"] = (1200 if self.data == "mnist" else 240) if self.quick \
                else (12000 if self.data == "mnist" else 480)
        if self.image_size is None:
            fill["image_size"] = 32 if self.quick else 64
        if self.imbalance == "auto":
            fill["imbalance"] = "class_weight" if self.data == "fish" else "none"
        if self.project_name is None:
            fill["project_name"] = (f"{self.data}_{self.model}_{self.tuner}"
                                    + ("_quick" if self.quick else ""))
        if self.distributed == "chief":
            fill["tuner_id"] = "chief"
        elif self.distributed == "worker":
            fill["tuner_id"] = self.tuner_id or f"worker-{os.getpid()}"
        else:
            fill["tuner_id"] = self.tuner_id or "tuner0"
        return dataclasses.replace(self, **fill)

    @property
    def project_dir(self) -> Path:
        """``directory/project_name`` (of a resolved config)."""
        return Path(self.directory) / str(self.project_name)


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


def check_project(config: SearchConfig) -> SearchConfig:
    """Check a resolved config against the disk: the fish folder and the project folder.

    Args:
        config: a `SearchConfig.resolved` config.

    Returns:
        The same config.

    Raises:
        ValueError: ``--directory`` is under a file or cannot be written; ``--data-dir``
            is not a folder; the project exists and neither ``--resume`` nor
            ``--overwrite`` is given (a worker joins the chief's project, so it is not
            asked); a resumed project was created with other `SAME_ON_RESUME` options,
            or is finished and ``--retrain-final`` is not given. The message says what to
            change.
    """
    _check_writable("--directory", config.directory)
    if config.data_dir and not Path(config.data_dir).is_dir():
        raise ValueError(f"--data-dir {config.data_dir!r} is not a folder.")
    project = config.project_dir
    trials = project_trials(project)
    if config.distributed == "worker" or trials is None:
        return config
    if not (config.resume or config.overwrite):
        raise ValueError(f"Project {project} already exists ({trials} trial(s)). Choose: "
                         "--resume to continue it (completed trials are kept) or "
                         "--overwrite to delete it and start again (or another "
                         "--project-name).")
    saved = project / CONFIG_FILE
    if config.resume and saved.exists():
        old = json.loads(saved.read_text())
        diff = [k for k in SAME_ON_RESUME if k in old and old[k] != getattr(config, k)]
        if diff:
            was = ", ".join(f"{k}={old[k]!r}" for k in diff)
            raise ValueError(f"Cannot resume {project}: it was created with {was}. Resume "
                             "with the same options, or use --overwrite/--project-name.")
    if config.resume and not config.retrain_final and (project / "results.json").is_file():
        from recipes.runs import is_finished  # imports Keras: only for a project with results

        if is_finished(project):
            raise ValueError(
                f"Project {project} is a finished search ({trials} trial(s); its "
                "results.json and report.md are written): --resume has nothing to continue "
                "and would overwrite them. Add --retrain-final to run the trials left "
                "(after raising --max-trials) and retrain, test and rewrite the results, or "
                "use --overwrite or another --project-name to start a new search.")
    return config


def _check_writable(flag: str, directory: str) -> None:
    """Raise ``ValueError`` unless folders can be created in `directory` (or it exists).

    The nearest existing folder of the path must be a folder (not a file) where a folder
    can be created: the check creates and deletes an empty temporary one.
    """
    path = Path(directory).expanduser()
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{flag} {directory!r}: {str(existing)!r} is a file, not a folder. "
                         f"Choose another {flag}.")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=existing))
    except OSError as e:
        raise ValueError(f"{flag} {directory!r}: cannot create a folder in {str(existing)!r} "
                         f"({e.strerror or e}). Choose a writable {flag}.") from None


@dataclass(frozen=True)
class LaunchConfig:
    """The settings of ``python -m tuning.distributed`` itself (the rest go to the search).

    Reference: Keras Tuner, "Distributed hyperparameter tuning".
    """

    workers: int = option(2, "worker processes")
    port: int = option(0, "oracle port on 127.0.0.1; 0 picks a free one")
    timeout: float = option(3600.0, "seconds for the whole search; then every process is "
                                    "stopped", metavar="SECONDS")
    startup_timeout: float = option(300.0, "seconds for the chief to start serving",
                                    metavar="SECONDS")

    def __post_init__(self) -> None:
        check_at_least("workers", self.workers, 1)
        check_at_least("port", self.port, 0)
        if self.port > 65535:
            raise ValueError(f"port must be in [0, 65535], got {self.port!r}.")
        check_positive("timeout", self.timeout)
        check_positive("startup_timeout", self.startup_timeout)
