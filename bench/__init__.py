"""Benchmarks that measure and write figures (``python -m bench.time_to_accuracy``)."""
