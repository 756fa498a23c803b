"""Diagnose a trained (or failing) Keras model: why does training fail?

Hands-On ML, chapter 11, the whole chapter turned around: instead of showing a remedy,
find the problem. The model is loaded from a ``.keras`` file, run on a few batches of
real data (and, with ``--probe-steps N``, trained N steps on COPIES at its own learning
rate, 10x and 100x it), and every finding is printed with its evidence (the numbers) and
the chapter's remedy: vanishing or exploding gradients, NaN/Inf, dead ReLUs, saturated
sigmoid/tanh units, a lagging class, overfitting, a learning rate too high or too low.
``report.md`` with the plots (gradient flow, activation and weight histograms, confusion
matrix, ROC curves, saliency maps, the probe's losses) goes to a run folder.

Data: ``--data mnist`` draws ``--samples`` images from MNIST's training set (the
"training" sample: gradients, activations, the train side of the gap) and as many from its
test set (the "validation" sample: per-class AUC, the other side of the gap).
``--data fish --data-dir DIR`` draws them from the training split and from the validation
and test splits of ``recipes.data.load_fish``, resized to the model's input size.
Pixel scale rule (both data sets): the images are scaled to [0, 1] unless the model's
first layer with any effect is a ``Rescaling`` layer, which then gets the raw 0-255
pixels. MNIST images are reshaped to ``(28, 28, 1)`` or ``(784,)`` when the model takes
those.

Exit code: 0 when nothing is found ("No findings"), 1 when something is, 2 on bad input
(a file that is not a Keras model, data that do not fit it), with a message.

Run: ``python -m ch11.diagnose --model runs/x/model.keras --data mnist [--probe-steps 20]``.
"""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from ch11._experiment import Results, cli, finish, start
from recipes.data import MnistUnavailableError, load_fish, load_mnist
from recipes.diagnosis.doctor import Examination, Finding, examine
from recipes.diagnosis.measures import layer_outputs, saliency_map
from recipes.diagnosis.probing import check_input_shape, leaf_layers
from recipes.metrics import roc_curves
from recipes.plots import (
    activation_histograms,
    confusion_heatmap,
    gradient_flow,
    roc_plot,
    saliency_grid,
    weight_histograms,
)
from recipes.runs import save_figure, write_json

__all__ = ["Config", "load_data", "load_keras_model", "main", "run"]

NAME = "diagnose"


@dataclass(frozen=True)
class Config:
    """What to diagnose, on which data."""

    model: str = field(default="", metadata={"help": "the .keras model file (required)"})
    data: str = field(default="mnist", metadata={"help": "the data set",
                                                 "choices": ("mnist", "fish")})
    data_dir: str | None = field(default=None,
                                 metadata={"help": "the fish photo folder (--data fish)"})
    probe_steps: int = field(default=0, metadata={
        "help": "training steps of the learning-rate probe on a copy of the model (0: none)"})
    samples: int = field(default=1000,
                         metadata={"help": "training and validation examples to examine"})
    history: str | None = field(default=None, metadata={
        "help": "a history CSV of the model's training (train-validation gap over epochs)"})
    seed: int = field(default=42, metadata={"help": "seed of the samples and the probe"})
    quick: bool = field(default=False, metadata={"help": "at most 200 examples (tests)"})
    out_dir: str = field(default="runs", metadata={"help": "where run folders go"})

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("--model is required: the path of a .keras model file.")
        if self.samples < 10:
            raise ValueError(f"samples must be >= 10, got {self.samples}.")
        if self.probe_steps < 0:
            raise ValueError(f"probe_steps must be >= 0, got {self.probe_steps}.")
        if self.data == "fish" and not self.data_dir:
            raise ValueError("--data fish needs --data-dir DIR (a folder of fish photos).")


