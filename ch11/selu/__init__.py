"""SELU: a 100-layer self-normalizing net vs the same depth with ReLU and no batch norm.

Hands-On ML, chapter 11, "SELU". Two plain stacks of 100 dense layers of 100 units, with
the same standardized inputs (a Normalization layer adapted on the training set) and the
same optimizer (the book's cell: plain SGD at 1e-3, no momentum): SELU with LeCun normal
weights (`recipes.selu.build_selu_mlp`, which meets Klambauer et al.'s conditions) and ReLU
with He normal weights, neither with batch norm. The run measures each hidden layer's
activation mean and std at initialization and after training, the gradient norms at
initialization, and which of the two nets trains, over --seeds. Its investigation trains
the SELU net for one short epoch under other conditions (SGD with momentum at two rates,
pixel standardization with a floored std, AlphaDropout), tracing the per-layer mean and std
during training, to say when a deep SELU net trains on MNIST and why it did not with
momentum.

Run: ``python -m ch11.selu`` (``make recipe-selu``), ``--quick`` for a smoke run.
"""

from ch11._config import experiment_package
from ch11.selu.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "input_profile", "main", "run", "self_normalized"]
