"""CNN hyperparameters: kernel size x pooling x optimizer, each with early stopping.

Hands-On ML, chapter 11 coursework on MNIST ("Faster Optimizers", "Early Stopping"; the
CNN blocks of chapter 14). A small CNN is trained for every combination of kernel size
(3, 5, 7), pooling (max, average) and optimizer (SGD, RMSprop, Adam at the book's default
rates), each from the same seed with `keras.callbacks.EarlyStopping(restore_best_weights=
True)`, on a 10,000-image subset of the training set so the 18 runs fit in minutes. The
run reports a table, the loss curves, a validation-accuracy grid per optimizer and the
best configuration (chosen on validation accuracy; its test accuracy is reported).

Run: ``python -m ch11.cnn_hparams`` (``make recipe-cnn``), ``--quick`` for a smoke run.
"""

from ch11._config import experiment_package
from ch11.cnn_hparams.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "main", "run"]
