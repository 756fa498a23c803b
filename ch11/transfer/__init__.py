"""Transfer learning: reuse model A's layers for a small task B, over several seeds.

Hands-On ML, chapter 11, "Reusing Pretrained Layers" / "Transfer Learning with Keras",
moved from Fashion MNIST to MNIST. Model A is trained on the 8 digits that are not in
task B; task B is a binary task on the two other digits with only a couple of hundred
training images. Model B is trained from scratch, and model "B on A" reuses A's hidden
layers (`recipes.transfer.reuse_layers`, a clone, so A is unchanged), first frozen, then
unfrozen (`recipes.transfer.fine_tune`). Every B model is trained with several seeds, and
the run reports the mean and the spread of the test error rates: the book warns that its
own striking improvement came from trying configurations until one looked good.

Run: ``python -m ch11.transfer`` (``make recipe-transfer``), ``--quick`` for a smoke run.
"""

from ch11._config import experiment_package
from ch11.transfer.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "main", "run", "split_tasks"]
