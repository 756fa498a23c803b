"""Learning-rate scheduling: seven schedules, the LR range test, and 1cycle on a CNN.

Hands-On ML, chapter 11, "Learning Rate Scheduling" (and chapter 10's learning-rate
range test). The LR range test picks the rate (the book's rule: about 10x below the rate
where the loss is lowest); then the same MLP is trained from the same seed with constant,
power, exponential, piecewise-constant, performance (ReduceLROnPlateau), 1cycle and
cyclical scheduling. A small CNN then checks the 1cycle promise: 99% test accuracy on
MNIST within a few epochs, against a constant rate.

Run: ``python -m ch11.schedules`` (``make recipe-schedules``), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from ch11._experiment import Results, cli, finish, mnist_splits, start, train_variant
from recipes.builders import build_cnn, build_mlp, count_params
from recipes.callbacks import SCHEDULE_NAMES, make_callbacks, make_schedule
from recipes.lr_finder import LRFinderResult, find_learning_rate
from recipes.optimizers import OPTIMIZER_NAMES, make_optimizer
from recipes.plots import learning_curves, lr_finder_plot, schedule_curves
from recipes.runs import save_figure, set_seed
from recipes.specs import CNNSpec, MLPSpec

__all__ = ["Config", "main", "run", "schedule_for"]

NAME = "schedules"
SCHEDULES = ("constant", "power", "exponential", "piecewise", "performance", "1cycle",
             "cyclical")
MLP = MLPSpec(hidden_units=(300, 100))
CNN = CNNSpec(filters=(32, 64), dense_units=(128,), batch_norm="before", batch_norm_from=1)
# The book's time constants as fractions of its 25-epoch run (batch 32: 1,719 steps/epoch):
# power s = 10,000 steps, exponential s = 20 epochs, piecewise drops after epochs 5 and 15,
# performance patience = 5 epochs.
BOOK_FRACTIONS = {"power": 10_000 / (25 * 1719), "exponential": 20 / 25,
                  "piecewise": (5 / 25, 15 / 25), "performance": 5 / 25}
_LOSS = "sparse_categorical_crossentropy"


@dataclass(frozen=True)
class Config:
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seed: int = field(default=42, metadata={"help": "seed, re-applied before each variant"})
    quick: bool = field(default=False, metadata={"help": "small slice, one epoch (tests)"})
    schedules: tuple[str, ...] = field(
        default=SCHEDULES, metadata={"help": "schedules compared on the MLP",
                                     "choices": SCHEDULE_NAMES})
    optimizer: str = field(default="nesterov", metadata={"help": "optimizer of every variant",
                                                         "choices": OPTIMIZER_NAMES})
    learning_rate: float | None = field(
        default=None, metadata={"help": "MLP: initial rate, the peak for 1cycle/cyclical; None: "
                                        "the LR range test's suggestion"})
    epochs: int = field(default=10, metadata={
        "help": "MLP epochs; the book's 25-epoch time constants are scaled to it"})
    cnn_schedules: tuple[str, ...] = field(
        default=("1cycle", "constant"), metadata={"help": "schedules run on the CNN",
                                                  "choices": SCHEDULE_NAMES})
    cnn_max_lr: float | None = field(
        default=None, metadata={"help": "CNN rate (1cycle's peak); None: the CNN's LR range "
                                        "test suggestion"})
    cnn_epochs: int = field(default=3, metadata={"help": "CNN epochs"})
    batch_size: int = field(default=128, metadata={"help": "mini-batch size"})
    finder_steps: int = field(default=300, metadata={"help": "steps of each LR range test"})
    target_accuracy: float = field(default=0.99, metadata={"help": "the CNN's test target"})
    out_dir: str = field(default="runs", metadata={"help": "where run folders go"})

    def __post_init__(self) -> None:
        for name in ("epochs", "cnn_epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.finder_steps < 2:
            raise ValueError(f"finder_steps must be >= 2, got {self.finder_steps}.")
        for name in ("schedules", "cnn_schedules"):
            values = getattr(self, name)
            bad = [s for s in values if s not in SCHEDULE_NAMES]
            if not values or bad or len(set(values)) < len(values):
                raise ValueError(f"{name} must name distinct schedules among "
                                 f"{', '.join(SCHEDULE_NAMES)}; got {values!r}.")
        for name in ("learning_rate", "cnn_max_lr"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 or None, got {getattr(self, name)}.")
        if not 0 < self.target_accuracy <= 1:
            raise ValueError(f"target_accuracy must be in (0, 1], got {self.target_accuracy}.")


def schedule_for(name: str, learning_rate: float, steps_per_epoch: int,
                 epochs: int) -> keras.optimizers.schedules.LearningRateSchedule | float:
    """The optimizer's `learning_rate` for a schedule, its time constants scaled to the run.

    The book's constants (`BOOK_FRACTIONS`, for 25 epochs) become the same fractions of
    `epochs * steps_per_epoch`; 1cycle spans the whole run; cyclical keeps Smith's
    2-epoch half cycle.

    Args:
        name: one of `recipes.callbacks.SCHEDULE_NAMES`.
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


