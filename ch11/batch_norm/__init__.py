"""Batch normalization: none vs after the activation vs before it, on MNIST.

Hands-On ML, chapter 11, "Batch Normalization". The same deep MLP and the same small
CNN are trained without BN, with BN after each activation and with BN before it (the
Dense/Conv layer then has no bias, as the book recommends), from the same seed and with
the same optimizer. The run reports learning curves, accuracy after each epoch, time per
epoch, trainable/non-trainable parameter counts, the train-validation gap, the hidden
activations' spread through depth and the gradient flow of the trained MLPs (both from
`recipes.diagnosis.measures`, on 512 validation images), and what BN does with a very small batch.

Run: ``python -m ch11.batch_norm`` (``make recipe-bn``), ``--quick`` for a smoke run.
"""

from ch11._config import experiment_package
from ch11.batch_norm.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "main", "run"]
