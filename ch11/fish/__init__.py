"""Fish species from photos: the chapter's CNN from scratch on the real splits.

Hands-On ML, chapter 11 (He initialization, batch norm, a non-saturating activation, 1cycle
with its peak from the LR range test, early stopping, dropout, data augmentation) on the
course's fish photographs: by default 6,225 training photos (`../shared/data/fish-train`)
and 1,092 validation photos (`../shared/data/fish-val`) in 11 classes, the rare "animal fish
bass" among them. Photos are decoded once into a disk cache and fed through the static
pipeline. The report has per-class metrics, ROC curves, the confusion matrix and its most
frequent mistakes, saliency maps, the training doctor's findings and the input speed, and
the best model is saved for `predict`. `--backbone` adds a keras.applications model
(transfer learning; `--weights imagenet` where Keras can download them).

Run: ``python -m ch11.fish [--test-dir DIR]`` (``make recipe-fish``), ``--quick`` for a
smoke run, ``python -m ch11.fish predict --model PATH PHOTO|FOLDER...``.
"""

import sys
from collections.abc import Sequence

from ch11._config import experiment_package
from ch11.fish.config import Config

_main, __getattr__ = experiment_package(__name__, Config)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ch11.fish [options]`` or ``python -m ch11.fish predict ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["predict"]:
        from ch11.fish.predict import main as predict_main

        return predict_main(argv[1:])
    return _main(argv)


__all__ = ["Config", "main", "run"]