def load_keras_model(path: str | Path) -> keras.Model:
    """Load a saved Keras model, or raise a ValueError that says why it is not one.

    Args:
        path: a ``.keras`` (or legacy ``.h5``) file.

    Returns:
        The model (compiled when it was saved compiled).

    Raises:
        ValueError: the file is missing or is not a loadable Keras model.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10, "Saving and Restoring a Model".
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Model file '{path}' does not exist.")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ValueError(f"'{path}' is not a Keras model file: a .keras file is a zip archive "
                         "and this one is not. Give a file written by model.save('name.keras').")
    try:
        model = keras.models.load_model(path)
    except Exception as e:  # noqa: BLE001 - any failure means "not a model we can read"
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"'{path}' is not a Keras model file ({type(e).__name__}: {reason[:200]}). "
            "Give a file written by model.save('name.keras').") from None
    if not isinstance(model, keras.Model):
        raise ValueError(f"'{path}' holds a {type(model).__name__}, not a Keras model.")
    return model


def _raw_pixels(model: keras.Model) -> bool:
    for _, layer in leaf_layers(model):
        if isinstance(layer, keras.layers.Rescaling):
            return True
        if layer.weights:
            return False
    return False


def _fit_mnist(model: keras.Model, x: np.ndarray) -> np.ndarray:
    shape = tuple(model.inputs[0].shape[1:])
    if shape == (28, 28, 1):
        return x[..., None]
    if shape == (784,):
        return x.reshape(len(x), 784)
    return x


def _input_shape(model: keras.Model) -> tuple:
    inputs = model.inputs
    if len(inputs) != 1:
        raise ValueError(f"Model '{model.name}' has {len(inputs)} inputs; the diagnosis takes "
                         "single-input classifiers.")
    return tuple(inputs[0].shape[1:])


def load_data(config: Config, model: keras.Model) -> dict:
    """The training and validation samples, scaled by the pixel rule, with class info.

    Args:
        config: the run's `Config`.
        model: the loaded model (its input size and first layers decide the data's form).

    Returns:
        A dict with x, y, x_val, y_val, class_names, class_counts, scale ("0-1" or "raw").

    Raises:
        ValueError: the data do not fit the model (image size, channels, classes).
        FileNotFoundError: the fish folder does not exist.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10 (MNIST scaled to [0, 1]), ch. 14 (a
    Rescaling layer inside the model).
    """
    n = min(config.samples, 200) if config.quick else config.samples
    rng = np.random.default_rng(config.seed)
    raw = _raw_pixels(model)
    shape = _input_shape(model)
    if config.data == "mnist":
        if shape not in ((28, 28), (28, 28, 1), (784,)):
            raise ValueError(f"--data mnist gives 28x28 grey images, but model '{model.name}' "
                             f"takes inputs of shape {(None, *shape)}.")
        (x_tr, y_tr), (x_te, y_te) = load_mnist()
        i, j = rng.choice(len(x_tr), n, replace=False), rng.choice(len(x_te), n, replace=False)
        x, y, x_val, y_val = x_tr[i], y_tr[i], x_te[j], y_te[j]
        names, counts = [str(c) for c in range(10)], np.bincount(y_tr, minlength=10)
        x, x_val = _fit_mnist(model, x), _fit_mnist(model, x_val)
    else:
        if len(shape) != 3 or shape[-1] != 3 or None in shape:
            raise ValueError(f"--data fish gives (H, W, 3) colour photos, but model "
                             f"'{model.name}' takes inputs of shape {(None, *shape)}.")
        fish = load_fish(config.data_dir, image_size=shape[:2], seed=config.seed, shuffle=False)
        x, y = _sample(fish.train, n, rng)
        x_val, y_val = _sample(fish.validation.concatenate(fish.test), n, rng)
        names, counts = fish.class_names, fish.counts["train"].to_numpy()
    x = x.astype("float32") / (1.0 if raw else 255.0)
    x_val = x_val.astype("float32") / (1.0 if raw else 255.0)
    units = model.outputs[0].shape[-1]
    if units != len(names) and not (units == 1 and len(names) == 2):
        raise ValueError(f"Model '{model.name}' has {units} output units, but the {config.data} "
                         f"data have {len(names)} classes.")
    check_input_shape(model, x)
    return {"x": x, "y": y.astype("int64"), "x_val": x_val, "y_val": y_val.astype("int64"),
            "class_names": names, "class_counts": counts, "scale": "raw" if raw else "0-1"}


def _sample(dataset, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*[(bx.numpy(), by.numpy()) for bx, by in dataset])
    x, y = np.concatenate(xs), np.concatenate(ys)
    keep = rng.choice(len(x), min(n, len(x)), replace=False)  # shuffled: files sort by class
    return x[keep], y[keep]


def run(config: Config) -> Results:
    """Load the model and the data, examine, print the findings and write the report.

    Returns:
        The `Results` (``metrics["findings"]`` counts them, ``metrics["kinds"]`` lists them).

    Raises:
        ValueError: not a Keras model, or data that do not fit it.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11.
    """
    model = load_keras_model(config.model)
    data = load_data(config, model)
    history = pd.read_csv(config.history) if config.history else None
    run_dir, started = start(NAME, config)
    probe = min(config.probe_steps, 5) if config.quick else config.probe_steps
    exam = examine(model, data["x"], data["y"], data["x_val"], data["y_val"], history, probe,
                   class_names=data["class_names"], class_counts=data["class_counts"])
    for finding in exam.findings:
        print(f"\n{finding}")
    if not exam.findings:
        print("\nNo findings: gradients, activations, weights, classes and the "
              "train-validation gap look healthy.")
    figures = _figures(run_dir, model, data, exam)
    for name, frame in (("gradients", exam.gradients), ("activations", exam.activations),
                        ("weights", exam.weights), ("classes", exam.classes),
                        ("probe", exam.probe)):
        if frame is not None:
            frame.to_csv(run_dir / f"{name}.csv", index=False)
    write_json(run_dir / "findings.json", exam.findings)
    notes = ([f"{f.severity.upper()} {f.kind}: {f.message}" for f in exam.findings]
             or ["No findings: nothing in this run points at a training problem."])
    sections = [(f"{f.kind} ({f.severity})", _section(f)) for f in exam.findings]
    sections += _measurements(exam)
    table = (exam.classes.drop(columns="index").round(4) if exam.classes is not None
             else pd.DataFrame())
    return finish(NAME, config, run_dir, started, table, title=f"Diagnosis of {config.model}",
                  intro=_intro(config, model, data, exam), figures=figures, notes=notes,
                  sections=sections, metrics={"findings": len(exam.findings),
                                              "kinds": [f.kind for f in exam.findings],
                                              **exam.scores})


def _section(finding: Finding) -> str:
    lines = [finding.message, "", "Evidence:", ""]
    lines += [f"- {line}" for line in finding.evidence_lines()]
    return "\n".join(lines + ["", f"Remedy: {finding.remedy}"])


def _markdown(frame: pd.DataFrame) -> str:
    def cell(v) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    rows = [" | ".join(cell(v) for v in row) for row in frame.itertuples(index=False)]
    return "\n".join([" | ".join(frame.columns), " | ".join("---" for _ in frame.columns),
                      *rows])


def _measurements(exam: Examination) -> list[tuple[str, str]]:
    out = []
    if exam.gradients is not None:
        grads = exam.gradients[["layer", "shape", "grad_norm", "weight_norm", "ratio"]]
        out.append(("Gradients per layer (one batch)", _markdown(grads)))
    if exam.activations is not None:
        acts = exam.activations[["layer", "kind", "units", "mean", "std", "frac_zero",
                                 "dead_fraction", "saturated_fraction"]]
        out.append(("Activations per layer", _markdown(acts)))
    return out


def _intro(config: Config, model: keras.Model, data: dict, exam: Examination) -> str:
    s = exam.scores
    val = (f", validation sample accuracy {s['val_accuracy']:.4f} (loss {s['val_loss']:.4g})"
           if "val_accuracy" in s else "")
    scale = ("raw 0-255 (the model starts with Rescaling)" if data["scale"] == "raw"
             else "scaled to [0, 1]")
    probe = f"{len(exam.probe) - 1} steps on a copy" if exam.probe is not None else "off"
    return (f"Model `{config.model}` ({model.name}, {model.count_params():,} parameters, "
            f"input {tuple(model.inputs[0].shape)}), data `{config.data}`: {len(data['x'])} "
            f"training and {len(data['x_val'])} validation examples, pixels {scale}. Training "
            f"sample accuracy {s['train_accuracy']:.4f} (loss {s['train_loss']:.4g}){val}. "
            f"Learning-rate probe: {probe}.")


def _figures(run_dir: Path, model: keras.Model, data: dict, exam: Examination) -> list:
    figures = []

    def save(fig, name: str, caption: str) -> None:
        save_figure(fig, run_dir / name)
        figures.append((caption, name))

    if exam.gradients is not None:
        save(gradient_flow(exam.gradients), "gradient_flow.png",
             "Gradient norm per layer (one batch), input to output")
    if exam.activations is not None:
        outs = layer_outputs(model, data["x"][:256])
        save(activation_histograms(outs), "activation_histograms.png",
             "Activations per layer (log counts)")
    save(weight_histograms(model), "weight_histograms.png", "Kernel weights per layer")
    if exam.classes is not None:
        save(confusion_heatmap(exam.confusion), "confusion_matrix.png",
             "Confusion matrix of the validation sample")
        probs = model.predict(data["x_val"], verbose=0)
        save(roc_plot(roc_curves(data["y_val"], probs, data["class_names"]), exam.classes),
             "roc_curves.png", "Per-class ROC curves (one vs rest)")
    if len(model.inputs[0].shape) >= 3 and exam.classes is not None:
        images = data["x_val"][:8]
        maps = saliency_map(model, images, smoothgrad_samples=10)
        pred = model.predict(images, verbose=0).argmax(axis=-1)
        names = [n if len(n) <= 16 else n.split()[-1][:16] for n in data["class_names"]]
        labels = [f"true {names[t]}\npred {names[p]}" for t, p in zip(data["y_val"][:8], pred)]
        save(saliency_grid(images, maps, labels=labels, title="SmoothGrad saliency"),
             "saliency.png", "Saliency maps (SmoothGrad) of validation images")
    if exam.probe is not None:
        save(_probe_figure(exam.probe), "probe.png", "Learning-rate probe on a copy")
    return figures


def _probe_figure(probe: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    rate = probe.attrs.get("learning_rate")
    label = f"rate {rate:g}" if rate else "the model's schedule"
    ax.plot(probe["step"], probe["loss"], marker=".", label=label)
    for column in (c for c in probe.columns if c.startswith("loss_x")):
        if np.isfinite(probe[column]).any():
            ax.plot(probe["step"], probe[column], marker=".", label=f"{column[5:]} the rate")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (fixed batch)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m ch11.diagnose --model PATH.keras --data mnist|fish [...]``.

    Returns:
        0 without findings, 1 with findings, 2 on bad input (a message on stderr).
    """
    done: list[Results] = []

    def run_and_keep(config: Config) -> Results:
        done.append(run(config))
        return done[-1]

    run_and_keep.__module__ = "ch11.diagnose"
    try:
        cli(Config, run_and_keep, argv, __doc__)
    except (ValueError, OSError, MnistUnavailableError) as e:
        print(f"python -m ch11.diagnose: error: {e}", file=sys.stderr)
        return 2
    return 1 if done and done[-1].metrics["findings"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
