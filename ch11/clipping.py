"""Gradient clipping: none vs clipvalue vs clipnorm vs global_clipnorm, on an exploding setup.

Hands-On ML, chapter 11, "Gradient Clipping". A deep ReLU MLP trained with momentum at a
learning rate too high for it is a setup whose gradients explode: a large step makes the
next gradient larger, and within an epoch the loss becomes NaN. The same net is trained
from the same seed without clipping and with each of Keras's clipping arguments (through
`recipes.optimizers.make_optimizer`). A small callback records, after every training
step, the global gradient norm (before any clipping) and the loss on one fixed batch of
training images, so the variants are measured on the same data at every step.

Run: ``python -m ch11.clipping`` (``make recipe-clipping``), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ch11._experiment import Results, cli, finish, mnist_splits, start, train_variant
from recipes.builders import build_mlp, count_params
from recipes.optimizers import OPTIMIZER_NAMES, make_optimizer
from recipes.plots import learning_curves
from recipes.runs import save_figure
from recipes.specs import MLPSpec

__all__ = ["Config", "main", "run"]

NAME = "clipping"
CLIPS = ("none", "clipvalue", "clipnorm", "global_clipnorm")


@dataclass(frozen=True)
class Config:
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seed: int = field(default=42, metadata={"help": "seed, re-applied before each variant"})
    quick: bool = field(default=False, metadata={"help": "small slice, one epoch (tests)"})
    depth: int = field(default=20, metadata={"help": "hidden layers of the deep MLP"})
    units: int = field(default=100, metadata={"help": "units per hidden layer"})
    activation: str = field(default="relu", metadata={"help": "hidden activation"})
    optimizer: str = field(default="momentum", metadata={"help": "optimizer of every variant",
                                                         "choices": OPTIMIZER_NAMES})
    learning_rate: float = field(
        default=0.05, metadata={"help": "learning rate, too high on purpose so that the "
                                        "unclipped net's gradients explode"})
    clipvalue: float = field(default=1.0, metadata={"help": "clipvalue (the book's 1.0)"})
    clipnorm: float = field(default=1.0, metadata={"help": "clipnorm (the book's 1.0)"})
    global_clipnorm: float = field(default=1.0, metadata={"help": "global_clipnorm threshold"})
    epochs: int = field(default=2, metadata={"help": "epochs per variant"})
    batch_size: int = field(default=32, metadata={"help": "mini-batch size"})
    monitor_batch: int = field(
        default=256, metadata={"help": "fixed training images the gradient norm is measured on"})
    monitor_every: int = field(default=1, metadata={"help": "measure every N training steps"})
    out_dir: str = field(default="runs", metadata={"help": "where run folders go"})

    def __post_init__(self) -> None:
        for name in ("depth", "units", "epochs", "batch_size", "monitor_batch",
                     "monitor_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("learning_rate", "clipvalue", "clipnorm", "global_clipnorm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}.")


class _GradientMonitor(keras.callbacks.Callback):
    """Record the global gradient norm and the loss on a fixed batch, every N steps.

    Step 0 (recorded when training begins) is the initial weights; step k is after the
    k-th update.

    The gradient is the raw one (the optimizer's clipping is not applied), computed with
    ``tf.GradientTape`` over ``model.trainable_variables`` in inference mode. The global
    norm is ``sqrt(sum of squared components over all variables)``.

    Args:
        x: the fixed inputs.
        y: their integer labels.
        every: measure after every ``every``-th training step. Defaults to `1`.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Gradient Clipping"; Pascanu et al.,
    "On the difficulty of training recurrent neural networks" (2013).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, every: int = 1) -> None:
        super().__init__()
        self.x, self.y, self.every = tf.constant(x), tf.constant(y), int(every)
        self.steps: list[int] = []
        self.grad_norms: list[float] = []
        self.losses: list[float] = []
        self._step = 0
        self._measure = None

    def measure(self) -> tuple[float, float]:
        """Return ``(loss, global gradient norm)`` on the fixed batch at the current weights."""
        if self._measure is None:
            loss_fn = keras.losses.SparseCategoricalCrossentropy()
            model = self.model

            @tf.function
            def measure():
                with tf.GradientTape() as tape:
                    loss = loss_fn(self.y, model(self.x, training=False))
                    if model.losses:
                        loss += tf.add_n(model.losses)
                grads = tape.gradient(loss, model.trainable_variables)
                return loss, tf.linalg.global_norm(grads)

            self._measure = measure
        loss, norm = self._measure()
        return float(loss), float(norm)

    def _record(self) -> None:
        loss, norm = self.measure()
        self.steps.append(self._step)
        self.losses.append(loss)
        self.grad_norms.append(norm)

    def on_train_begin(self, logs: dict | None = None) -> None:  # noqa: D102
        if not self.steps:  # step 0: the initial weights
            self._record()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:  # noqa: D102
        self._step += 1
        if self._step % self.every == 0:
            self._record()


