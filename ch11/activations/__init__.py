"""Activation functions: nine of them on one deep MLP, and the dying ReLUs.

Hands-On ML, chapter 11, "Better Activation Functions". The same deep MLP (10 hidden
layers of 100 units, each activation with the initializer Table 11-1 gives it) is trained
with ReLU, leaky ReLU, PReLU, RReLU, ELU, SELU, GELU, Swish and Mish, from the same seed.
The run reports accuracy, time per epoch and the fraction of dead units (units whose
output is 0 on every image of a validation batch). A second part trains ReLU, leaky ReLU
and ELU with a too-high learning rate and follows the dead units epoch by epoch: this is
the usual answer to "why does my ReLU net stop improving after N epochs". The diagnostics
(`recipes.diagnosis.measures.activation_stats`) give the dead fraction per layer, drawn with the
demonstration's activation histograms per layer.

Run: ``python -m ch11.activations`` (``make recipe-activations``), ``--quick`` for a smoke run.
"""

from ch11._config import experiment_package
from ch11.activations.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "dead_unit_fraction", "main", "run"]
