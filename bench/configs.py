"""The configurations that `bench.time_to_accuracy` races on MNIST (data, no TensorFlow).

- `keras_io`: the keras.io "Simple MNIST convnet" exactly as published, built by hand in
  plain Keras (https://keras.io/examples/vision/mnist_convnet/).
- `keras_io_pipeline`: the same convnet fed by `recipes.make_dataset`, the recipes' input,
  so the second ratio compares the models alone.
- `recipe_fast`: the chapter's recipe for speed, built only through `recipes`: He init,
  keras.io's "valid" convolutions (20% cheaper than "same" on MNIST), batch norm in the
  dense layer only (on this 2-core CPU, BN after either convolution halves the training
  throughput), SGD with Nesterov momentum and a cosine 1cycle over one epoch (peak 0.3 at
  25% as in fastai), mixed bfloat16 where the CPU computes it natively. Measured on seeds
  0-2 (2-core Xeon, 2026-12-03): 99.0% at 0.875-1.0 epochs, 99.01-99.19% at the end. Tried
  and not kept: 1.25 epochs (crossed at 1.13 on an AMD EPYC), batch 64 over one epoch (crossed at
  0.75-0.875 epochs but 13% later in seconds: 30% fewer images per second), peak 0.2
  (missed 99.0% on 2 seeds of 3), peak 0.4 and batch 96 (later in seconds).
- `recipe_993`: the same ingredients on a deeper, "same"-padded net (a third conv block,
  BN on the convolutions after the first) with dropout, over 3 epochs, for 99.3%.

`bench.models.build_and_compile` turns a configuration into a compiled Keras model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recipes.checks import check_at_least, check_choice, check_positive
from recipes.hardware import PRECISIONS
from recipes.names import OPTIMIZER_NAMES, SCHEDULE_NAMES
from recipes.specs import CNNSpec

__all__ = ["CONFIGS", "INPUTS", "MODELS", "BenchConfig"]

INPUTS = ("numpy", "pipeline")
MODELS = ("keras_io", "recipe")


@dataclass(frozen=True)
class BenchConfig:
    """One contestant of the benchmark.

    Args:
        name: short name (a CLI value and a results key).
        title: one line for the report.
        model: `"keras_io"` (the hand-built baseline) or `"recipe"` (built from `spec`).
        spec: the `CNNSpec` of a recipe.
        optimizer: a `recipes.make_optimizer` name.
        learning_rate: the rate, or the peak rate of a 1cycle schedule.
        schedule: a `recipes.make_schedule` name.
        epochs: epochs of training (the schedule's length); may be fractional, e.g. 1.25.
        batch_size: the batch size.
        precision: `"float32"`, `"mixed_bfloat16"` or `"auto"` (see `recipes.hardware`).
        schedule_kwargs: extra `make_schedule` arguments (e.g. the 1cycle `shape`).
        input: `"numpy"` (`fit(x, y)` on arrays, as keras.io publishes it) or
            `"pipeline"` (`recipes.make_dataset`, without the epoch-start stalls).
    """

    name: str
    title: str
    model: str = "recipe"
    spec: CNNSpec | None = None
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "constant"
    epochs: float = 15
    batch_size: int = 128
    precision: str = "float32"
    schedule_kwargs: dict = field(default_factory=dict)
    input: str = "pipeline"

    def __post_init__(self) -> None:
        check_choice("input", self.input, INPUTS)
        check_choice("model", self.model, MODELS)
        check_choice("optimizer", self.optimizer, OPTIMIZER_NAMES)
        check_choice("schedule", self.schedule, SCHEDULE_NAMES)
        check_choice("precision", self.precision, PRECISIONS)
        check_positive("learning_rate", self.learning_rate)
        check_positive("epochs", self.epochs)
        check_at_least("batch_size", self.batch_size, 1)
        if self.model == "recipe" and self.spec is None:
            raise ValueError(f"Configuration {self.name!r}: a recipe needs a spec (a CNNSpec).")


CONFIGS: dict[str, BenchConfig] = {
    c.name: c
    for c in (
        BenchConfig(
            "keras_io", "keras.io convnet as published: Adam 1e-3, batch 128, 15 epochs, "
            "float32, fit(x, y) on numpy arrays",
            model="keras_io", epochs=15, input="numpy",
        ),
        BenchConfig(
            "keras_io_pipeline", "the same keras.io convnet fed by recipes.make_dataset "
            "(the recipes' input pipeline)",
            model="keras_io", epochs=15, input="pipeline",
        ),
        BenchConfig(
            "recipe_fast",
            "recipe: He init, keras.io's valid-padded convolutions, BN in a 256-unit dense "
            "layer, Nesterov + cosine 1cycle (peak 0.3 at 25%) over one epoch",
            spec=CNNSpec(filters=(32, 64), kernel_size=3, padding="valid", dense_units=(256,),
                         batch_norm="before", batch_norm_from=2),
            optimizer="nesterov", learning_rate=0.3, schedule="1cycle", epochs=1.0,
            schedule_kwargs={"shape": "cosine", "last_fraction": 0.5}, precision="auto",
        ),
        BenchConfig(
            "recipe_993",
            "recipe for 99.3%: three conv blocks (32-64-128), BN from block 2, dropout 0.25, "
            "Nesterov + cosine 1cycle over 3 epochs",
            spec=CNNSpec(filters=(32, 64, 128), kernel_size=3, dense_units=(128,),
                         batch_norm="before", batch_norm_from=1, dropout_rate=0.25),
            optimizer="nesterov", learning_rate=0.1, schedule="1cycle", epochs=3,
            schedule_kwargs={"shape": "cosine", "last_fraction": 0.5}, precision="auto",
        ),
    )
}
