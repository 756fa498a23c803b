"""The clipping experiment: train the exploding setup with each clipping choice, monitor
every step, and write the run folder."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ch11 import _experiment as ex
from ch11._config import headline_seeds, seeds_why
from ch11._evidence import seed_summary, spread_figure
from ch11.clipping import report
from ch11.clipping.config import NAME, Config
from ch11.clipping.report import first_nonfinite
from recipes.builders import build_mlp, count_params
from recipes.specs import MLPSpec

__all__ = ["CLIPS", "run"]

CLIPS = ("none", "clipvalue", "clipnorm", "global_clipnorm")


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


def run(config: Config) -> ex.Results:
    """Train the exploding setup with each clipping choice and write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per clipping choice).
    """
    if config.quick:
        config = dataclasses.replace(config, depth=min(config.depth, 5), epochs=1)
    run_dir, started = ex.start(NAME, config)
    data = ex.mnist_splits(config.quick)
    spec = MLPSpec.deep(config.depth, config.units, activation=config.activation)
    fixed = (data["x_train"][: config.monitor_batch], data["y_train"][: config.monitor_batch])
    rows, histories, traces = [], {}, []
    for k, clip in enumerate(CLIPS, 1):
        kwargs = {} if clip == "none" else {clip: getattr(config, clip)}
        monitor = _GradientMonitor(*fixed, every=config.monitor_every)
        model, history = ex.train_variant(
            lambda: build_mlp(spec, (28, 28), 10),
            ex.classifier_compile(config.optimizer, config.learning_rate,
                                  loss="sparse_categorical_crossentropy", **kwargs),
            data, seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
            callbacks=[monitor, keras.callbacks.TerminateOnNaN()],
            label=f"variant {k}/{len(CLIPS)}: {clip}"
                  + (f"={kwargs[clip]:g}" if kwargs else " (no clipping)"),
            log_dir=ex.tensorboard_dir(run_dir, clip))
        histories[clip] = history
        traces.append(pd.DataFrame({"variant": clip, "step": monitor.steps,
                                    "grad_norm": monitor.grad_norms, "loss": monitor.losses}))
        rows.append(_row(clip, kwargs.get(clip), model, history, monitor, data))
    table = pd.DataFrame(rows)
    steps = pd.concat(traces, ignore_index=True)
    steps.to_csv(run_dir / "steps.csv", index=False)
    figures = report.figures(run_dir, steps, histories, config)
    seeds = headline_seeds(config)
    main_rows = [{"clipping": r.clipping, "val_acc": r.val_acc,
                  "diverged": float(r.diverged_at_step > 0)} for r in table.itertuples()]
    per_seed = ex.over_seeds(seeds, config.seed, main_rows,
                             lambda s: _rerun(config, spec, data, s))
    summary = seed_summary(per_seed, "clipping", report.HEADLINE_COLUMNS)
    evidence = report.evidence(summary, seeds, seeds_why(config), config, per_seed)
    figures.append(spread_figure(run_dir, per_seed, "clipping", ["val_acc"],
                                 f"Validation accuracy after {config.epochs} epoch(s), per seed"))
    return ex.finish(NAME, config, run_dir, started, table,
                     title="Gradient clipping on an exploding deep MLP (MNIST)",
                     intro=report.intro(config), histories=histories, figures=figures,
                     notes=[evidence.headline, *report.notes(table, config)],
                     metrics=report.metrics(table), evidence=evidence)


def _rerun(config: Config, spec: MLPSpec, data: dict, seed: int) -> list[dict]:
    """Every clipping choice again with another seed, without the per-step monitor."""
    rows = []
    for clip in CLIPS:
        kwargs = {} if clip == "none" else {clip: getattr(config, clip)}
        _, history = ex.train_variant(
            lambda: build_mlp(spec, (28, 28), 10),
            ex.classifier_compile(config.optimizer, config.learning_rate,
                                  loss="sparse_categorical_crossentropy", **kwargs),
            data, seed=seed, epochs=config.epochs, batch_size=config.batch_size,
            callbacks=[keras.callbacks.TerminateOnNaN()], label=f"seed {seed}: {clip}")
        h = history.history
        losses = np.asarray(h["loss"], dtype=float)
        rows.append({"clipping": clip,
                     "val_acc": h["val_accuracy"][-1] if h.get("val_accuracy") else np.nan,
                     "diverged": float(not np.all(np.isfinite(losses))
                                       or len(losses) < config.epochs)})
    return rows


def _row(clip: str, threshold: float | None, model: keras.Model, history, monitor, data) -> dict:
    h = history.history
    norms = np.asarray(monitor.grad_norms, dtype=float)
    finite = norms[np.isfinite(norms)]
    tail = norms[-max(1, len(norms) // 10):]
    tail = tail[np.isfinite(tail)]  # the last tenth of the measured steps
    diverged = first_nonfinite(monitor.steps, monitor.losses)
    return {
        "clipping": clip, "threshold": float("nan") if threshold is None else threshold,
        "steps": monitor.steps[-1] if monitor.steps else 0,
        "diverged_at_step": -1 if diverged is None else diverged,
        "val_acc": h["val_accuracy"][-1], "test_acc": ex.test_accuracy(model, data),
        "final_loss": monitor.losses[-1] if monitor.losses else float("nan"),
        "grad_norm_init": norms[0] if len(norms) else float("nan"),
        "grad_norm_median": float(np.median(finite)) if len(finite) else float("nan"),
        "grad_norm_p99": float(np.percentile(finite, 99)) if len(finite) else float("nan"),
        "grad_norm_max": float(finite.max()) if len(finite) else float("nan"),
        "grad_norm_end": float(np.median(tail)) if len(tail) else float("nan"),
        "s_per_epoch": float(np.mean(h["epoch_time"])),
        "params": count_params(model)["trainable"],
    }
