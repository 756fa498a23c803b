"""Optimizers by name: the chapter's faster optimizers as plain Keras optimizers.

`make_optimizer` turns a name into ONE configured `keras.optimizers.Optimizer` (never a
partial), with the book's hyperparameters (momentum 0.9, Nesterov, RMSprop's rho 0.9,
AdamW's weight decay 1e-5) and Keras's own gradient clipping (`clipnorm`, `clipvalue`,
`global_clipnorm`). The learning rate may be a float or a `LearningRateSchedule`
(see `recipes.schedules`).

Example:

```python
opt = make_optimizer("nesterov", learning_rate=1e-2, clipnorm=1.0)
model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
```

Reference: Géron, Hands-On ML (3rd ed.), chapter 11, "Faster Optimizers" and
"Gradient Clipping".
"""

from __future__ import annotations

from typing import Any

import keras

from recipes.checks import check_positive
from recipes.names import DEFAULT_LEARNING_RATES, OPTIMIZER_NAMES

__all__ = ["DEFAULT_LEARNING_RATES", "OPTIMIZER_NAMES", "make_optimizer"]

# name -> (Keras class, the book's hyperparameters for it)
_SPECS: dict[str, tuple[type, dict[str, Any]]] = {
    "sgd": (keras.optimizers.SGD, {}),
    "momentum": (keras.optimizers.SGD, {"momentum": 0.9}),
    "nesterov": (keras.optimizers.SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (keras.optimizers.Adagrad, {}),
    "rmsprop": (keras.optimizers.RMSprop, {"rho": 0.9}),
    "adam": (keras.optimizers.Adam, {"beta_1": 0.9, "beta_2": 0.999}),
    "adamax": (keras.optimizers.Adamax, {"beta_1": 0.9, "beta_2": 0.999}),
    "nadam": (keras.optimizers.Nadam, {"beta_1": 0.9, "beta_2": 0.999}),
    "adamw": (keras.optimizers.AdamW, {"weight_decay": 1e-5, "beta_1": 0.9, "beta_2": 0.999}),
    "lion": (keras.optimizers.Lion, {"beta_1": 0.9, "beta_2": 0.99}),
}



def make_optimizer(
    name: str | keras.optimizers.Optimizer,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule | None = None,
    *,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    **kwargs: Any,
) -> keras.optimizers.Optimizer:
    """Return a configured Keras optimizer for a name from the chapter.

    | name | Keras object |
    |---|---|
    | `sgd` | `SGD()` |
    | `momentum` | `SGD(momentum=0.9)` |
    | `nesterov` | `SGD(momentum=0.9, nesterov=True)` |
    | `adagrad` | `Adagrad()` |
    | `rmsprop` | `RMSprop(rho=0.9)` |
    | `adam`, `adamax`, `nadam` | `beta_1=0.9, beta_2=0.999` |
    | `adamw` | `AdamW(weight_decay=1e-5, beta_1=0.9, beta_2=0.999)` |
    | `lion` | `Lion(beta_1=0.9, beta_2=0.99)` |

    Default learning rates are in `DEFAULT_LEARNING_RATES`: 1e-2 for `sgd`, 1e-4 for
    `lion`, 1e-3 for all others (the book's values).

    Args:
        name: one of `OPTIMIZER_NAMES` (case-insensitive), or an optimizer object,
            which is returned unchanged (no other argument may then be given).
        learning_rate: a float or a `keras.optimizers.schedules.LearningRateSchedule`.
            Defaults to `None`, the optimizer's entry in `DEFAULT_LEARNING_RATES`.
        clipnorm: clip each gradient tensor to this L2 norm. Defaults to `None`.
        clipvalue: clip each gradient component to `[-clipvalue, clipvalue]`.
            Defaults to `None`.
        global_clipnorm: clip all gradients together to this global L2 norm.
            Defaults to `None`. At most one of the three clipping arguments may be set.
        **kwargs: more keyword arguments for the Keras class; they override the fixed
            ones above (e.g. `momentum=0.95`, `weight_decay=1e-4`).

    Returns:
        A `keras.optimizers.Optimizer` instance.

    Raises:
        ValueError: unknown name, a non-positive learning rate or clipping value, more
            than one clipping argument, or extra arguments given with an object.

    Reference: Géron, Hands-On ML (3rd ed.), chapter 11, "Faster Optimizers".
    """
    if isinstance(name, keras.optimizers.Optimizer):
        extra = {"learning_rate": learning_rate, "clipnorm": clipnorm, "clipvalue": clipvalue,
                 "global_clipnorm": global_clipnorm, **kwargs}
        given = sorted(k for k, v in extra.items() if v is not None)
        if given:
            raise ValueError(
                f"make_optimizer got an optimizer object and also {', '.join(given)}: "
                "configure the object itself or pass a name instead."
            )
        return name
    if not isinstance(name, str) or name.lower() not in _SPECS:
        raise ValueError(f"Unknown optimizer {name!r}. Valid: {', '.join(OPTIMIZER_NAMES)}.")
    key = name.lower()
    cls, fixed = _SPECS[key]
    if learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATES[key]
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        try:
            if isinstance(learning_rate, str | bool):
                raise TypeError
            learning_rate = float(learning_rate)  # ints and numpy scalars too
        except (TypeError, ValueError):
            raise ValueError(
                "learning_rate must be a float or a LearningRateSchedule, "
                f"got {learning_rate!r}."
            ) from None
        check_positive("learning_rate", learning_rate)
    clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
    for clip, value in clips.items():
        if value is not None:
            check_positive(clip, value)
    set_clips = [k for k, v in clips.items() if v is not None]
    if len(set_clips) > 1:
        raise ValueError(
            f"Only one of clipnorm, clipvalue and global_clipnorm may be set, got "
            f"{', '.join(set_clips)}."
        )
    options = {**fixed, **kwargs}
    return cls(learning_rate=learning_rate, **clips, **options)
