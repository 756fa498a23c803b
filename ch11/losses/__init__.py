"""Classification losses: cross-entropy vs mean squared error on softmax outputs, and BCE.

Hands-On ML, chapter 10, "Building an Image Classifier Using the Sequential API" (the
loss for classification) and chapter 4, "Softmax Regression" (the cross-entropy
gradient), as chapter 11 uses them. The same MLP trains from the same seed with the
categorical cross-entropy and with the MSE between its softmax probabilities and the
one-hot labels (``recipes.losses.make_loss("mse")``); a one-unit sigmoid version of it
learns a one-vs-rest task (the book's "5-detector") with the binary cross-entropy. The
report computes, with ``tf.GradientTape``, each loss's gradient with respect to the
logits at a wrong answer of growing confidence: the reason MSE learns slowly.

Run: ``python -m ch11.losses`` (``make recipe-losses``), ``--quick`` for a smoke run.
"""

from ch11._config import experiment_package
from ch11.losses.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "logit_gradients", "main", "run"]
