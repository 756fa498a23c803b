"""Transfer learning on photos, offline: model A's layers reused for task B with few photos.

Hands-On ML, chapter 11 ("Reusing Pretrained Layers", "Transfer Learning with Keras") on the
course's fish photos, the book's model A -> model B on real images. Model A is the CNN from
scratch trained on the nine seafood species (thousands of photos). Task B is the other task
with few photos: the two underwater classes, "animal fish" vs the rare "animal fish bass",
from `--b-per-class` training photos each. Model B reuses A's convolutional layers (cloned,
A is never changed) with a new head, trained with them frozen, then fine-tuned at a tenth of
the rate; a B of the same architecture trains from scratch on the same photos; every B over
several seeds, all evaluated on the validation folder's underwater photos (which no B model
trains or stops on). `--weights imagenet` (or a weights file) adds a keras.applications
MobileNetV2 backbone as a further B where Keras can download or find ImageNet weights.

Run: ``python -m ch11.fish_transfer`` (``make recipe-fish-transfer``), ``--quick`` for a
smoke run.
"""

from ch11._config import experiment_package
from ch11.fish_transfer.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "main", "run"]
