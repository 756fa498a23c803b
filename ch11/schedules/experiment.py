"""The schedules experiment: run both LR range tests, train every schedule, and write the
run folder."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd

from ch11 import _experiment as ex
from ch11._config import headline_seeds, seeds_why
from ch11._evidence import seed_summary, spread_figure
from ch11.schedules import report
from ch11.schedules.config import NAME, Config
from recipes.builders import build_cnn, build_mlp, count_params
from recipes.callbacks import make_callbacks
from recipes.hardware import clear_session
from recipes.lr_finder import LRFinderResult, find_learning_rate
from recipes.optimizers import make_optimizer
from recipes.runs import set_seed
from recipes.schedules import make_schedule
from recipes.specs import CNNSpec, MLPSpec

__all__ = ["BOOK_FRACTIONS", "run", "schedule_for"]

MLP = MLPSpec(hidden_units=(300, 100))
CNN = CNNSpec(filters=(32, 64), dense_units=(128,), batch_norm="before", batch_norm_from=1)
# The book's time constants as fractions of its 25-epoch run (batch 32: 1,719 steps/epoch):
# power s = 10,000 steps, exponential s = 20 epochs, piecewise drops after epochs 5 and 15,
# performance patience = 5 epochs.
BOOK_FRACTIONS = {"power": 10_000 / (25 * 1719), "exponential": 20 / 25,
                  "piecewise": (5 / 25, 15 / 25), "performance": 5 / 25}
_LOSS = "sparse_categorical_crossentropy"


def schedule_for(name: str, learning_rate: float, steps_per_epoch: int,
                 epochs: int) -> keras.optimizers.schedules.LearningRateSchedule | float:
    """The optimizer's `learning_rate` for a schedule, its time constants scaled to the run.

    The book's constants (`BOOK_FRACTIONS`, for 25 epochs) become the same fractions of
    `epochs * steps_per_epoch`; 1cycle spans the whole run; cyclical keeps Smith's
    2-epoch half cycle.

    Args:
        name: one of `recipes.names.SCHEDULE_NAMES`.
        learning_rate: initial rate (the peak for 1cycle and cyclical).
        steps_per_epoch: optimizer steps per epoch.
        epochs: epochs of the run.

    Returns:
        A `LearningRateSchedule`, or a float for constant and performance scheduling.

    Raises:
        ValueError: an unknown schedule name (from `make_schedule`).

    Reference: Géron, Hands-On ML (3rd ed.), chapter 11, "Learning Rate Scheduling".
    """
    total = steps_per_epoch * epochs
    if name == "power":
        return make_schedule(name, learning_rate=learning_rate,
                             s=max(1, round(BOOK_FRACTIONS["power"] * total)))
    if name == "exponential":
        return make_schedule(name, learning_rate=learning_rate,
                             s=max(1, round(BOOK_FRACTIONS["exponential"] * total)))
    if name == "piecewise":
        first, second = (max(1, round(f * total)) - 1 for f in BOOK_FRACTIONS["piecewise"])
        return make_schedule(name, learning_rate=learning_rate,
                             boundaries=[first, max(second, first + 1)])
    return make_schedule(name, learning_rate=learning_rate, steps_per_epoch=steps_per_epoch,
                         epochs=epochs)


def _patience(epochs: int) -> int:
    """ReduceLROnPlateau's patience: the book's 5 of 25 epochs, scaled to `epochs`."""
    return max(1, round(BOOK_FRACTIONS["performance"] * epochs))


class _Track(keras.callbacks.Callback):
    """Log the rate in effect at each epoch's start ("lr") and the test accuracy."""

    def __init__(self, x_test: np.ndarray, y_test: np.ndarray) -> None:
        super().__init__()
        self.x_test, self.y_test = x_test, y_test

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            # Eager calls in big batches: no extra traced function per variant.
            hits = sum(int(np.sum(keras.ops.convert_to_numpy(
                self.model(self.x_test[i:i + 2000], training=False)).argmax(-1)
                == self.y_test[i:i + 2000])) for i in range(0, len(self.x_test), 2000))
            logs["lr"] = self.rate
            logs["test_accuracy"] = hits / len(self.x_test)


def _range_test(build, data, config: Config, steps: int, precision: str) -> LRFinderResult:
    clear_session(precision)  # the model the range test probes has its variants' precision
    set_seed(config.seed)
    model = build()
    keras.config.set_dtype_policy("float32")
    model.compile(optimizer=make_optimizer(config.optimizer, learning_rate=1e-3), loss=_LOSS)
    return find_learning_rate(model, (data["x_train"], data["y_train"]), 1e-5, 10.0, steps,
                              batch_size=config.batch_size)


def _rates(schedule, rates_per_epoch: list[float], spe: int, total: int) -> np.ndarray:
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return np.asarray(keras.ops.convert_to_numpy(schedule(np.arange(total))), dtype=float)
    return np.repeat(np.asarray(rates_per_epoch, dtype=float), spe)[:total]


