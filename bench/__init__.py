"""Benchmarks that measure and write figures."""

import recipes  # noqa: F401  (imports TensorFlow first, without its start-up chatter)
