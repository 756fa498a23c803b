"""The project folder on disk: how many trials it has, and whether this search may use it.

`check_project` is the last step of parsing ``python -m tuning.search``'s command line
(`tuning.search.parse_args`): it checks a resolved `tuning.config.SearchConfig` against the
disk. No TensorFlow here.

Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Fine-Tuning Neural Network
Hyperparameters".
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from tuning.compare import AUTO, check_compare_run
from tuning.config import CONFIG_FILE, SAME_ON_RESUME, SearchConfig

__all__ = ["check_project", "project_trials"]


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


def _jsonable(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def check_project(config: SearchConfig) -> SearchConfig:
    """Check a resolved config against the disk: the fish folder and the project folder.

    Args:
        config: a `SearchConfig.resolved` config.

    Returns:
        The same config.

    Raises:
        ValueError: ``--directory`` is under a file or cannot be written; a fish folder is
            not a folder; a ``--compare-run`` is not a finished ``make recipe-fish`` run or
            split its photos otherwise; the project exists and neither ``--resume`` nor
            ``--overwrite`` is given (a worker joins the chief's project, so it is not
            asked); a resumed project was created with other `SAME_ON_RESUME` options, or
            is finished and ``--retrain-final`` is not given. The message says what to
            change.
    """
    _check_writable("--directory", config.directory)
    if config.data == "fish":
        train, val, test = config.fish_folders()
        for flag, folder in ((("--data-dir" if config.data_dir else "--train-dir"), train),
                             ("--val-dir", val), ("--test-dir", test)):
            if folder is not None and not Path(folder).expanduser().is_dir():
                raise ValueError(f"{flag} {folder!r} is not a folder: give a folder with one "
                                 "subfolder of photos per class.")
        if config.compare_run not in (None, AUTO) and config.distributed != "worker":
            check_compare_run(config.compare_run, config)
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
        diff = [k for k in SAME_ON_RESUME if k in old and old[k] != _jsonable(getattr(config, k))]
        if diff:
            was = ", ".join(f"{k}={old[k]!r}" for k in diff)
            raise ValueError(f"Cannot resume {project}: it was created with {was}. Resume "
                             "with the same options, or use --overwrite/--project-name.")
    if config.resume and not config.retrain_final and (project / "results.json").is_file():
        from recipes.runs import is_finished

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
