"""ch11-recipes: Chapter 11 of Hands-On Machine Learning as importable Keras 3 pieces.

Importing the package registers every custom layer, schedule and loss with Keras, so
``import recipes; keras.models.load_model(path)`` reloads a saved model with nothing else.

Example:

```python
from recipes import MLPSpec, build_mlp, make_optimizer, OneCycle
model = build_mlp(MLPSpec(batch_norm="before"), input_shape=(28, 28), num_classes=10)
```
"""

from recipes._tfstartup import import_tensorflow_quietly

import_tensorflow_quietly()

from recipes.activations import ACTIVATION_NAMES, RReLU, make_activation  # noqa: E402
from recipes.builders import build_cnn, build_mlp, count_params  # noqa: E402
from recipes.callbacks import SCHEDULE_NAMES, make_callbacks, make_schedule  # noqa: E402
from recipes.diagnostics import (  # noqa: E402
    GradientMonitor,
    activation_stats,
    gradient_norms,
    layer_outputs,
    saliency_map,
    weight_stats,
)
from recipes.doctor import Finding, Thresholds, diagnose, examine  # noqa: E402
from recipes.fish import FishData, load_fish  # noqa: E402
from recipes.initializers import (  # noqa: E402
    INITIALIZER_NAMES,
    make_initializer,
    recommended_initializer,
)
from recipes.losses import (  # noqa: E402
    LOSS_NAMES,
    AnyLabelCrossentropy,
    FocalLoss,
    SoftmaxMeanSquaredError,
    class_weights,
    make_loss,
)
from recipes.lr_finder import LRFinderResult, find_learning_rate  # noqa: E402
from recipes.lr_probe import probe_learning_rate  # noqa: E402
from recipes.metrics import (  # noqa: E402
    class_report,
    confusion_matrix,
    precision_recall_f1,
    roc_auc_per_class,
    roc_curves,
)
from recipes.optimizers import OPTIMIZER_NAMES, make_optimizer  # noqa: E402
from recipes.pipeline import make_dataset  # noqa: E402
from recipes.regularization import MCDropout, make_regularizer, mc_predict  # noqa: E402
from recipes.runs import EpochTimer  # noqa: E402
from recipes.schedules import CyclicalLR, OneCycle, PowerSchedule  # noqa: E402
from recipes.selu import build_selu_mlp, layer_statistics  # noqa: E402
from recipes.specs import CNNSpec, MLPSpec  # noqa: E402
from recipes.transfer import fine_tune, freeze, reuse_layers, unfreeze  # noqa: E402

__version__ = "0.1.0"


def __getattr__(name: str):
    # `load_mnist` loads lazily, so `python -m recipes.data` does not find its own module
    # already imported by the package (runpy's RuntimeWarning).
    if name == "load_mnist":
        from recipes.data import load_mnist

        return load_mnist
    raise AttributeError(f"module 'recipes' has no attribute {name!r}")


__all__ = [
    "ACTIVATION_NAMES",
    "INITIALIZER_NAMES",
    "LOSS_NAMES",
    "OPTIMIZER_NAMES",
    "SCHEDULE_NAMES",
    "AnyLabelCrossentropy",
    "CNNSpec",
    "CyclicalLR",
    "EpochTimer",
    "Finding",
    "FishData",
    "FocalLoss",
    "GradientMonitor",
    "LRFinderResult",
    "MCDropout",
    "MLPSpec",
    "OneCycle",
    "PowerSchedule",
    "RReLU",
    "SoftmaxMeanSquaredError",
    "Thresholds",
    "activation_stats",
    "build_cnn",
    "build_mlp",
    "build_selu_mlp",
    "class_report",
    "class_weights",
    "confusion_matrix",
    "count_params",
    "diagnose",
    "examine",
    "find_learning_rate",
    "fine_tune",
    "freeze",
    "gradient_norms",
    "layer_outputs",
    "layer_statistics",
    "load_fish",
    "load_mnist",
    "make_activation",
    "make_callbacks",
    "make_dataset",
    "make_initializer",
    "make_loss",
    "make_optimizer",
    "make_regularizer",
    "make_schedule",
    "mc_predict",
    "precision_recall_f1",
    "probe_learning_rate",
    "recommended_initializer",
    "reuse_layers",
    "roc_auc_per_class",
    "roc_curves",
    "saliency_map",
    "unfreeze",
    "weight_stats",
]
