"""An input pipeline over in-memory arrays that does not stall at epoch starts.

`fit(x, y)` with numpy arrays, and any ``tf.data`` pipeline left with its default options,
run tf.data's autotuning model on a background thread. At the end of every epoch Keras
drops the epoch's iterator, and the iterator's destructor waits for that thread to wake
up from its timed sleep: with TensorFlow 2.21 on a 2-core CPU that is an idle wait of
0.5-10 s at some epoch starts (no CPU in use; seen with gdb in
``RootDataset::Iterator::~Iterator`` waiting on ``Model::OptimizeLoop``), often longer
than an epoch of a small model. `make_dataset` turns autotuning off and prefetches a
fixed number of batches, so there is no such thread.

Example:

```python
from recipes import make_dataset
train = make_dataset(x_train, y_train, batch_size=128, seed=0)
val = make_dataset(x_val, y_val, 1000, shuffle=False)
model.fit(train, epochs=2, validation_data=val, shuffle=False)  # `train` shuffles itself
```

(`shuffle=False` only silences Keras's warning that it cannot shuffle a dataset.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

__all__ = ["make_dataset", "static_options"]


def static_options() -> tf.data.Options:
    """`tf.data.Options` without autotuning (no epoch-start stalls), deterministic order.

    Returns:
        Options for `dataset.with_options(...)`; give the dataset fixed `prefetch` and
        `num_parallel_calls` values, since nothing tunes them.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    options.deterministic = True
    return options


def make_dataset(x: Any, y: Any = None, batch_size: int = 32, *, shuffle: bool = True,
                 seed: int | None = None, drop_remainder: bool = False,
                 prefetch: int = 2) -> tf.data.Dataset:
    """Batches of `(x, y)` (or of `x`), reshuffled every epoch, without autotuning.

    Shuffling permutes indices (the whole set, every epoch) and gathers each batch in
    one vectorized step, as Keras's own numpy adapter does.

    Args:
        x: inputs, an array whose first axis is the sample axis (copied once into a
            tensor: the pipeline holds a second copy of the data in memory).
        y: targets with as many samples as `x`, or `None` for inputs only.
        batch_size: samples per batch. Defaults to `32` (Keras's default).
        shuffle: reshuffle every epoch. Defaults to `True`.
        seed: shuffle seed (the same seed gives the same sequence of epochs).
        drop_remainder: drop the last, smaller batch.
        prefetch: batches prepared ahead of the model. Defaults to `2`.

    Returns:
        A `tf.data.Dataset` of batches, `options().autotune.enabled` is `False`.

    Raises:
        ValueError: no samples, `x` and `y` of different lengths, `batch_size < 1` or
            `prefetch < 0`.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}.")
    if int(prefetch) < 0:
        raise ValueError(f"prefetch must be >= 0, got {prefetch!r}.")
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"x must hold at least one sample, got shape {x.shape}.")
    arrays = (x,)
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != len(x):
            raise ValueError(f"x has {len(x)} samples but y has "
                             f"{len(y) if y.ndim else 'none (a scalar)'}; they must match.")
        arrays = (x, y)
    tensors = tuple(tf.constant(a) for a in arrays)
    n = len(x)
    indices = tf.data.Dataset.range(n)
    if shuffle:
        indices = indices.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    indices = indices.batch(int(batch_size), drop_remainder=drop_remainder)

    def gather(idx: tf.Tensor) -> Any:
        batch = tuple(tf.gather(t, idx) for t in tensors)
        return batch if y is not None else batch[0]

    ds = indices.map(gather)  # sequential: deterministic without any option
    if prefetch:
        ds = ds.prefetch(int(prefetch))
    return ds.with_options(static_options())
