"""SELU: a 100-layer self-normalizing net vs the same depth with ReLU and no batch norm.

Hands-On ML, chapter 11, "SELU". Two plain stacks of 100 dense layers of 100 units, with
the same standardized inputs (a Normalization layer adapted on the training set) and the
same optimizer: SELU with LeCun normal weights (`recipes.selu.build_selu_mlp`, which meets
Klambauer et al.'s conditions) and ReLU with He normal weights, neither with batch norm.
The run measures each hidden layer's activation mean and std at initialization and after
training, the gradient norms at initialization, and which of the two nets trains.

Run: ``python -m ch11.selu`` (``make recipe-selu``), ``--quick`` for a smoke run.
"""

from ch11._config import experiment_package
from ch11.selu.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "main", "run", "self_normalized"]
