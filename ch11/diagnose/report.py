"""The training doctor's report: findings, measurements, figures and intro."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd

from ch11.diagnose.config import Config
from recipes.diagnosis.doctor import Examination, Finding
from recipes.diagnosis.measures import layer_outputs, saliency_map
from recipes.metrics import roc_curves
from recipes.plots import (
    activation_histograms,
    confusion_heatmap,
    gradient_flow,
    roc_plot,
    saliency_grid,
    weight_histograms,
)
from recipes.runs import save_figure

__all__ = ["figures", "intro", "notes", "sections"]


def notes(exam: Examination) -> list[str]:
    """The report's notes: one line per finding, or that there is none.

    Args:
        exam: the doctor's `Examination`.

    Returns:
        The notes.
    """
    return ([f"{f.severity.upper()} {f.kind}: {f.message}" for f in exam.findings]
            or ["No findings: nothing in this run points at a training problem."])


def sections(exam: Examination) -> list[tuple[str, str]]:
    """The report's sections: each finding with its evidence and remedy, then the measures.

    Args:
        exam: the doctor's `Examination`.

    Returns:
        (title, markdown) pairs.
    """
    return ([(f"{f.kind} ({f.severity})", _section(f)) for f in exam.findings]
            + _measurements(exam))


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


def intro(config: Config, model: keras.Model, data: dict, exam: Examination) -> str:
    """The report's first paragraph: the model, the samples, the pixel scale, the scores.

    Args:
        config: what was diagnosed, on which data.
        model: the loaded model.
        data: `load_data`'s samples.
        exam: the doctor's `Examination`.

    Returns:
        The paragraph.
    """
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


def figures(run_dir: Path, model: keras.Model, data: dict, exam: Examination) -> list:
    """Draw what the examination measured: gradient flow, histograms, classes, saliency, probe.

    Args:
        run_dir: the run folder.
        model: the loaded model.
        data: `load_data`'s samples.
        exam: the doctor's `Examination`.

    Returns:
        The report's (caption, file) pairs.
    """
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
