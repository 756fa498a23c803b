"""Test set-up: quiet TensorFlow, the Agg backend, and the `slow` marker."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

# Decoded photos of the tests' tiny folders go to a throw-away cache, not the user's.
import tempfile  # noqa: E402

import recipes  # noqa: E402,F401  (imports TensorFlow once, quietly)

os.environ.setdefault("RECIPES_PHOTO_CACHE", tempfile.mkdtemp(prefix="recipes-photos-"))
