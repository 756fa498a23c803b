"""Test set-up: quiet TensorFlow, the Agg backend, no TensorBoard logs, a throw-away photo cache."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
# No TensorBoard logs unless a test asks for them (tests/test_tensorboard.py and the
# notebook's run do): they cost a tenth of every quick experiment's time.
os.environ.setdefault("RECIPES_TENSORBOARD", "off")
# One TensorFlow thread per pytest worker (make test runs two on 2 cores), as the MNIST
# experiments' command lines use: the tests' small models run as fast on one.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

# Decoded photos of the tests' tiny folders go to a throw-away cache, not the user's.
import tempfile  # noqa: E402

import recipes  # noqa: E402,F401  (imports TensorFlow once, quietly)

os.environ.setdefault("RECIPES_PHOTO_CACHE", tempfile.mkdtemp(prefix="recipes-photos-"))


def pytest_collection_finish(session):
    """Move what the imports and the collection made out of the garbage collector's sight.

    Those objects (TensorFlow, Keras, pandas, the test modules: about 400,000) live as long
    as the worker; frozen, each full collection (Keras Tuner's two per trial, Python's own)
    no longer walks them. Measured with a gc.collect wrapper before: 0.16 s per collection
    in a fresh worker, and about 40% of the suite's CPU time in gc.collect.
    """
    import gc

    gc.collect()
    gc.freeze()
