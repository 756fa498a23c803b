"""Diagnose a trained (or failing) Keras model: why does training fail?

Hands-On ML, chapter 11, the whole chapter turned around: instead of showing a remedy,
find the problem. The model is loaded from a ``.keras`` file, run on a few batches of
real data (and, with ``--probe-steps N``, trained N steps on COPIES at its own learning
rate, 10x and 100x it, each on 3 mini-batch orders, the loss measured on the validation
sample: a rate is too high only when every order's loss rises beyond its own
step-to-step noise), and every finding is printed with its evidence (the numbers) and
the chapter's remedy: vanishing or exploding gradients, NaN/Inf, dead ReLUs, saturated
sigmoid/tanh units, a lagging class, overfitting, a learning rate too high or too low.
``report.md`` with the plots (gradient flow, activation and weight histograms, confusion
matrix, ROC curves, saliency maps, the probe's losses) goes to a run folder.

Data: ``--data mnist`` draws ``--samples`` images from MNIST's training set (the
"training" sample: gradients, activations, the train side of the gap) and as many from its
test set (the "validation" sample: per-class AUC, the other side of the gap).
``--data fish --data-dir DIR`` draws them from the training split and from the validation
and test splits of ``recipes.data.load_fish``, resized to the model's input size.
Pixel scale rule (both data sets): the images are scaled to [0, 1] unless the model's
first layer with any effect is a ``Rescaling`` layer, which then gets the raw 0-255
pixels. MNIST images are reshaped to ``(28, 28, 1)`` or ``(784,)`` when the model takes
those.

Exit code: 0 when nothing is found ("No findings"), 1 when something is, 2 on bad input
(a file that is not a Keras model, data that do not fit it), with a message.

Run: ``python -m ch11.diagnose --model runs/x/model.keras --data mnist [--probe-steps 20]``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from ch11.diagnose.config import Config
from recipes.cli import module_prog, parse_config

__all__ = ["Config", "load_data", "load_history", "load_keras_model", "main", "run"]

# Public names imported from their module on first use (the check-up imports TensorFlow).
_EXPORTS = {"run": "checkup", "load_data": "inputs", "load_history": "inputs",
            "load_keras_model": "inputs"}


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m ch11.diagnose --model PATH.keras --data mnist|fish [...]``.

    The options are parsed (``--help`` answers) before TensorFlow is imported.

    Args:
        argv: the arguments. Defaults to `None` (``sys.argv[1:]``).

    Returns:
        0 without findings, 1 with findings, 2 on bad input (a message on stderr).
    """
    config = parse_config(Config, argv, prog=module_prog(__name__), description=__doc__)
    from recipes._startup import import_tensorflow_quietly

    import_tensorflow_quietly()
    from ch11.diagnose.checkup import run
    from recipes.data import MnistUnavailableError

    try:
        results = run(config)
    except (ValueError, OSError, MnistUnavailableError) as e:
        print(f"python -m ch11.diagnose: error: {e}", file=sys.stderr)
        return 2
    return 1 if results.metrics["findings"] else 0


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
