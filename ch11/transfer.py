"""Transfer learning: reuse model A's layers for a small task B, over several seeds.

Hands-On ML, chapter 11, "Reusing Pretrained Layers" / "Transfer Learning with Keras",
moved from Fashion MNIST to MNIST. Model A is trained on the 8 digits that are not in
task B; task B is a binary task on the two other digits with only a couple of hundred
training images. Model B is trained from scratch, and model "B on A" reuses A's hidden
layers (`recipes.transfer.reuse_layers`, a clone, so A is unchanged), first frozen, then
unfrozen (`recipes.transfer.fine_tune`). Every B model is trained with several seeds, and
the run reports the mean and the spread of the test error rates: the book warns that its
own striking improvement came from trying configurations until one looked good.

Run: ``python -m ch11.transfer`` (``make recipe-transfer``), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from ch11._experiment import Results, cli, finish, mnist_splits, start, train_variant
from recipes.builders import build_mlp, count_params
from recipes.losses import make_loss
from recipes.optimizers import OPTIMIZER_NAMES, make_optimizer
from recipes.plots import learning_curves
from recipes.runs import EpochTimer, save_figure, set_seed
from recipes.specs import MLPSpec
from recipes.transfer import fine_tune, reuse_layers

__all__ = ["Config", "main", "run", "split_tasks"]

NAME = "transfer"
VARIANTS = ("scratch", "frozen", "fine_tuned")


@dataclass(frozen=True)
class Config:
    """The experiment's settings; the defaults are the book's values where it gives them."""

    seed: int = field(default=42, metadata={"help": "seed of model A and of B's first run"})
    quick: bool = field(default=False, metadata={"help": "small slice, few epochs (tests)"})
    classes_b: tuple[int, ...] = field(
        default=(4, 9),
        metadata={"help": "the two digits of task B (label 1: the second); A gets the other "
                          "8. The book's pair (pullover, T-shirt) is a confusable one"})
    n_train_b: int = field(default=200, metadata={"help": "training images of task B"})
    seeds: int = field(default=10, metadata={"help": "seeds for the B models: seed, seed+1, ..."})
    hidden_units: tuple[int, ...] = field(
        default=(100, 100, 100), metadata={"help": "hidden layers of A and B (the book's)"})
    optimizer: str = field(default="sgd", metadata={"help": "optimizer of every model",
                                                    "choices": OPTIMIZER_NAMES})
    learning_rate: float = field(default=1e-3, metadata={"help": "learning rate (the book's)"})
    epochs_a: int = field(default=20, metadata={"help": "epochs of model A (the book's)"})
    epochs_b: int = field(default=20, metadata={"help": "epochs of B from scratch (the book's)"})
    frozen_epochs: int = field(default=4, metadata={"help": "B on A: epochs with A's layers "
                                                            "frozen (the book's)"})
    fine_tune_epochs: int = field(default=16, metadata={"help": "B on A: epochs after "
                                                                "unfreezing (the book's)"})
    fine_tune_lr_factor: float = field(
        default=1.0, metadata={"help": "fine-tuning rate / first rate (the notebook keeps the "
                                       "same rate; the text advises a smaller one)"})
    batch_size: int = field(default=32, metadata={"help": "mini-batch size"})
    out_dir: str = field(default="runs", metadata={"help": "where run folders go"})

    def __post_init__(self) -> None:
        if len(self.classes_b) != 2 or len(set(self.classes_b)) != 2 \
                or not all(0 <= c <= 9 for c in self.classes_b):
            raise ValueError(f"classes_b must be two different digits 0-9, got {self.classes_b}.")
        for name in ("n_train_b", "seeds", "epochs_a", "epochs_b", "frozen_epochs",
                     "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.fine_tune_epochs < 0:
            raise ValueError(f"fine_tune_epochs must be >= 0, got {self.fine_tune_epochs}.")
        for name in ("learning_rate", "fine_tune_lr_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}.")
        if not self.hidden_units or min(self.hidden_units) < 1:
            raise ValueError(f"hidden_units must be positive, got {self.hidden_units}.")


def split_tasks(data: Mapping[str, np.ndarray], classes_b: Sequence[int],
                n_train_b: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Split MNIST into task A (8 digits, relabeled 0-7) and task B (2 digits, 0/1).

    Args:
        data: `mnist_splits` output.
        classes_b: the two digits of task B; label 1 is the second one.
        n_train_b: keep only the first ``n_train_b`` training images of task B.

    Returns:
        ``(data_a, data_b)``, dicts with the keys of `data`; A's labels are the ranks of
        its digits (0-7), B's labels are float32 0/1.

    Raises:
        ValueError: if task B has fewer than ``n_train_b`` training images.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Transfer Learning with Keras".
    """
    keep_a = np.array([c for c in range(10) if c not in classes_b])
    relabel = np.full(10, -1, dtype="int64")
    relabel[keep_a] = np.arange(len(keep_a))
    data_a, data_b = {}, {}
    for part in ("train", "valid", "test"):
        x, y = data[f"x_{part}"], data[f"y_{part}"]
        in_b = np.isin(y, classes_b)
        data_a[f"x_{part}"], data_a[f"y_{part}"] = x[~in_b], relabel[y[~in_b]]
        data_b[f"x_{part}"] = x[in_b]
        data_b[f"y_{part}"] = (y[in_b] == classes_b[1]).astype("float32")
    if len(data_b["x_train"]) < n_train_b:
        raise ValueError(f"Task B has only {len(data_b['x_train'])} training images, fewer "
                         f"than n_train_b={n_train_b}.")
    data_b["x_train"], data_b["y_train"] = (data_b["x_train"][:n_train_b],
                                            data_b["y_train"][:n_train_b])
    return data_a, data_b


