"""Vanishing and exploding gradients: per-layer signal and gradients of a deep MLP at init.

Hands-On ML, chapter 11, "The Vanishing/Exploding Gradients Problems" (figure 11-1) and
"Glorot and He Initialization". A deep MLP (30 hidden layers of 100 units) is built four
ways: sigmoid with the bad ``RandomNormal(stddev=1)`` weights of the chapter's opening,
sigmoid with Glorot, ReLU with He and SELU with LeCun. At initialization the run measures
every hidden layer's activation std and the norm of the loss gradient with respect to its
kernel (one batch of training images); then each net trains for one epoch from those same
weights. Plots: layer vs activation std, the gradient flow (layer vs gradient norm, log
scale, `recipes.plots.gradient_flow`) and the sigmoid + RandomNormal(1) net's activation
histograms per layer (`recipes.plots.activation_histograms`), where saturation shows.

Run: ``python -m ch11.gradients`` (``make recipe-gradients``), ``--quick`` for a smoke run.
"""

from ch11._config import experiment_package
from ch11.gradients.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "main", "run"]