def _first_nonfinite(steps: Sequence[int], values: Sequence[float]) -> int | None:
    bad = [s for s, v in zip(steps, values) if not np.isfinite(v)]
    return bad[0] if bad else None


def run(config: Config) -> Results:
    """Train the exploding setup with each clipping choice and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per clipping choice).
    """
    if config.quick:
        config = dataclasses.replace(config, depth=min(config.depth, 5), epochs=1)
    run_dir, started = start(NAME, config)
    data = mnist_splits(config.quick)
    spec = MLPSpec.deep(config.depth, config.units, activation=config.activation)
    fixed = (data["x_train"][: config.monitor_batch], data["y_train"][: config.monitor_batch])
    rows, histories, traces = [], {}, []
    for k, clip in enumerate(CLIPS, 1):
        kwargs = {} if clip == "none" else {clip: getattr(config, clip)}
        monitor = _GradientMonitor(*fixed, every=config.monitor_every)
        model, history = train_variant(
            lambda: build_mlp(spec, (28, 28), 10),
            {"optimizer": make_optimizer(config.optimizer, learning_rate=config.learning_rate,
                                         **kwargs),
             "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
            data, seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
            callbacks=[monitor, keras.callbacks.TerminateOnNaN()],
            label=f"variant {k}/{len(CLIPS)}: {clip}"
                  + (f"={kwargs[clip]:g}" if kwargs else " (no clipping)"))
        histories[clip] = history
        traces.append(pd.DataFrame({"variant": clip, "step": monitor.steps,
                                    "grad_norm": monitor.grad_norms, "loss": monitor.losses}))
        rows.append(_row(clip, kwargs.get(clip), model, history, monitor, data))
    table = pd.DataFrame(rows)
    steps = pd.concat(traces, ignore_index=True)
    steps.to_csv(run_dir / "steps.csv", index=False)
    figures = _figures(run_dir, steps, histories, config)
    return finish(NAME, config, run_dir, started, table,
                  title="Gradient clipping on an exploding deep MLP (MNIST)",
                  intro=_intro(config), histories=histories, figures=figures,
                  notes=_notes(table, config), metrics=_metrics(table))


def _row(clip: str, threshold: float | None, model: keras.Model, history, monitor, data) -> dict:
    h = history.history
    norms = np.asarray(monitor.grad_norms, dtype=float)
    finite = norms[np.isfinite(norms)]
    tail = norms[-max(1, len(norms) // 10):]
    tail = tail[np.isfinite(tail)]  # the last tenth of the measured steps
    _, test_acc = model.evaluate(data["x_test"], data["y_test"], verbose=0)
    diverged = _first_nonfinite(monitor.steps, monitor.losses)
    return {
        "clipping": clip, "threshold": float("nan") if threshold is None else threshold,
        "steps": monitor.steps[-1] if monitor.steps else 0,
        "diverged_at_step": -1 if diverged is None else diverged,
        "val_acc": h["val_accuracy"][-1], "test_acc": test_acc,
        "final_loss": monitor.losses[-1] if monitor.losses else float("nan"),
        "grad_norm_init": norms[0] if len(norms) else float("nan"),
        "grad_norm_median": float(np.median(finite)) if len(finite) else float("nan"),
        "grad_norm_p99": float(np.percentile(finite, 99)) if len(finite) else float("nan"),
        "grad_norm_max": float(finite.max()) if len(finite) else float("nan"),
        "grad_norm_end": float(np.median(tail)) if len(tail) else float("nan"),
        "s_per_epoch": float(np.mean(h["epoch_time"])),
        "params": count_params(model)["trainable"],
    }


def _figures(run_dir, steps: pd.DataFrame, histories, config: Config) -> list[tuple[str, str]]:
    for column, ylabel, name in (
            ("grad_norm", "global gradient norm (fixed batch, before clipping)", "grad_norm"),
            ("loss", "loss on the fixed batch", "loss_per_step")):
        save_figure(_per_step(steps, column, ylabel, config), run_dir / f"{name}.png")
    save_figure(learning_curves(histories, title="Per-epoch learning curves"),
                run_dir / "learning_curves.png")
    return [("Global gradient norm after every step (thin: raw, thick: rolling median; x: "
             "divergence)", "grad_norm.png"),
            ("Loss on the fixed batch after every step (y axis cut at 1.5x the highest "
             "rolling median; x: divergence)", "loss_per_step.png"),
            ("Per-epoch learning curves (training dashed, validation solid)",
             "learning_curves.png")]


def _per_step(steps: pd.DataFrame, column: str, ylabel: str, config: Config):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    log = column == "grad_norm"
    tops, marks = [], []
    for i, (clip, part) in enumerate(steps.groupby("variant", sort=False)):
        color = colors[i % len(colors)]
        values = part[column].to_numpy(dtype=float)
        shown = np.where(np.isfinite(values), values, np.nan)
        ax.plot(part["step"], shown, color=color, alpha=0.25, lw=0.6)
        window = max(1, min(50, len(part) // 20))
        smooth = pd.Series(shown).rolling(window, min_periods=1).median()
        ax.plot(part["step"], smooth, color=color, lw=1.8, label=clip)
        tops.append(np.nanmax(smooth) if np.isfinite(smooth).any() else 1.0)
        bad = _first_nonfinite(part["step"].tolist(), part["loss"].tolist())
        if bad is not None:
            last = shown[np.isfinite(shown)]
            marks.append((bad, last[-1] if len(last) else np.nan, color))
    if log:
        ax.axhline(config.global_clipnorm, color="gray", ls=":", lw=1,
                   label=f"global_clipnorm = {config.global_clipnorm:g}")
        ax.set_yscale("log")
    else:  # the diverging loss reaches 1e30 and more: show the range of the smoothed curves
        top = 1.5 * max(tops)
        ax.set_ylim(0, top)
    ymax = ax.get_ylim()[1]
    for step, value, color in marks:  # x where the loss became NaN, at the last finite value
        y = value if np.isfinite(value) else ymax
        ax.plot([step], [y if log else min(y, 0.95 * ymax)], "x", color=color, ms=12, mew=3)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _metrics(table: pd.DataFrame) -> dict:
    return {f"{r.clipping}_{c}": getattr(r, c) for r in table.itertuples()
            for c in ("val_acc", "test_acc", "diverged_at_step", "grad_norm_max")}


def _notes(table: pd.DataFrame, config: Config) -> list[str]:
    t = table.set_index("clipping")
    notes = []
    none = t.loc["none"]
    if none.diverged_at_step > 0:
        notes.append(
            f"Without clipping the loss became NaN at step {int(none.diverged_at_step)}; the "
            f"gradient norm had grown from {none.grad_norm_init:.3g} at initialization (median "
            f"{none.grad_norm_median:.3g}) to {none.grad_norm_max:.3g} just before: the "
            "gradients exploded and training stopped (TerminateOnNaN); its accuracies are "
            "those of the NaN weights.")
    else:
        notes.append(
            f"Without clipping this run did NOT diverge (largest gradient norm "
            f"{none.grad_norm_max:.3g}, {none.grad_norm_max / none.grad_norm_median:.1f}x its "
            f"median; validation accuracy {none.val_acc:.4f}): the setup was not explosive "
            "enough at this seed and rate to need clipping.")
    for clip in CLIPS[1:]:
        r = t.loc[clip]
        fate = (f"diverged at step {int(r.diverged_at_step)}" if r.diverged_at_step > 0
                else f"no NaN through all {int(r.steps)} steps")
        if r.diverged_at_step < 0 and abs(r.final_loss - np.log(10)) < 0.05:
            fate += (f", but it is stuck: its final loss {r.final_loss:.3f} is ln 10 = 2.303, "
                     "the loss of a uniform guess over 10 digits; its gradient norm's median "
                     f"over the last tenth of the steps is {r.grad_norm_end:.3g} vs "
                     f"{r.grad_norm_init:.3g} at initialization")
        notes.append(
            f"{clip}={r.threshold:g}: {fate}; validation accuracy {r.val_acc:.4f}, test "
            f"{r.test_acc:.4f}; gradient norm median {r.grad_norm_median:.3g}, 99th "
            f"percentile {r.grad_norm_p99:.3g}, max {r.grad_norm_max:.3g}.")
    stable = t[t["diverged_at_step"] < 0]
    if len(stable):
        best = stable["val_acc"].idxmax()
        notes.append(
            f"Best of the runs that did not diverge: {best} (validation accuracy "
            f"{stable.loc[best, 'val_acc']:.4f}). clipvalue clips each component and can "
            "turn the gradient; clipnorm rescales each tensor separately; global_clipnorm "
            "rescales all of them together and keeps the direction.")
    notes.append(
        "Clipping bounds the step, not the gradient: the norms above are the raw gradients "
        "the optimizer received before clipping, measured on the same fixed batch.")
    if config.quick:
        notes.append(f"Quick mode: a small slice, {config.depth} layers and one epoch; the "
                     "numbers only smoke-test.")
    return notes


def _intro(config: Config) -> str:
    return (
        f"Deep MLP: {config.depth} hidden layers x {config.units} units, {config.activation} "
        f"(He initialization), no batch norm; optimizer {config.optimizer} at learning rate "
        f"{config.learning_rate:g} (deliberately too high: the exploding setup), batch "
        f"{config.batch_size}, {config.epochs} epoch(s), seed {config.seed} re-applied before "
        f"each variant, {'a slice of ' if config.quick else ''}MNIST with 5,000 training images "
        "held out for validation. Variants: no clipping, clipvalue, clipnorm and "
        "global_clipnorm through make_optimizer; TerminateOnNaN stops a diverged run. "
        f"Monitor: a callback computes, every {config.monitor_every} step(s), the loss and the "
        f"global gradient norm on the same {config.monitor_batch} training images (inference "
        "mode, before clipping); all per-step values are in steps.csv.")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m ch11.clipping [--quick] [--learning-rate LR] ...``."""
    return cli(Config, run, argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
