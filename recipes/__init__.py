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
from recipes.data import FishData, load_fish, load_mnist  # noqa: E402
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
from recipes.optimizers import OPTIMIZER_NAMES, make_optimizer  # noqa: E402
from recipes.regularization import MCDropout, make_regularizer, mc_predict  # noqa: E402
from recipes.runs import EpochTimer  # noqa: E402
from recipes.schedules import CyclicalLR, OneCycle, PowerSchedule  # noqa: E402
from recipes.selu import build_selu_mlp, layer_statistics  # noqa: E402
from recipes.specs import CNNSpec, MLPSpec  # noqa: E402
from recipes.transfer import fine_tune, freeze, reuse_layers, unfreeze  # noqa: E402

__version__ = "0.1.0"

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
    "FishData",
    "FocalLoss",
    "LRFinderResult",
    "MCDropout",
    "MLPSpec",
    "OneCycle",
    "PowerSchedule",
    "RReLU",
    "SoftmaxMeanSquaredError",
    "build_cnn",
    "build_mlp",
    "build_selu_mlp",
    "class_weights",
    "count_params",
    "find_learning_rate",
    "fine_tune",
    "freeze",
    "layer_statistics",
    "load_fish",
    "load_mnist",
    "make_activation",
    "make_callbacks",
    "make_initializer",
    "make_loss",
    "make_optimizer",
    "make_regularizer",
    "make_schedule",
    "mc_predict",
    "recommended_initializer",
    "reuse_layers",
    "unfreeze",
]
