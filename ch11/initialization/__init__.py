"""Weight initialization: Glorot vs He vs LeCun vs fan_avg He, matched and mismatched.

Hands-On ML, chapter 11, "Glorot and He Initialization" (Table 11-1). Each initializer
trains the same deep MLP twice: with the activation the chapter's table pairs it with,
and with a mismatched one (Glorot: tanh / ReLU; He: ReLU / tanh; LeCun: SELU / ReLU; the
book's ``VarianceScaling(scale=2, mode="fan_avg", distribution="uniform")``, here
``he_avg_uniform``: ReLU / SELU). The run reports learning curves, accuracy after the
first and the last epoch, and the spread of the last hidden layer's activations at
initialization, which tells whether the initializer kept the signal alive.

Run: ``python -m ch11.initialization`` (``make recipe-init``), ``--quick`` for a smoke run.
"""

from ch11._config import experiment_package
from ch11.initialization.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "initializer_family", "is_matched", "main", "run"]