def run(config: Config) -> ex.Results:
    """Run both LR range tests, train every schedule, and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per model x schedule).
    """
    if config.quick:
        config = dataclasses.replace(config, epochs=1, cnn_epochs=1,
                                     finder_steps=min(config.finder_steps, 30))
    run_dir, started = ex.start(NAME, config)
    data = ex.mnist_splits(config.quick)
    spe = -(-len(data["x_train"]) // config.batch_size)
    build = {"mlp": lambda: build_mlp(MLP, (28, 28), 10),
             "cnn": lambda: build_cnn(CNN, (28, 28), 10)}
    policy = {"mlp": ex.MLP_PRECISION[0], "cnn": ex.cnn_precision(config.precision)[0]}
    finders = {m: _range_test(build[m], data, config, config.finder_steps, policy[m])
               for m in build}
    rate = {"mlp": config.learning_rate or finders["mlp"].suggestion,
            "cnn": config.cnn_max_lr or finders["cnn"].suggestion}
    plan = [("mlp", s, config.epochs) for s in config.schedules]
    plan += [("cnn", s, config.cnn_epochs) for s in config.cnn_schedules]
    rows, histories, curves = [], {}, {}
    for k, (family, name, epochs) in enumerate(plan, 1):
        schedule = schedule_for(name, rate[family], spe, epochs)
        extra = make_callbacks(name, patience=_patience(epochs)) if name == "performance" else []
        model, history = ex.train_variant(
            build[family], ex.classifier_compile(config.optimizer, schedule, loss=_LOSS), data,
            seed=config.seed, epochs=epochs, batch_size=config.batch_size,
            callbacks=[_Track(data["x_test"], data["y_test"]), *extra], precision=policy[family],
            label=f"variant {k}/{len(plan)}: {family}, {name}, rate {rate[family]:.3g}",
            log_dir=ex.tensorboard_dir(run_dir, f"{family}_{name}"))
        h = history.history
        hits = [i + 1 for i, a in enumerate(h["test_accuracy"]) if a >= config.target_accuracy]
        rows.append({
            "model": family, "schedule": name, "params": count_params(model)["total"],
            "learning_rate": rate[family], "epochs": epochs,
            "final_lr": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
            "train_loss": h["loss"][-1], "val_acc": h["val_accuracy"][-1],
            "test_acc": h["test_accuracy"][-1], "best_test_acc": max(h["test_accuracy"]),
            "epochs_to_target": hits[0] if hits else float("nan"),
            "s_per_epoch": sum(h["epoch_time"]) / len(h["epoch_time"])})
        histories[f"{family}_{name}"] = history
        if family == "mlp":
            curves[name] = _rates(schedule, h["lr"], spe, spe * epochs)
    table = pd.DataFrame(rows)
    figures = report.figures(run_dir, histories, curves, finders, config)
    plan = [(f, s, e) for f, s, e in plan if s in report.HEADLINE_SCHEDULES]
    seeds = headline_seeds(config)
    main_rows = [{"variant": f"{r.model} {r.schedule}", "test_acc": r.test_acc}
                 for r in table.itertuples() if r.schedule in report.HEADLINE_SCHEDULES]
    per_seed = ex.over_seeds(seeds, config.seed, main_rows,
                             lambda s: _rerun(config, plan, build, rate, data, spe, s, policy))
    summary = seed_summary(per_seed, "variant", report.HEADLINE_COLUMNS)
    evidence = report.evidence(summary, per_seed, table, seeds, seeds_why(config), config)
    figures.append(spread_figure(run_dir, per_seed, "variant", report.HEADLINE_COLUMNS,
                                 "Test accuracy at the end, per seed"))
    notes = report.notes(table, histories, finders, config, _patience(config.epochs))
    return ex.finish(NAME, config, run_dir, started, table,
                     title="Learning-rate scheduling on MNIST",
                     intro=report.intro(config, spe, rate), histories=histories, figures=figures,
                     notes=[evidence.headline, *notes],
                     metrics=report.metrics(table, finders, rate, config), evidence=evidence,
                     precision={"MLP": ex.MLP_PRECISION,
                                "CNN": ex.cnn_precision(config.precision)})


def _rerun(config: Config, plan: list, build: dict, rate: dict, data: dict, spe: int,
           seed: int, policy: dict[str, str]) -> list[dict]:
    """The headline's schedules again with another seed (the rates of the full run's LR
    range tests): their final test accuracy."""
    rows = []
    for family, name, epochs in plan:
        schedule = schedule_for(name, rate[family], spe, epochs)
        model, _ = ex.train_variant(
            build[family], ex.classifier_compile(config.optimizer, schedule, loss=_LOSS), data,
            seed=seed, epochs=epochs, batch_size=config.batch_size, precision=policy[family],
            label=f"seed {seed}: {family}, {name}, rate {rate[family]:.3g}")
        rows.append({"variant": f"{family} {name}", "test_acc": ex.test_accuracy(model, data)})
    return rows
