"""Regularization: none, l2, dropout, alpha dropout (SELU), MC dropout, max-norm, on MNIST.

Hands-On ML, chapter 11, "Avoiding Overfitting Through Regularization". The same MLP is
trained from the same seed without regularization, with an l2 kernel penalty, with
dropout, with max-norm constraints, and as a self-normalizing SELU net with and without
alpha dropout; the dropout model is then also evaluated with Monte Carlo dropout
(`recipes.regularization.mc_predict`). To make overfitting visible in a few minutes the
nets train on a subset of the training set. The run reports the train-validation gap
that diagnoses overfitting, test accuracy and log loss, the hidden kernels' norms and
histograms (`recipes.diagnosis.measures.weight_stats`, `recipes.plots.weight_histograms`: l2 and
max-norm shrink the weights), and MC dropout's predictive uncertainty on correct vs wrong
predictions, with how well it flags the wrong ones (ROC, `recipes.plots.roc_plot`).

Run: ``python -m ch11.regularization`` (``make recipe-regularization``), ``--quick`` for a
smoke run.
"""

from ch11._config import experiment_package
from ch11.regularization.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "main", "prediction_stats", "run"]
