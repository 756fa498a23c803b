"""Gradient clipping: none vs clipvalue vs clipnorm vs global_clipnorm, on an exploding setup.

Hands-On ML, chapter 11, "Gradient Clipping". A deep ReLU MLP trained with momentum at a
learning rate too high for it is a setup whose gradients explode: a large step makes the
next gradient larger, and within an epoch the loss becomes NaN. The same net is trained
from the same seed without clipping and with each of Keras's clipping arguments (through
`recipes.optimizers.make_optimizer`). A small callback records, after every training
step, the global gradient norm (before any clipping) and the loss on one fixed batch of
training images, so the variants are measured on the same data at every step.

Run: ``python -m ch11.clipping`` (``make recipe-clipping``), ``--quick`` for a smoke run.
"""

from ch11._config import experiment_package
from ch11.clipping.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "main", "run"]