def _range_test(build, data, config: Config, steps: int) -> LRFinderResult:
    keras.backend.clear_session()
    set_seed(config.seed)
    model = build()
    model.compile(optimizer=make_optimizer(config.optimizer, learning_rate=1e-3), loss=_LOSS)
    return find_learning_rate(model, (data["x_train"], data["y_train"]), 1e-5, 10.0, steps,
                              batch_size=config.batch_size)


def _rates(schedule, rates_per_epoch: list[float], spe: int, total: int) -> np.ndarray:
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return np.asarray(keras.ops.convert_to_numpy(schedule(np.arange(total))), dtype=float)
    return np.repeat(np.asarray(rates_per_epoch, dtype=float), spe)[:total]


def run(config: Config) -> Results:
    """Run both LR range tests, train every schedule, and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per model x schedule).
    """
    if config.quick:
        config = dataclasses.replace(config, epochs=1, cnn_epochs=1,
                                     finder_steps=min(config.finder_steps, 30))
    run_dir, started = start(NAME, config)
    data = mnist_splits(config.quick)
    spe = -(-len(data["x_train"]) // config.batch_size)
    build = {"mlp": lambda: build_mlp(MLP, (28, 28), 10),
             "cnn": lambda: build_cnn(CNN, (28, 28), 10)}
    finders = {m: _range_test(build[m], data, config, config.finder_steps) for m in build}
    rate = {"mlp": config.learning_rate or finders["mlp"].suggestion,
            "cnn": config.cnn_max_lr or finders["cnn"].suggestion}
    plan = [("mlp", s, config.epochs) for s in config.schedules]
    plan += [("cnn", s, config.cnn_epochs) for s in config.cnn_schedules]
    rows, histories, curves = [], {}, {}
    for k, (family, name, epochs) in enumerate(plan, 1):
        schedule = schedule_for(name, rate[family], spe, epochs)
        patience = max(1, round(BOOK_FRACTIONS["performance"] * epochs))
        extra = make_callbacks(name, patience=patience) if name == "performance" else []
        model, history = train_variant(
            build[family], {"optimizer": make_optimizer(config.optimizer, learning_rate=schedule),
                            "loss": _LOSS, "metrics": ["accuracy"]},
            data, seed=config.seed, epochs=epochs, batch_size=config.batch_size,
            callbacks=[_Track(data["x_test"], data["y_test"]), *extra],
            label=f"variant {k}/{len(plan)}: {family}, {name}, rate {rate[family]:.3g}")
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
    figures = _figures(run_dir, histories, curves, finders, config)
    return finish(NAME, config, run_dir, started, table,
                  title="Learning-rate scheduling on MNIST", intro=_intro(config, spe, rate),
                  histories=histories, figures=figures,
                  notes=_notes(table, histories, finders, config),
                  metrics=_metrics(table, finders, rate, config))


def _figures(run_dir, histories, curves, finders, config: Config) -> list[tuple[str, str]]:
    for family, result in finders.items():
        fig = lr_finder_plot(result.table, result.suggestion)
        fig.axes[0].set_title(f"LR range test, {family.upper()} ({config.optimizer}, batch "
                              f"{config.batch_size})")
        save_figure(fig, run_dir / f"lr_finder_{family}.png")
    steps = len(next(iter(curves.values())))
    save_figure(schedule_curves({k: v.__getitem__ for k, v in curves.items()}, steps,
                                title="Learning rate per step (MLP runs)"),
                run_dir / "schedule_curves.png")
    for family in ("mlp", "cnn"):
        parts = {k.split("_", 1)[1]: {"loss": v.history["loss"],
                                      "val_accuracy": v.history["val_accuracy"]}
                 for k, v in histories.items() if k.startswith(family)}
        if parts:
            save_figure(learning_curves(parts, title=f"{family.upper()}: training loss "
                                                     "(dashed), validation accuracy (solid)"),
                        run_dir / f"{family}_learning_curves.png")
    save_figure(_test_accuracy_plot(histories, config.target_accuracy),
                run_dir / "cnn_test_accuracy.png")
    return [("LR range test on the MLP", "lr_finder_mlp.png"),
            ("LR range test on the CNN", "lr_finder_cnn.png"),
            ("Each schedule's learning rate per step", "schedule_curves.png"),
            ("MLP learning curves per schedule", "mlp_learning_curves.png"),
            ("CNN learning curves", "cnn_learning_curves.png"),
            ("CNN test accuracy after each epoch", "cnn_test_accuracy.png")]


def _test_accuracy_plot(histories, target: float):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for key, history in histories.items():
        if key.startswith("cnn_"):
            acc = history.history["test_accuracy"]
            ax.plot(range(1, len(acc) + 1), acc, marker="o", label=key[4:])
    ax.axhline(target, color="red", linestyle=":", label=f"target {target:.1%}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("CNN: test accuracy after each epoch")
    fig.tight_layout()
    return fig


def _metrics(table: pd.DataFrame, finders, rate, config: Config) -> dict:
    out = {f"{r.model}_{r.schedule}_test_acc": r.test_acc for r in table.itertuples()}
    for family, result in finders.items():
        out[f"{family}_finder_suggestion"] = result.suggestion
        out[f"{family}_learning_rate"] = rate[family]
    cnn = table[(table["model"] == "cnn") & table["schedule"].isin(["1cycle", "onecycle"])]
    if len(cnn):
        out["cnn_1cycle_epochs_to_target"] = cnn["epochs_to_target"].iloc[0]
        out["claim_1cycle_reaches_target"] = bool(cnn["best_test_acc"].iloc[0]
                                                  >= config.target_accuracy)
    return out


def _notes(table: pd.DataFrame, histories, finders, config: Config) -> list[str]:
    notes = []
    for family, r in finders.items():
        notes.append(f"LR range test ({family.upper()}): the smoothed loss is lowest at "
                     f"{r.min_loss_lr:.3g}; the book's rule (10x lower) suggests "
                     f"{r.suggestion:.3g}.")
    mlp = table[table["model"] == "mlp"].sort_values("test_acc", ascending=False)
    best, worst = mlp.iloc[0], mlp.iloc[-1]
    notes.append(f"MLP, {config.epochs} epoch(s): best schedule {best['schedule']} "
                 f"(test {best['test_acc']:.4f}), worst {worst['schedule']} "
                 f"({worst['test_acc']:.4f}), spread {best['test_acc'] - worst['test_acc']:.4f}; "
                 "one seed each, so gaps of a few tenths of a point are not conclusive.")
    by = mlp.set_index("schedule")
    if {"1cycle", "constant"} <= set(by.index):
        gap = by.loc["1cycle", "test_acc"] - by.loc["constant", "test_acc"]
        notes.append(f"MLP: 1cycle {'beats' if gap > 0 else 'does NOT beat'} the constant rate "
                     f"({gap:+.4f} test accuracy) with the same peak rate and epochs.")
    if "performance" in by.index:
        cuts = round(np.log2(by.loc["performance", "learning_rate"]
                             / by.loc["performance", "final_lr"]))
        notes.append(f"MLP: ReduceLROnPlateau (patience "
                     f"{max(1, round(BOOK_FRACTIONS['performance'] * config.epochs))}) halved "
                     f"the rate {cuts} time(s) in {config.epochs} epochs.")
    if "cyclical" in by.index:
        row = by.loc["cyclical"]
        notes.append(f"MLP: cyclical ends at rate {row['final_lr']:.3g} "
                     f"({row['final_lr'] / row['learning_rate']:.0%} of its peak); test accuracy "
                     f"{row['test_acc']:.4f} at the end, {row['best_test_acc']:.4f} at its best "
                     "epoch.")
    cnn = table[table["model"] == "cnn"].set_index("schedule")
    for name in cnn.index:
        row, target = cnn.loc[name], config.target_accuracy
        per_epoch = ", ".join(f"{a:.4f}" for a in histories[f"cnn_{name}"].history["test_accuracy"])
        reached = (f"reaches {target:.1%} test accuracy after epoch {int(row['epochs_to_target'])}"
                   if row["best_test_acc"] >= target else
                   f"does NOT reach {target:.1%} within {config.cnn_epochs} epochs")
        notes.append(f"CNN with {name} at rate {row['learning_rate']:.3g}: {reached} "
                     f"(test accuracy after each epoch: {per_epoch}).")
    if config.quick:
        notes.append("Quick mode: a small slice and one epoch; the numbers only smoke-test.")
    return notes


def _intro(config: Config, spe: int, rate: dict) -> str:
    return (
        f"MLP 300-100 (ReLU, He init) trained {config.epochs} epochs per schedule. CNN, "
        f"{config.cnn_epochs} epochs: conv 32 -> max pool -> conv 64 (no bias) -> BN -> ReLU "
        "-> max pool -> Dense 128 (no bias) -> BN -> ReLU -> softmax (3x3 kernels; no BN on "
        f"the first conv, where it is costly on CPU). Optimizer {config.optimizer}, batch "
        f"{config.batch_size} ({spe} steps per epoch), seed {config.seed} re-applied before "
        f"each variant, {'a slice of ' if config.quick else ''}MNIST with 5,000 training images "
        f"held out for validation. Rates: MLP {rate['mlp']:.3g}, CNN {rate['cnn']:.3g} "
        "(the LR range test's suggestion unless given). The book's time constants for a "
        "25-epoch run (power s = 10,000 steps, exponential s = 20 epochs, piecewise drops "
        "after epochs 5 and 15, performance patience 5) are scaled to the run's length; "
        "1cycle spans the run (start at a tenth of the peak); cyclical goes from a quarter "
        "of the rate to the rate in half cycles of 2 epochs.")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m ch11.schedules [--quick] [--epochs N] ...``."""
    return cli(Config, run, argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
