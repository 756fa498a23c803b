"""Keras Tuner hypermodels and the search CLI."""

import recipes  # noqa: F401  (imports TensorFlow first, without its start-up chatter)
