"""Skip connections in a very deep MLP: per-layer gradient norms with and without them.

Hands-On ML, chapter 11, "The Vanishing/Exploding Gradients Problems" and "Batch
Normalization", with the residual connections of chapter 14 ("ResNet") applied to a
50-layer MLP. The same deep MLP is built with and without identity skip connections
around every hidden layer (``MLPSpec(residual=True)``) and with and without batch norm,
for each activation; from the same seed. The run measures the norm of the loss gradient
for every hidden kernel at initialization and after one epoch of plain SGD, the loss at
initialization, and the accuracy.

Run: ``python -m ch11.residual`` (``make recipe-residual``), ``--quick`` for a smoke run.
"""

from ch11._config import experiment_package
from ch11.residual.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "hidden_gradient_norms", "main", "run"]