class _TestError(keras.callbacks.Callback):
    """Log the binary test error rate after each epoch as ``test_error``."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        super().__init__()
        self.x, self.y = x, y

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        with warnings.catch_warnings():
            # reuse_layers' model B takes its inputs as a one-element list; calling it on
            # a bare array is correct but makes Keras warn about the structure.
            warnings.filterwarnings("ignore", "The structure of `inputs`", UserWarning)
            p = keras.ops.convert_to_numpy(self.model(self.x, training=False))[:, 0]
        logs["test_error"] = float(np.mean((p > 0.5) != (self.y > 0.5)))


def run(config: Config) -> Results:
    """Train model A, then B from scratch and B on A for every seed; write the run folder.

    Args:
        config: the settings.

    Returns:
        The `Results` (table: one row per B variant with the error rates' mean and spread).
    """
    if config.quick:
        config = dataclasses.replace(config, seeds=min(config.seeds, 2), epochs_a=1,
                                     epochs_b=2, frozen_epochs=1, fine_tune_epochs=1,
                                     hidden_units=config.hidden_units[:2])
    run_dir, started = start(NAME, config)
    data_a, data_b = split_tasks(mnist_splits(config.quick), config.classes_b, config.n_train_b)
    spec = MLPSpec(hidden_units=config.hidden_units, activation="relu")
    lr = config.learning_rate

    def compile_kwargs(loss: str) -> dict:
        return {"optimizer": make_optimizer(config.optimizer, learning_rate=lr),
                "loss": make_loss(loss), "metrics": ["accuracy"]}

    total = 1 + 2 * config.seeds
    model_a, history_a = train_variant(
        lambda: build_mlp(spec, (28, 28), 8, name="model_A"), compile_kwargs("crossentropy"),
        data_a, seed=config.seed, epochs=config.epochs_a, batch_size=config.batch_size,
        label=f"variant 1/{total}: model A on the {len(np.unique(data_a['y_train']))} other "
              f"digits ({len(data_a['x_train']):,} images)")
    _, acc_a = model_a.evaluate(data_a["x_test"], data_a["y_test"], verbose=0)
    base = [layer.name for layer in model_a.layers
            if not isinstance(layer, keras.layers.InputLayer)].index("output")
    histories: dict[str, dict] = {"A": history_a.history}
    per_seed = []
    for i in range(config.seeds):
        seed = config.seed + i
        test_error = _TestError(data_b["x_test"], data_b["y_test"])
        _, history = train_variant(
            lambda: build_mlp(spec, (28, 28), 1, name="model_B"),
            compile_kwargs("binary_crossentropy"), data_b, seed=seed, epochs=config.epochs_b,
            batch_size=config.batch_size, callbacks=[test_error], verbose=0,
            label=f"variant {2 + 2 * i}/{total}: B from scratch, seed {seed}")
        scratch = history.history["test_error"][-1]
        print(f"test error {scratch:.4f}", flush=True)
        histories[f"B_scratch_s{seed}"] = history.history

        print(f"\n=== variant {3 + 2 * i}/{total}: B on A (frozen, then fine-tuned), "
              f"seed {seed} ===", flush=True)
        keras.backend.clear_session()
        set_seed(seed)
        model_b = reuse_layers(model_a, base, new_head=1, name="model_B_on_A")
        phases = fine_tune(
            model_b, (data_b["x_train"], data_b["y_train"]),
            (data_b["x_valid"], data_b["y_valid"]), base_layers=base,
            optimizer=make_optimizer(config.optimizer, learning_rate=lr), learning_rate=lr,
            frozen_epochs=config.frozen_epochs, fine_tune_epochs=config.fine_tune_epochs,
            fine_tune_lr_factor=config.fine_tune_lr_factor, loss="binary_crossentropy",
            callbacks=[EpochTimer(), test_error], verbose=0, batch_size=config.batch_size)
        both = {k: phases["phase1"].history[k] + phases["phase2"].history.get(k, [])
                for k in phases["phase1"].history}
        frozen, tuned = both["test_error"][config.frozen_epochs - 1], both["test_error"][-1]
        print(f"test error {frozen:.4f} after the frozen phase, {tuned:.4f} after "
              "fine-tuning", flush=True)
        histories[f"B_on_A_s{seed}"] = both
        per_seed.append({"seed": seed, "scratch": scratch, "frozen": frozen,
                         "fine_tuned": tuned,
                         "scratch_train_acc": history.history["accuracy"][-1],
                         "fine_tuned_train_acc": both["accuracy"][-1]})
    seeds = pd.DataFrame(per_seed)
    table = _summary(seeds, config)
    figures = _figures(run_dir, seeds, histories, config)
    return finish(
        NAME, config, run_dir, started, table, title="Transfer learning on MNIST, over seeds",
        intro=_intro(config, data_a, data_b, acc_a), histories=histories, figures=figures,
        notes=_notes(seeds, config),
        metrics={**_metrics(seeds, acc_a), "model_A_params": count_params(model_a)["total"],
                 "model_B_on_A_params": count_params(model_b)["total"]},
        sections=[("Test error per seed", _markdown(seeds))])


def _summary(seeds: pd.DataFrame, config: Config) -> pd.DataFrame:
    epochs = {"scratch": config.epochs_b, "frozen": config.frozen_epochs,
              "fine_tuned": config.frozen_epochs + config.fine_tune_epochs}
    rows = []
    for v in VARIANTS:
        e = seeds[v]
        rows.append({
            "variant": v, "epochs": epochs[v], "seeds": len(e),
            "mean_error": e.mean(), "std_error": e.std(ddof=1) if len(e) > 1 else float("nan"),
            "min_error": e.min(), "max_error": e.max(),
            "beats_scratch": "" if v == "scratch" else
            f"{int((e < seeds['scratch']).sum())}/{len(e)}",
        })
    return pd.DataFrame(rows)


def _markdown(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v)
                                       for v in row) + " |")
    return "\n".join(lines)


def _figures(run_dir, seeds: pd.DataFrame, histories: dict,
             config: Config) -> list[tuple[str, str]]:
    save_figure(_seed_plot(seeds), run_dir / "error_per_seed.png")
    first = config.seed
    curves = {"B from scratch": histories[f"B_scratch_s{first}"],
              "B on A": histories[f"B_on_A_s{first}"]}
    save_figure(learning_curves(curves, title=f"Task B, seed {first} (B on A: the first "
                                f"{config.frozen_epochs} epochs frozen)"),
                run_dir / "b_learning_curves.png")
    save_figure(learning_curves({"A": histories["A"]}, title="Model A (8 digits)"),
                run_dir / "a_learning_curves.png")
    return [("Test error of each B variant per seed (lines join a seed; bar: mean +- std)",
             "error_per_seed.png"),
            ("Task B learning curves for the first seed", "b_learning_curves.png"),
            ("Model A learning curves", "a_learning_curves.png")]


def _seed_plot(seeds: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    xs = np.arange(len(VARIANTS))
    for _, row in seeds.iterrows():
        ax.plot(xs, [row[v] for v in VARIANTS], color="gray", alpha=0.35, marker=".")
    means = [seeds[v].mean() for v in VARIANTS]
    stds = [seeds[v].std(ddof=1) if len(seeds) > 1 else 0.0 for v in VARIANTS]
    ax.errorbar(xs, means, yerr=stds, fmt="o", color="tab:red", capsize=6, lw=2,
                label="mean +- std")
    ax.set_xticks(xs, ["B from scratch", "B on A, frozen", "B on A, fine-tuned"])
    ax.set_ylabel("test error rate")
    ax.set_title(f"Test error over {len(seeds)} seeds")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _metrics(seeds: pd.DataFrame, acc_a: float) -> dict:
    out = {"model_A_test_acc": acc_a}
    for v in VARIANTS:
        out[f"{v}_mean_error"] = seeds[v].mean()
        out[f"{v}_std_error"] = seeds[v].std(ddof=1) if len(seeds) > 1 else None
    out["per_seed"] = seeds.to_dict(orient="records")
    return out


def _notes(seeds: pd.DataFrame, config: Config) -> list[str]:
    n = len(seeds)
    s, f, z = seeds["scratch"], seeds["fine_tuned"], seeds["frozen"]
    notes = []
    mean_drop = (s.mean() - f.mean()) / s.mean() if s.mean() > 0 else float("nan")
    direction = "lower" if f.mean() < s.mean() else "NOT lower"
    notes.append(
        f"Mean test error over {n} seed(s): {s.mean():.4f} from scratch vs {f.mean():.4f} "
        f"for B on A after fine-tuning ({direction}; relative change of the mean error "
        f"{-mean_drop:+.0%}), and {z.mean():.4f} after the frozen phase alone "
        f"({config.frozen_epochs} epochs).")
    diff = s - f
    wins = int((diff > 0).sum())
    if n > 1:
        se = diff.std(ddof=1) / np.sqrt(n)
        clear = abs(diff.mean()) > 2 * se
        notes.append(
            f"Paired by seed, scratch minus fine-tuned error is {diff.mean():+.4f} on average "
            f"(std {diff.std(ddof=1):.4f}, standard error {se:.4f}); B on A wins on {wins} of "
            f"{n} seeds. The mean difference is "
            + ("more than twice its standard error: the gain holds beyond seed noise."
               if clear else "within twice its standard error: not distinguishable from "
               "seed noise."))
    rel = (s - f) / s.where(s > 0)
    if rel.notna().any():
        lucky, unlucky = rel.idxmax(), rel.idxmin()

        def change(i: int) -> str:
            return (f"a {rel[i]:.0%} error reduction" if rel[i] >= 0
                    else f"a {-rel[i]:.0%} error increase") + f" ({s[i]:.4f} -> {f[i]:.4f})"

        notes.append(
            f"The lucky seed: seed {int(seeds.loc[lucky, 'seed'])} shows {change(lucky)}; the "
            f"least lucky, seed {int(seeds.loc[unlucky, 'seed'])}, shows {change(unlucky)}. "
            "Reporting one seed could claim anything in between: the book's warning.")
    if "scratch_train_acc" in seeds:
        acc_s, acc_f = seeds["scratch_train_acc"].mean(), seeds["fine_tuned_train_acc"].mean()
        steps = config.epochs_b * -(-config.n_train_b // config.batch_size)
        if acc_s < 0.95:
            notes.append(
                f"B from scratch is far from fitting its {config.n_train_b} images: training "
                f"accuracy {acc_s:.3f} in its last epoch (B on A: {acc_f:.3f}) after {steps} "
                f"steps of {config.optimizer} at {config.learning_rate:g}. At the book's "
                "settings part of the gain is A's layers starting where B's have not yet "
                "arrived; a higher --learning-rate trains both further.")
    if z.mean() > s.mean():
        notes.append(
            f"The frozen phase alone is worse than scratch ({z.mean():.4f} vs {s.mean():.4f}): "
            f"its {config.frozen_epochs * -(-config.n_train_b // config.batch_size)} steps "
            "train only the new output layer on features A learned for other digits; the "
            "gain comes with fine-tuning the reused layers.")
    notes.append(
        f"Both B models see only {config.n_train_b} training images at learning rate "
        f"{config.learning_rate:g} for {config.epochs_b} vs "
        f"{config.frozen_epochs + config.fine_tune_epochs} epochs: the gain of B on A is what "
        "A's features bring when B's own data are scarce.")
    if config.quick:
        notes.append("Quick mode: a small slice and few epochs; the numbers only smoke-test.")
    return notes


def _intro(config: Config, data_a: dict, data_b: dict, acc_a: float) -> str:
    a_digits = [c for c in range(10) if c not in config.classes_b]
    return (
        f"Model A: MLP {' x '.join(map(str, config.hidden_units))} ReLU (He init) + softmax "
        f"over the digits {', '.join(map(str, a_digits))} ({len(data_a['x_train']):,} "
        f"training images, {config.epochs_a} epochs; test accuracy {acc_a:.4f}). Task B: "
        f"digit {config.classes_b[1]} (label 1) vs {config.classes_b[0]} (label 0), "
        f"{len(data_b['x_train'])} training images, validation {len(data_b['x_valid']):,}, "
        f"test {len(data_b['x_test']):,} images. The pair is a confusable one, as the book's "
        "pullover vs T-shirt. B from scratch: the same architecture with a sigmoid output. B "
        "on A: a clone of A's hidden layers + a new sigmoid output, trained "
        f"{config.frozen_epochs} epochs with A's layers frozen, then "
        f"{config.fine_tune_epochs} epochs unfrozen at {config.fine_tune_lr_factor:g}x the "
        f"rate. Every model: {config.optimizer} at {config.learning_rate:g}, batch "
        f"{config.batch_size}. Model A is trained once (seed {config.seed}); each B model is "
        f"trained with seeds {config.seed}..{config.seed + config.seeds - 1} (initial "
        "weights of B and of the new output layer, and the shuffling). Errors are on B's test "
        "images.")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m ch11.transfer [--quick] [--seeds N] [--classes-b 4 9] ...``."""
    return cli(Config, run, argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
