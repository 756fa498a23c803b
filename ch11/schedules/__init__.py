"""Learning-rate scheduling: seven schedules, the LR range test, and 1cycle on a CNN.

Hands-On ML, chapter 11, "Learning Rate Scheduling" (and chapter 10's learning-rate
range test). The LR range test picks the rate (the book's rule: about 10x below the rate
where the loss is lowest); then the same MLP is trained from the same seed with constant,
power, exponential, piecewise-constant, performance (ReduceLROnPlateau), 1cycle and
cyclical scheduling. A small CNN then checks the 1cycle promise: 99% test accuracy on
MNIST within a few epochs, against a constant rate.

Run: ``python -m ch11.schedules`` (``make recipe-schedules``), ``--quick`` for a smoke run.
"""

from ch11._config import experiment_package
from ch11.schedules.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "main", "run", "schedule_for"]
