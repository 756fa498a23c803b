"""Keras Tuner hypermodels and the search CLI (``python -m tuning.search``).

`tuning.names` and `tuning.config` (the settings) import no TensorFlow, nor do the two
command lines' modules (`tuning.search`, `tuning.distributed`) until they run, so
``--help`` answers at once.
"""
