"""Overfitting from capacity: few photos per class, growing networks, regularized or not.

Hands-On ML, chapter 11 ("Avoiding Overfitting Through Regularization") and the course's
question: "more capacity took validation accuracy from 85% to 65% while training reached
98%". On a small training subset of the course's fish photos (`--per-class` photos of each
class), the same CNN is trained with a dense head of growing width (its parameter count
grows ~100x), once plainly and once with the chapter's regularization (dropout, an L2
penalty and data augmentation), for the same number of epochs. The report tabulates and
plots the training and validation accuracy and their gap per size.

Run: ``python -m ch11.fish_capacity`` (``make recipe-fish-capacity``), ``--quick`` for a
smoke run.
"""

from ch11._config import experiment_package
from ch11.fish_capacity.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "main", "run"]
