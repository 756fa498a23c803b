"""The hand recipe beside the best trial: a ``make recipe-fish`` run's CNN on the same test photos.

The comparison reads a finished ``make recipe-fish`` run (``runs/fish/<time>_s<seed>/``:
``config.json``, ``results.json``, ``cnn.keras``) instead of training the hand recipe
again inside the search, for three reasons:

- the tuner imports `recipes` only, never `ch11`, and the hand recipe (its spec, the LR
  range test, 1cycle, early stopping, the imbalance remedy) lives in ``ch11`` with
  defaults that are still being tuned: a copy here would compare against a stale recipe;
- its saved ``cnn.keras`` is exactly what ``make recipe-fish`` trained, and scoring it here
  on this search's own test photos with `recipes.metrics.class_report` puts both models on
  the same photos through the same code, whatever image size each was trained at;
- it costs seconds, not another training inside the search's 30 minutes.

The run must have split its photos as this search does (same folders, held-out
fractions and seed, read from its ``config.json``): then its CNN never trained or stopped
early on one of the test photos. `check_compare_run` checks that before the search starts;
``--compare-run auto`` takes the newest finished run that passes it.

Example:

```python
run = find_compare_run(config)            # (Path or None, "why")
hand = score_hand_recipe(run[0], test_at, class_names)
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 2 ("Create a Test Set": one held-out set for
every model compared) and ch. 10 (compare the tuned model with the hand-made one).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["AUTO", "RUN_FILES", "check_compare_run", "comparison_section", "find_compare_run",
           "run_folder", "score_hand_recipe", "split_differences"]

AUTO = "auto"
RUN_FILES = ("config.json", "results.json", "cnn.keras")
RUNS_ROOT = Path("runs") / "fish"  # where `make recipe-fish` writes its runs (ch11.fish)


def run_folder(path: str | os.PathLike) -> Path:
    """The run folder of a ``make recipe-fish`` run, given the folder or its results.json.

    Args:
        path: the run folder, or a file in it (``results.json``).

    Returns:
        The folder.

    Raises:
        ValueError: no such folder, or one of `RUN_FILES` is missing (an unfinished run
            has no results.json); the message names it.
    """
    folder = Path(path).expanduser()
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"--compare-run {str(path)!r} is neither a run folder nor a file in "
                         "one: give a runs/fish/<time>_s<seed>/ folder of `make recipe-fish`.")
    missing = [name for name in RUN_FILES if not (folder / name).exists()]
    if missing:
        raise ValueError(f"--compare-run {str(folder)!r} has no {', '.join(missing)}: it is not "
                         "a finished `make recipe-fish` run (one that trained the CNN).")
    return folder


def _path(value: str | None) -> str | None:
    return None if value in (None, "", "none") else str(Path(value).expanduser().resolve())


def _splits(fields: dict[str, Any]) -> dict[str, Any]:
    """The facts that decide which photo lands in which split."""
    if fields.get("data_dir"):
        train, val = fields["data_dir"], None
    else:
        train, val = fields.get("train_dir"), fields.get("val_dir")
    test = fields.get("test_dir")
    out: dict[str, Any] = {"train folder": _path(train), "validation folder": _path(val),
                           "test folder": _path(test), "seed": fields.get("seed")}
    if val is None:
        out["validation_split"] = fields.get("validation_split")
    if test in (None, "", "none"):
        out["test_from"] = fields.get("test_from")
        out["test_split"] = fields.get("test_split")
    return out


def split_differences(run_config: dict[str, Any], config: Any) -> list[str]:
    """How a run's photo splits differ from a search's (empty: the same splits).

    Args:
        run_config: the run's ``config.json``.
        config: the search's `SearchConfig`.

    Returns:
        One ``"name: run X, search Y"`` line per difference.
    """
    ours = _splits({name: getattr(config, name) for name in
                    ("train_dir", "val_dir", "test_dir", "data_dir", "test_from",
                     "test_split", "validation_split", "seed")})
    theirs = _splits(run_config)
    return [f"{k}: run {theirs.get(k)!r}, search {ours.get(k)!r}"
            for k in dict.fromkeys([*ours, *theirs]) if ours.get(k) != theirs.get(k)]


def check_compare_run(path: str | os.PathLike, config: Any) -> Path:
    """Check that a run can be compared with the search: finished, with the same splits.

    Args:
        path: the run folder or its results.json.
        config: the search's `SearchConfig`.

    Returns:
        The run folder.

    Raises:
        ValueError: not a finished run, or its photos were split otherwise (each
            difference is listed, with the fix).
    """
    folder = run_folder(path)
    run_config = json.loads((folder / "config.json").read_text())
    diff = split_differences(run_config, config)
    if diff:
        raise ValueError(f"--compare-run {str(folder)!r} split its photos otherwise than this "
                         f"search ({'; '.join(diff)}), so its CNN may have seen test photos: "
                         "run `make recipe-fish` with the same folder options and seed, or "
                         "give --compare-run none.")
    return folder


def find_compare_run(config: Any, root: str | os.PathLike = RUNS_ROOT
                     ) -> tuple[Path | None, str]:
    """The run to compare with: ``--compare-run`` itself, or with ``auto`` the newest match.

    Args:
        config: the search's `SearchConfig` (its ``compare_run``).
        root: where ``make recipe-fish`` writes its runs. Defaults to ``runs/fish``.

    Returns:
        ``(run folder or None, a sentence saying which run and why, for the report)``.
    """
    if config.compare_run is None:
        return None, "No comparison with the hand recipe (--compare-run none)."
    if config.compare_run != AUTO:
        folder = check_compare_run(config.compare_run, config)
        return folder, f"The hand recipe is the CNN of `{folder}` (--compare-run)."
    runs = sorted((p for p in Path(root).glob("*") if p.is_dir()), reverse=True)
    skipped = 0
    for folder in runs:
        try:
            check_compare_run(folder, config)
        except (ValueError, OSError):
            skipped += 1
            continue
        return folder, (f"The hand recipe is the CNN of `{folder}`, the newest finished "
                        "`make recipe-fish` run with this search's splits (--compare-run auto).")
    why = (f"none of the {skipped} run(s) in {root}/ is finished with this search's splits"
           if skipped else f"there is no run in {root}/")
    return None, (f"No comparison with the hand recipe: {why}. Run `make recipe-fish` with the "
                  "same folder options first (or give --compare-run RUN).")


def score_hand_recipe(folder: str | os.PathLike, test_at: Callable[[int], tuple[Any, Any]],
                      class_names: Sequence[str]) -> dict[str, Any]:
    """Score a run's CNN on the search's test photos (at the size the CNN takes).

    Args:
        folder: the run folder (`check_compare_run` passed).
        test_at: ``test_at(image_size) -> (x_test, y_test)``, the search's test photos at
            that size (from the decoded-photo cache).
        class_names: the search's classes, in label order.

    Returns:
        ``{"run", "image_size", "quick", "report" (a `recipes.metrics.class_report`
        DataFrame), "accuracy", "macro_auc", "correct", "test_size", "probs",
        "reported" (the run's own results.json metrics)}``.

    Raises:
        ValueError: the run's CNN has other classes than the search.
    """
    import keras
    import numpy as np

    from recipes.metrics import class_report

    folder = Path(folder)
    model = keras.models.load_model(folder / "cnn.keras")
    classes_file = folder / "cnn.classes.json"
    names = (json.loads(classes_file.read_text()).get("class_names")
             if classes_file.exists() else None)
    if names is not None and list(names) != list(class_names):
        raise ValueError(f"The hand recipe's CNN in {folder} was trained on other classes "
                         f"({len(names)}: {', '.join(names)}) than this search's.")
    size = int(model.input_shape[1])
    x, y = test_at(size)
    probs = np.asarray(model.predict(x, batch_size=256, verbose=0), dtype="float64")
    report = class_report(y, probs, list(class_names))
    run_config = json.loads((folder / "config.json").read_text())
    results = json.loads((folder / "results.json").read_text())
    correct = int(np.sum(probs.argmax(axis=1) == y))
    return {"run": str(folder), "image_size": size, "quick": bool(run_config.get("quick")),
            "report": report, "accuracy": correct / max(1, len(y)),
            "macro_auc": float(np.nanmean(report["auc"])), "correct": correct,
            "test_size": int(len(y)), "probs": probs,
            "reported": results.get("metrics", {})}


def _verdict(ours: float, theirs: float, tolerance: float) -> str:
    if not (ours == ours and theirs == theirs):  # a NaN: no verdict
        return "cannot be compared on"
    if abs(ours - theirs) <= tolerance:
        return "ties with the hand recipe on"
    return "beats the hand recipe on" if ours > theirs else "trails the hand recipe on"


def comparison_section(best: dict[str, Any], hand: dict[str, Any], rare: str) -> tuple[str, str]:
    """The report's comparison of the best model with the hand recipe, and its verdict.

    Args:
        best: the best model's test scores: ``report`` (a `class_report` DataFrame),
            ``correct``, ``test_size``, ``accuracy``, ``mean_auc``, and optionally
            ``checkpoint`` (`tuning.final.score_checkpoint`'s dict: a column of its own).
        hand: `score_hand_recipe`'s result.
        rare: the rare class's name.

    Returns:
        ``(markdown body, one-sentence verdict)``.
    """
    import pandas as pd

    from recipes.runs import markdown_table

    ours, theirs = best["report"].set_index("class"), hand["report"].set_index("class")
    n = best["test_size"]

    def rare_recall(table: pd.DataFrame) -> float:
        return float(table.loc[rare, "recall"])

    def rare_hits(table: pd.DataFrame) -> str:
        support = int(table.loc[rare, "support"])
        return f"{round(rare_recall(table) * support)}/{support}"

    columns = {
        "": ["test accuracy", "macro ROC AUC", f"recall of the rare class '{rare}'"],
        "best trial (retrained)": [f"{best['accuracy']:.4f} ({best['correct']}/{n})",
                                   f"{best['mean_auc']:.4f}", rare_hits(ours)],
    }
    ckpt = best.get("checkpoint") or {}
    like = ""
    if "per_class" in ckpt:  # the trial's own best epoch: trained and stopped as the hand one
        table = pd.DataFrame(ckpt["per_class"]).set_index("class")
        columns["its checkpoint (training split)"] = [
            f"{ckpt['accuracy']:.4f} ({ckpt['correct']}/{n})", f"{ckpt['mean_auc']:.4f}",
            rare_hits(table)]
        like = (f" Like for like (the training split only, the best validation epoch, as the "
                f"hand recipe was trained), the trial's own checkpoint "
                f"{_verdict(ckpt['correct'], hand['correct'], 0)} test accuracy "
                f"({ckpt['correct'] - hand['correct']:+d} photo(s) of {n}).")
    columns["hand recipe"] = [f"{hand['accuracy']:.4f} ({hand['correct']}/{hand['test_size']})",
                              f"{hand['macro_auc']:.4f}", rare_hits(theirs)]
    summary = pd.DataFrame(columns)
    parts = [f"{_verdict(best['correct'], hand['correct'], 0)} test accuracy "
             f"({best['correct'] - hand['correct']:+d} photo(s) of {n})",
             f"{_verdict(best['mean_auc'], hand['macro_auc'], 5e-4)} macro ROC AUC",
             f"{_verdict(rare_recall(ours), rare_recall(theirs), 0)} the rare class's recall"]
    verdict = f"On the same {n} test photos the best trial {', '.join(parts)}."
    per_class = pd.DataFrame({
        "class": ours.index, "support": ours["support"].astype(int).to_numpy(),
        "AUC best": ours["auc"].to_numpy(), "AUC hand": theirs.loc[ours.index, "auc"].to_numpy(),
        "recall best": ours["recall"].to_numpy(),
        "recall hand": theirs.loc[ours.index, "recall"].to_numpy(),
        "precision best": ours["precision"].to_numpy(),
        "precision hand": theirs.loc[ours.index, "precision"].to_numpy(),
    })
    reported = hand["reported"]
    own = (f" (its own report: test accuracy {reported['cnn_test_acc']:.4f}, macro AUC "
           f"{reported['cnn_macro_auc']:.4f}, on the same split)"
           if {"cnn_test_acc", "cnn_macro_auc"} <= set(reported) else "")
    quick = (" It was a `--quick` run (a tiny CNN, 2 epochs): not the real recipe."
             if hand["quick"] else "")
    body = (f"The hand recipe is the CNN that `make recipe-fish` trained in `{hand['run']}` at "
            f"{hand['image_size']}x{hand['image_size']} (training split, early stopping on "
            f"the validation split){own}; the best trial's model was retrained on training + "
            f"validation. Both are scored here, by the same code, on the same test photos."
            f"{quick}\n\n**{verdict}**{like} A photo or two either way is within chance on "
            f"{n} photos.\n\n{markdown_table(summary)}\n\nPer class (test split):\n\n"
            f"{markdown_table(per_class)}")
    return body, verdict
