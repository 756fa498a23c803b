"""Keras Tuner hypermodels and the search CLI (``python -m tuning.search``).

`tuning.names` and `tuning.config` (the settings), `tuning.project` (the project folder's
checks) and `tuning.compare` (which ``make recipe-fish`` run to compare with) import no
TensorFlow, nor do the two command lines' modules (`tuning.search`, `tuning.distributed`)
until they run, so ``--help`` answers at once. `tuning.hypermodels` holds the MNIST spaces,
`tuning.fish` the fish photo space.
"""
