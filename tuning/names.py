"""The tuner's names, in one module that does not import TensorFlow.

``python -m tuning.search --help`` lists them before anything imports Keras or Keras
Tuner; the modules that implement them key their tables by them (`tuning.data.load_data`,
`tuning.hypermodels.MODELS`, `tuning.tuners.TUNERS`), and a test checks that each table
has exactly these names.

Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Fine-Tuning Neural Network
Hyperparameters".
"""

from __future__ import annotations

__all__ = ["DATASET_NAMES", "MODEL_NAMES", "OBJECTIVES", "RARE_OBJECTIVE", "TEST_SOURCES",
           "TUNER_NAMES"]

DATASET_NAMES: tuple[str, ...] = ("mnist", "fish", "synthetic")
MODEL_NAMES: tuple[str, ...] = ("cnn", "mlp")
TUNER_NAMES: tuple[str, ...] = ("random", "hyperband", "bayesian", "grid")
# val_macro_auc and val_rare_recall are logged by recipes.callbacks.ValidationMetrics.
OBJECTIVES: tuple[str, ...] = ("val_accuracy", "val_loss", "accuracy", "loss", "val_macro_auc",
                               "val_rare_recall")
RARE_OBJECTIVE = "val_rare_recall"  # the recall of the smallest class of the training split
TEST_SOURCES: tuple[str, ...] = ("val", "train")  # recipes.data.fish's, without pandas
