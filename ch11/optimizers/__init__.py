"""Faster optimizers: SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam, AdaMax, Nadam, AdamW.

Hands-On ML, chapter 11, "Faster Optimizers". The same MLP (the notebook's three hidden
layers of 100 ReLU units, He initialization) is trained from the same seed with each
optimizer for the same number of epochs on MNIST. The run reports the learning curves,
the validation and test accuracy after N epochs, the final loss, and the time per epoch.

Run: ``python -m ch11.optimizers`` (``make recipe-optimizers``), ``--quick`` for a smoke run.
"""

from ch11._config import experiment_package
from ch11.optimizers.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "main", "run"]
