"""Batch, mini-batch and stochastic gradient descent: loss per epoch and per second, on MNIST.

Hands-On ML, chapter 4, "Batch Gradient Descent", "Stochastic Gradient Descent" and
"Mini-batch Gradient Descent", the plain optimizer that chapter 11's "Faster Optimizers"
builds on. The same MLP (the book's 300-100 ReLU net, He init) trains from the same seed
with plain SGD and batch sizes from the whole training set per step (batch GD) down to
one image per step (stochastic GD, on a slice so it finishes); the learning rate follows
the batch size by a fixed rule. The run reports validation loss against epochs, against
training seconds and against steps, steps and images per second, and the final accuracy.

Run: ``python -m ch11.gradient_descent`` (``make recipe-gd``), ``--quick`` for a smoke run.
"""

from ch11._config import experiment_package
from ch11.gradient_descent.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "learning_rate_for", "main", "run"]
