"""The tuner's settings: `SearchConfig` and `LaunchConfig`, frozen dataclasses, no TensorFlow.

Every field is a command-line option: `recipes.cli` builds ``python -m tuning.search``'s
``--help`` from `SearchConfig` (in four sections: data, search, output, distributed) and
``python -m tuning.distributed``'s from `LaunchConfig`, as for every ``ch11`` experiment.

- `SearchConfig` checks each value and the rules between them (the fish folders are only
  read with ``--data fish``, ``--distributed`` needs ``--oracle``, ``--resume`` and
  ``--overwrite`` exclude each other, ...);
- `SearchConfig.resolved` fills the defaults that depend on other options (``--quick``,
  the tuner, the data set: ``--data fish`` searches the fish CNN space with Hyperband);
- `tuning.project.check_project` checks it against the disk: ``--directory`` can be
  written, the photo folders exist, a ``--compare-run`` split its photos as this search
  does, an existing project needs ``--resume`` or ``--overwrite``, a resumed project keeps
  its data, model, tuner and seed (read from the ``search_config.json`` every search
  writes), and a finished one (its results written, no ``UNFINISHED`` marker:
  `recipes.runs.is_finished`) is not redone unless ``--retrain-final`` asks for it.

The fish folder options mean what they mean for ``python -m ch11.fish`` (``--train-dir``,
``--val-dir``, ``--test-dir``, ``--data-dir``, ``--test-from``, ``--test-split``,
``--validation-split``), with the course's ``../shared/data/fish-train`` and ``fish-val``
as the defaults.

Example:

```python
config = SearchConfig(model="mlp", tuner="hyperband", quick=True).resolved()
config.max_epochs, config.project_name  # 3, 'mnist_mlp_hyperband_quick'
SearchConfig(data="fish").resolved().tuner  # 'hyperband'
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Fine-Tuning Neural Network
Hyperparameters".
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from recipes.checks import check_at_least, check_choice, check_fraction, check_positive
from recipes.cli import option
from recipes.names import PRECISIONS
from tuning.compare import AUTO
from tuning.names import DATASET_NAMES, MODEL_NAMES, OBJECTIVES, TEST_SOURCES, TUNER_NAMES

__all__ = ["CONFIG_FILE", "DEFAULT_TRAIN_DIR", "DEFAULT_VAL_DIR", "FISH_FOLDER_OPTIONS",
           "IMBALANCES", "ROLES", "SAME_ON_RESUME", "STRATEGIES", "LaunchConfig",
           "SearchConfig", "parse_address"]

CONFIG_FILE = "search_config.json"
# The course's photos beside the checkout, as ch11.fish finds them (ch11/_fish_config.py).
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_TRAIN_DIR = str(_SHARED / "fish-train")
DEFAULT_VAL_DIR = str(_SHARED / "fish-val")
# The options that say where the photos are and how they are split.
FISH_FOLDER_OPTIONS = ("train_dir", "val_dir", "test_dir", "data_dir", "test_from",
                       "test_split", "validation_split")
# What a resumed project must keep: another value would mix two searches in one oracle.
SAME_ON_RESUME = ("data", "model", "tuner", "objective", "quick", "subset", "image_size",
                  "seed", *FISH_FOLDER_OPTIONS)
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
    train_dir: str = option(DEFAULT_TRAIN_DIR, "fish: training photos, one subfolder per class "
                                               "(or Kaggle's Fish_Dataset layout)",
                            metavar="DIR", group=_DATA,
                            default_text="../shared/data/fish-train")
    val_dir: str | None = option(DEFAULT_VAL_DIR, "fish: validation photos (the objective), "
                                                  "the same class folders ('none': hold out "
                                                  "--validation-split of the training folder)",
                                 metavar="DIR", group=_DATA,
                                 default_text="../shared/data/fish-val")
    test_dir: str | None = option(None, "fish: test photos, the same class folders; without "
                                        "it --test-split of the --test-from split is held "
                                        "out and the report says so",
                                  metavar="DIR", group=_DATA)
    data_dir: str | None = option(None, "fish: one folder with train/ val/ test/ (or one "
                                        "folder per class): replaces --train-dir and "
                                        "--val-dir", metavar="DIR", group=_DATA)
    test_from: str = option("val", "fish without --test-dir: the split that gives up "
                                   "--test-split of each class as the test set",
                            TEST_SOURCES, group=_DATA)
    test_split: float = option(0.5, "fish without --test-dir: the fraction of each class "
                                    "held out as the test set", group=_DATA)
    validation_split: float = option(0.2, "fish without a validation folder: the fraction of "
                                          "each training class held out for validation",
                                     group=_DATA)
    subset: int | None = option(
        None, "MNIST: use the first N training images, 0 for all 60,000; synthetic: N "
              "examples (fish uses every photo)",
        metavar="N", group=_DATA,
        default_text="12,000 MNIST or 480 synthetic; 1,200 or 240 with --quick")
    val_size: int | None = option(None, "MNIST validation images, the last of the subset",
                                  metavar="N", group=_DATA,
                                  default_text="a sixth of it, 5,000 for the full set")
    image_size: tuple[int, ...] | None = option(
        None, "fish photos are resized to this square size; several sizes make it a "
              "hyperparameter (photos come from the decoded-photo cache, one per size)",
        metavar="PIXELS", group=_DATA, default_text="64 96 (64 for --model mlp); 32 with "
                                                    "--quick")
    imbalance: str = option("auto", "class imbalance: balanced class weights, focal loss "
                                    "weighted by them, or nothing; auto = class_weight for "
                                    "fish, none otherwise", IMBALANCES, group=_DATA)
    model: str = option("cnn", "search space; cnn with --data fish is the fish photo CNN "
                               "space (tuning.fish)", MODEL_NAMES, group=_SEARCH)
    tuner: str | None = option(None, "algorithm", TUNER_NAMES, group=_SEARCH,
                               default_text="hyperband for fish, random otherwise")
    max_trials: int | None = option(None, "trials at most; for hyperband a cap on its own "
                                          "schedule", metavar="N", group=_SEARCH,
                                    default_text="10, 3 with --quick; hyperband: no cap")
    max_epochs: int | None = option(None, "epochs per trial, hyperband's largest budget",
                                    metavar="N", group=_SEARCH,
                                    default_text="5, 9 for fish with hyperband; with --quick "
                                                 "1, or 3 for hyperband")
    executions_per_trial: int = option(1, "models trained per trial, metrics averaged",
                                       metavar="N", group=_SEARCH)
    objective: str = option("val_accuracy", "metric to optimize (loss: lower is better); "
                                            "val_macro_auc is the mean one-vs-rest ROC AUC "
                                            "of the classes, val_rare_recall the recall of "
                                            "the smallest class of the training split",
                            OBJECTIVES, group=_SEARCH)
    patience: int | None = option(None, "early stopping: epochs without improvement of the "
                                        "objective", metavar="EPOCHS", group=_SEARCH,
                                  default_text="2; 4 for fish (1cycle's noisy middle)")
    seed: int = option(42, "seed of the oracle and each trial", group=_SEARCH)
    precision: str = option("auto", "dtype policy of every trial's CNN ('auto': "
                                    "mixed_bfloat16 where the CPU computes bf16 natively, "
                                    "else float32); --model mlp stays float32 under 'auto' "
                                    "(bf16 does not speed it up: bench/precision.md)",
                            PRECISIONS, group=_SEARCH)
    quick: bool = option(False, "smoke run: a small slice, 1 epoch, 3 trials, 500 test "
                                "images, --run-eagerly; fish: every photo at 32x32, 1 "
                                "epoch (3 for hyperband), 3 trials", group=_SEARCH)
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
    compare_run: str | None = option(
        AUTO, "fish: a `make recipe-fish` run (its folder or results.json) whose CNN is "
              "tested on this search's test photos beside the best model; 'auto': the "
              "newest run in runs/fish/ that split its photos as this search does; 'none': "
              "no comparison", metavar="RUN", group=_OUTPUT)
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
                            ("imbalance", IMBALANCES), ("strategy", STRATEGIES),
                            ("precision", PRECISIONS)):
            if getattr(self, name) is not None:  # tuner: None is "the data set's default"
                check_choice(name, getattr(self, name), valid)
        if self.distributed is not None:
            check_choice("role", self.distributed, ROLES)
        check_choice("test_from", self.test_from, TEST_SOURCES)
        check_fraction("test_split", self.test_split)
        check_fraction("validation_split", self.validation_split)
        if self.image_size is not None:
            sizes = (self.image_size,) if isinstance(self.image_size, int) else self.image_size
            object.__setattr__(self, "image_size", tuple(int(s) for s in sizes))  # JSON lists
            if not self.image_size:
                raise ValueError("--image-size needs at least one size.")
            for size in self.image_size:
                check_at_least("image_size", size, 8)
            if len(set(self.image_size)) != len(self.image_size):
                raise ValueError(f"--image-size lists a size twice: {self.image_size}.")
            if self.data == "fish" and self.model == "cnn" and min(self.image_size) < 16:
                raise ValueError(f"The fish CNN space needs --image-size 16 or more (a stride-2 "
                                 f"stem and 3 pooled blocks), got {min(self.image_size)}.")
            if self.model == "mlp" and len(self.image_size) > 1:
                raise ValueError("--model mlp searches one --image-size; the CNN space takes "
                                 "several.")
        for name, low in (("subset", 0), ("val_size", 1), ("max_trials", 1),
                          ("max_epochs", 1), ("executions_per_trial", 1), ("patience", 1),
                          ("top_k", 1)):
            if getattr(self, name) is not None:
                check_at_least(name, getattr(self, name), low)
        if self.data != "fish":
            given = [name for name, default in (
                ("train_dir", DEFAULT_TRAIN_DIR), ("val_dir", DEFAULT_VAL_DIR),
                ("test_dir", None), ("data_dir", None), ("compare_run", AUTO),
                ("test_from", "val"), ("test_split", 0.5), ("validation_split", 0.2))
                if getattr(self, name) != default]
            if given:
                raise ValueError(f"--{given[0].replace('_', '-')} is only read with --data "
                                 f"fish, not --data {self.data}.")
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
        ``quick``; ``--quick`` turns ``run_eagerly`` on (not for fish). Resolving twice changes
        nothing.

        Returns:
            A new `SearchConfig`.
        """
        fish = self.data == "fish"
        tuner = self.tuner or ("hyperband" if fish else "random")
        hyperband = tuner == "hyperband"
        # Eager is faster for --quick's tiny slices; fish uses every photo, so not there.
        fill: dict[str, object] = {"tuner": tuner,
                                   "run_eagerly": self.run_eagerly or (self.quick and not fish)}
        if self.max_trials is None:
            fill["max_trials"] = 3 if self.quick else (None if hyperband else 10)
        if self.max_epochs is None:
            fill["max_epochs"] = ((3 if hyperband else 1) if self.quick
                                  else 9 if fish and hyperband else 5)
        if self.patience is None:
            fill["patience"] = 4 if fish else 2
        if self.subset is None and not fish:
            fill["subset"] = (1200 if self.data == "mnist" else 240) if self.quick \
                else (12000 if self.data == "mnist" else 480)
        if self.image_size is None:
            fill["image_size"] = (32,) if self.quick else \
                (64, 96) if self.model == "cnn" else (64,)
        if self.imbalance == "auto":
            fill["imbalance"] = "class_weight" if fish else "none"
        if self.project_name is None:
            fill["project_name"] = (f"{self.data}_{self.model}_{tuner}"
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

    def fish_folders(self) -> tuple[str, str | None, str | None]:
        """``(train, validation, test)`` folders as `recipes.data.fish.load_fish_splits`
        takes them (``data_dir`` replaces the first two), as ``ch11.fish`` reads them."""
        if self.data_dir:
            return self.data_dir, None, self.test_dir
        return self.train_dir, self.val_dir, self.test_dir


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
