"""Class imbalance on purpose: MNIST with one digit made rare, then four treatments.

Hands-On ML, chapter 10, "Using the Sequential API" (``class_weight`` in ``fit``) and
chapter 3, "Performance Measures" (confusion matrix, precision/recall, ROC AUC), with the
focal loss of Lin et al. (2017). Only a small fraction of one digit's training images is
kept (the validation and test sets are untouched), and the same MLP trains from the same
seed with the plain cross-entropy, with balanced class weights
(``recipes.losses.class_weights``), with the focal loss (``make_loss("focal")``) and on a
training set where the rare digit's images are repeated (oversampling). The run reports
per-class recall and one-vs-rest AUC, the confusion matrices, and what
``recipes.diagnosis.doctor.diagnose`` finds (a lagging class or not).

Run: ``python -m ch11.imbalance`` (``make recipe-imbalance``), ``--quick`` for a smoke run.
"""

from ch11._config import experiment_package
from ch11.imbalance.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["TREATMENTS", "Config", "main", "make_imbalanced", "oversample", "run"]
