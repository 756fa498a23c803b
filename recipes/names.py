"""Every name a factory accepts, in one module that does not import TensorFlow.

The factories (`make_activation`, `make_initializer`, `make_optimizer`, `make_schedule`,
`make_loss`) import their valid names from here, and so do the command lines, which list
them in ``--help`` before anything imports TensorFlow. A test checks that each tuple is
exactly its factory's table.

Example:

```python
from recipes.names import OPTIMIZER_NAMES
parser.add_argument("--optimizer", choices=OPTIMIZER_NAMES)
```

Reference: Géron, Hands-On ML (3rd ed.), chapter 11 (the techniques these names select).
"""

from __future__ import annotations

__all__ = ["ACTIVATION_NAMES", "DEFAULT_LEARNING_RATES", "INITIALIZER_NAMES", "LOSS_NAMES",
           "OPTIMIZER_NAMES", "PRECISIONS", "SCHEDULE_NAMES"]

ACTIVATION_NAMES: tuple[str, ...] = (
    "relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "gelu", "swish", "silu", "mish",
    "sigmoid", "tanh", "linear",
)

INITIALIZER_NAMES: tuple[str, ...] = (
    "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal",
    "lecun_uniform", "glorot", "he", "lecun", "he_avg_uniform", "variance_scaling_fan_avg",
    "random_normal",
)

OPTIMIZER_NAMES: tuple[str, ...] = (
    "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamax", "nadam", "adamw",
    "lion",
)

# The book's rates (chapter 10 for plain SGD, chapter 11's notebook for the others);
# Lion uses 1e-4, the Lion paper's advice of a rate 3-10x smaller than AdamW's.
DEFAULT_LEARNING_RATES: dict[str, float] = {
    "sgd": 1e-2,
    "momentum": 1e-3,
    "nesterov": 1e-3,
    "adagrad": 1e-3,
    "rmsprop": 1e-3,
    "adam": 1e-3,
    "adamax": 1e-3,
    "nadam": 1e-3,
    "adamw": 1e-3,
    "lion": 1e-4,
}

SCHEDULE_NAMES: tuple[str, ...] = (
    "constant", "power", "exponential", "piecewise", "performance",
    "1cycle", "onecycle", "cyclical", "cosine",
)

LOSS_NAMES: tuple[str, ...] = (
    "crossentropy", "focal", "binary_crossentropy", "binary_focal", "mse",
)

# Keras dtype policies a run may ask for; "auto" is `recipes.hardware.choose_precision`'s
# choice (mixed_bfloat16 where the CPU computes bf16 natively, else float32).
PRECISIONS: tuple[str, ...] = ("auto", "float32", "mixed_bfloat16")
