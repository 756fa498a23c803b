"""Batch, mini-batch and stochastic gradient descent: loss per epoch and per second, on MNIST.

Hands-On ML, chapter 4, "Batch Gradient Descent", "Stochastic Gradient Descent" and
"Mini-batch Gradient Descent", the plain optimizer that chapter 11's "Faster Optimizers"
builds on. The same MLP (the book's 300-100 ReLU net, He init) trains from the same seed
with plain SGD and batch sizes from the whole training set per step (batch GD) down to
one image per step (stochastic GD, on a slice so it finishes); the learning rate follows
the batch size by a fixed rule. The run reports validation loss against epochs, against
training seconds and against steps, steps and images per second, and the final accuracy.

Run: ``python -m ch11.gradient_descent`` (``make recipe-gd``), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from ch11._experiment import Results, cli, finish, mnist_splits, start, train_variant
from recipes.builders import build_mlp
from recipes.losses import make_loss
from recipes.optimizers import OPTIMIZER_NAMES, make_optimizer
from recipes.runs import save_figure
from recipes.specs import MLPSpec

__all__ = ["Config", "learning_rate_for", "main", "run"]

NAME = "gradient_descent"
LR_SCALINGS = ("sqrt", "linear", "none")
_EXPONENT = {"sqrt": 0.5, "linear": 1.0, "none": 0.0}
REFERENCE_BATCH = 32


@dataclass(frozen=True)
class Config:
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seed: int = field(default=42, metadata={"help": "seed, re-applied before each variant"})
    quick: bool = field(default=False, metadata={"help": "small slice, few epochs (tests)"})
    batch_sizes: tuple[int, ...] = field(
        default=(0, 256, 32, 1),
        metadata={"help": "batch sizes to compare; 0 = the whole training set per step "
                          "(batch GD), 1 = stochastic GD (trained on the first "
                          "--sgd-train images)"})
    epochs: tuple[int, ...] = field(
        default=(20, 5, 5, 3),
        metadata={"help": "epochs for each batch size, in the same order (batch GD makes "
                          "one step per epoch, so it gets more)"})
    sgd_train: int = field(default=5000, metadata={
        "help": "training images for batch size 1 (one step per image is slow in Keras)"})
    hidden_units: tuple[int, ...] = field(default=(300, 100),
                                          metadata={"help": "the MLP's hidden layers"})
    optimizer: str = field(default="sgd", metadata={
        "help": "optimizer for every variant (plain SGD is gradient descent)",
        "choices": OPTIMIZER_NAMES})
    base_learning_rate: float = field(default=0.01, metadata={
        "help": "learning rate at batch size 32 (the book's SGD rate)"})
    lr_scaling: str = field(default="sqrt", metadata={
        "help": "rate for batch size b: base * (b / 32) ** k with k = 1/2 (sqrt, "
                "Krizhevsky 2014), 1 (linear, Goyal et al. 2017) or 0 (none)",
        "choices": LR_SCALINGS})
    out_dir: str = field(default="runs", metadata={"help": "where run folders go"})

    def __post_init__(self) -> None:
        if not self.batch_sizes:
            raise ValueError("batch_sizes must name at least one batch size.")
        if min(self.batch_sizes) < 0:
            raise ValueError(f"batch_sizes must be >= 0 (0 = whole training set), got "
                             f"{self.batch_sizes}.")
        if len(self.epochs) != len(self.batch_sizes):
            raise ValueError(f"epochs needs one value per batch size: {len(self.batch_sizes)} "
                             f"batch sizes but {len(self.epochs)} epoch counts.")
        if min(self.epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}.")
        if self.sgd_train < 1:
            raise ValueError(f"sgd_train must be >= 1, got {self.sgd_train}.")
        if not self.base_learning_rate > 0:
            raise ValueError(f"base_learning_rate must be > 0, got {self.base_learning_rate}.")
        if self.lr_scaling not in LR_SCALINGS:
            raise ValueError(f"Unknown lr_scaling {self.lr_scaling!r}. "
                             f"Valid: {', '.join(LR_SCALINGS)}.")


def learning_rate_for(batch_size: int, base: float, scaling: str) -> float:
    """The learning rate for a batch size, scaled from the rate at batch size 32.

    ``base * (batch_size / 32) ** k`` with ``k = 0.5`` (``"sqrt"``), ``1`` (``"linear"``)
    or ``0`` (``"none"``): a larger batch averages away more gradient noise and tolerates
    a larger step.

    Args:
        batch_size: the batch size (>= 1).
        base: the rate at batch size 32.
        scaling: one of `LR_SCALINGS`.

    Returns:
        The learning rate.

    Raises:
        ValueError: for an unknown scaling or a batch size below 1.

    Reference: Krizhevsky, "One weird trick for parallelizing convolutional neural
    networks" (2014) for sqrt; Goyal et al., "Accurate, Large Minibatch SGD" (2017) for
    linear.
    """
    if scaling not in LR_SCALINGS:
        raise ValueError(f"Unknown lr_scaling {scaling!r}. Valid: {', '.join(LR_SCALINGS)}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    return float(base * (batch_size / REFERENCE_BATCH) ** _EXPONENT[scaling])


class _TrainTimer(keras.callbacks.Callback):
    """Log ``train_time``: an epoch's training seconds, without validation or tracing.

    The first step of a fit also traces and compiles the train function; its excess over
    the second step (the one-time cost, same for every batch size) is left out.
    """

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch, self._start, self._stop = epoch, time.perf_counter(), None
        self._steps: list[float] = []

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self._epoch == 0 and batch < 2:
            self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._epoch == 0 and batch < 2:
            self._steps.append(time.perf_counter() - self._batch_start)

    def on_test_begin(self, logs: dict | None = None) -> None:
        if self._stop is None:
            self._stop = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        seconds = (self._stop or time.perf_counter()) - self._start
        if epoch == 0:
            self._single_step = len(self._steps) == 1
            if len(self._steps) == 2:  # first step minus a normal step = tracing
                seconds -= max(self._steps[0] - self._steps[1], 0.0)
        elif epoch == 1 and self._single_step:
            # One step per epoch (batch GD): epoch 0's step traced, epoch 1's is a normal one.
            first = self.model.history.history["train_time"]
            first[0] = min(first[0], seconds)
        logs["train_time"] = seconds


def _variant_name(batch: int, n_train: int) -> str:
    if batch >= n_train:
        return f"batch GD ({n_train})"
    if batch == 1:
        return f"stochastic GD (1, on {n_train})"
    return f"mini-batch {batch}"


def run(config: Config) -> Results:
    """Train one variant per batch size and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per batch size).
    """
    if config.quick:
        config = dataclasses.replace(
            config, epochs=tuple(min(e, 5) if b == 0 else 1
                                 for b, e in zip(config.batch_sizes, config.epochs)),
            sgd_train=min(config.sgd_train, 200))
    run_dir, started = start(NAME, config)
    data = mnist_splits(config.quick)
    spec = MLPSpec(hidden_units=config.hidden_units)
    loss_fn = make_loss("crossentropy")
    rows, histories, curves = [], {}, {}
    for k, (size, epochs) in enumerate(zip(config.batch_sizes, config.epochs), 1):
        train = data if size != 1 else {
            key: v[: config.sgd_train] if key in ("x_train", "y_train") else v
            for key, v in data.items()}
        n_train = len(train["x_train"])
        batch = n_train if size == 0 else min(size, n_train)
        name = _variant_name(batch, n_train)
        lr = learning_rate_for(batch, config.base_learning_rate, config.lr_scaling)
        initial = {}

        def build(initial: dict = initial) -> keras.Model:
            model = build_mlp(spec, (28, 28), 10)
            initial["val_loss"] = float(loss_fn(data["y_valid"], model(data["x_valid"])))
            return model

        model, history = train_variant(
            build, {"optimizer": make_optimizer(config.optimizer, learning_rate=lr),
                    "loss": make_loss("crossentropy"), "metrics": ["accuracy"]},
            train, seed=config.seed, epochs=epochs, batch_size=batch,
            callbacks=[_TrainTimer()],
            label=f"variant {k}/{len(config.batch_sizes)}: {name}, learning rate {lr:.3g}")
        key = "full" if batch == n_train else f"b{batch}"
        histories[key] = history
        steps_per_epoch = -(-n_train // batch)
        curves[name] = _curve(history.history, initial["val_loss"], steps_per_epoch)
        rows.append(_row(name, batch, n_train, lr, steps_per_epoch, model, history, data))

    table = pd.DataFrame(rows)
    figures = _figures(run_dir, curves)
    common_t = min(c["seconds"][-1] for c in curves.values())
    at_t = {name: float(np.interp(common_t, c["seconds"], c["val_loss"]))
            for name, c in curves.items()}
    table["val_loss_at_common_time"] = table["variant"].map(at_t)
    notes = _notes(table, common_t, config)
    return finish(NAME, config, run_dir, started, table,
                  title="Batch vs mini-batch vs stochastic gradient descent on MNIST",
                  intro=_intro(config, common_t), histories=histories, figures=figures,
                  notes=notes, metrics=_metrics(table, common_t))


def _curve(h: Mapping, initial_val_loss: float, steps_per_epoch: int) -> dict[str, np.ndarray]:
    """Validation loss from epoch 0 (at initialization) on, with seconds and steps."""
    epochs = np.arange(len(h["val_loss"]) + 1)
    return {"epoch": epochs, "steps": epochs * steps_per_epoch,
            "seconds": np.concatenate([[0.0], np.cumsum(h["train_time"])]),
            "val_loss": np.concatenate([[initial_val_loss], h["val_loss"]])}


def _row(name: str, batch: int, n_train: int, lr: float, steps_per_epoch: int,
         model: keras.Model, history, data) -> dict:
    h = history.history
    train_s = float(sum(h["train_time"]))
    epochs = len(h["loss"])
    _, test_acc = model.evaluate(data["x_test"], data["y_test"], verbose=0)
    return {
        "variant": name, "batch_size": batch, "train_images": n_train, "learning_rate": lr,
        "epochs": epochs, "steps": epochs * steps_per_epoch,
        "steps_per_s": epochs * steps_per_epoch / train_s,
        "images_per_s": epochs * n_train / train_s, "train_s": train_s,
        "val_loss_epoch1": h["val_loss"][0], "val_loss": h["val_loss"][-1],
        "val_acc": h["val_accuracy"][-1], "test_acc": test_acc,
    }


def _figures(run_dir, curves: Mapping[str, Mapping[str, np.ndarray]]) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, c in curves.items():
        axes[0].plot(c["epoch"], c["val_loss"], marker=".", label=name)
        axes[1].plot(c["seconds"], c["val_loss"], marker=".", label=name)
        axes[2].plot(c["steps"][1:], c["val_loss"][1:], marker=".", label=name)
    for ax, xlabel in zip(axes, ("epoch", "training seconds", "gradient steps (log)")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation loss")
        ax.grid(alpha=0.3, which="both")
    axes[2].set_xscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle("Validation loss (epoch 0 = initialization)")
    fig.tight_layout()
    save_figure(fig, run_dir / "loss_curves.png")
    return [("Validation loss against epochs, training seconds and gradient steps",
             "loss_curves.png")]


def _metrics(table: pd.DataFrame, common_t: float) -> dict:
    out = {"common_time_s": common_t}
    for r in table.itertuples():
        for c in ("val_loss_at_common_time", "test_acc", "steps_per_s", "images_per_s"):
            out[f"b{r.batch_size}_{c}"] = getattr(r, c)
    return out


def _notes(table: pd.DataFrame, common_t: float, config: Config) -> list[str]:
    t = table.set_index("variant")
    best_t = t["val_loss_at_common_time"].idxmin()
    is_mini = 1 < t.loc[best_t, "batch_size"] < t.loc[best_t, "train_images"]
    others = ", ".join(f"{v} {t.loc[v, 'val_loss_at_common_time']:.3f}"
                       for v in t.index if v != best_t)
    verdict = ("mini-batch wins the race against the clock, which is why it is the default"
               if is_mini else "mini-batch does NOT win the race against the clock here")
    notes = [f"After {common_t:.1f} training seconds (the shortest variant's total) the lowest "
             f"validation loss is {best_t}'s: {t.loc[best_t, 'val_loss_at_common_time']:.3f} "
             f"(others: {others}): {verdict}."]
    best_e1 = t["val_loss_epoch1"].idxmin()
    notes.append(f"Per epoch, {best_e1} learns most in its first epoch (validation loss "
                 f"{t.loc[best_e1, 'val_loss_epoch1']:.3f}): more steps per pass over the data. "
                 + "; ".join(f"{v}: {int(r['steps'] / r['epochs'])} step(s) per epoch"
                             for v, r in t.iterrows()) + ".")
    fastest = t["images_per_s"].idxmax()
    slowest = t["images_per_s"].idxmin()
    rates = "; ".join(f"{v} {r['images_per_s']:,.0f} images/s ({r['steps_per_s']:,.1f} steps/s)"
                      for v, r in t.iterrows())
    notes.append(f"Throughput: {rates}. The fastest, {fastest}, processes "
                 f"{t.loc[fastest, 'images_per_s'] / t.loc[slowest, 'images_per_s']:.0f}x as "
                 f"many images per second as {slowest}: a batch is one vectorized matrix "
                 "product instead of many small ones, while each step's fixed overhead is "
                 "paid once per batch.")
    full = table[table["batch_size"] >= table["train_images"]]
    if len(full):
        r = full.iloc[0]
        notes.append(f"{r['variant']}: {r['steps']} steps in {r['train_s']:.1f} s give a "
                     f"test accuracy of {r['test_acc']:.4f}; each step costs a full pass over "
                     "the training set.")
    best = table.loc[table["test_acc"].idxmax()]
    notes.append(f"Final test accuracy: best {best['test_acc']:.4f} ({best['variant']}), "
                 f"worst {table['test_acc'].min():.4f} "
                 f"({table.loc[table['test_acc'].idxmin(), 'variant']}); the variants ran "
                 "different numbers of epochs, so compare them at equal time (first note).")
    if config.quick:
        notes.append("Quick mode: a small slice and few epochs; the numbers only smoke-test.")
    return notes


def _intro(config: Config, common_t: float) -> str:
    rates = ", ".join(f"{b if b else 'all'}: {e} epoch(s)"
                      for b, e in zip(config.batch_sizes, config.epochs))
    return (
        f"MLP {'-'.join(map(str, config.hidden_units))} (ReLU, He init), optimizer "
        f"{config.optimizer}, learning rate {config.base_learning_rate:g} at batch 32 scaled "
        f"by the '{config.lr_scaling}' rule (base * (b / 32)^k), seed {config.seed} "
        f"re-applied before each variant, {'a slice of ' if config.quick else ''}MNIST with "
        f"5,000 training images held out for validation; batch size 1 trains on the first "
        f"{config.sgd_train} training images. Epochs per batch size ({rates}). Training "
        f"seconds exclude the validation pass; the table's `val_loss_at_common_time` is each "
        f"variant's validation loss interpolated at {common_t:.1f} s. Seconds depend on the "
        "machine and its load.")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m ch11.gradient_descent [--quick] [--batch-sizes 0 256 32 1] ...``."""
    return cli(Config, run, argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
