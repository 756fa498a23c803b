"""Chapter 11 experiments: one runnable module per chapter section."""

import recipes  # noqa: F401  (imports TensorFlow first, without its start-up chatter)
