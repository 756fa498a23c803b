"""Diagnostic plots: gradient flow, histograms per layer, saliency, confusion, ROC curves,
rows of captioned images.

Each function returns a matplotlib ``Figure`` (nothing is shown or saved here); they are
re-exported by `recipes.plots`. They draw the tables of `recipes.diagnosis.measures` and
`recipes.metrics`.

Example:

```python
fig = gradient_flow(gradient_norms(model, x, y))
save_figure(fig, run_dir / "gradient_flow.png")
```
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["activation_histograms", "confusion_heatmap", "gradient_flow", "image_rows",
           "roc_plot", "saliency_grid", "weight_histograms"]


def gradient_flow(grads: pd.DataFrame | Mapping[str, pd.DataFrame], value: str = "grad_norm", *,
                  title: str | None = None) -> Figure:
    """Gradient norm per layer, input to output, on a log scale (one line per model).

    Args:
        grads: a `gradient_norms` table, or name -> table to compare models.
        value: the column to draw: ``"grad_norm"`` or ``"ratio"`` (gradient / weight norm).
        title: the figure's title.

    Returns:
        The figure.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "The Vanishing/Exploding Gradients
    Problems".
    """
    frames = {"": grads} if isinstance(grads, pd.DataFrame) else dict(grads)
    longest = max(frames.values(), key=len)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(longest) + 2), 4))
    for name, frame in frames.items():
        values = np.abs(frame[value].to_numpy(dtype=float))
        ax.plot(frame["depth"], np.where(values > 0, values, np.nan), marker="o",
                label=name or None)
    ax.set_yscale("log")
    ax.set_xticks(longest["depth"], longest["layer"], rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("layer (input -> output)")
    ax.set_ylabel("gradient norm" if value == "grad_norm" else value)
    ax.grid(alpha=0.3, which="both")
    if len(frames) > 1:
        ax.legend(fontsize=8)
    ax.set_title(title or "Gradient flow (one batch)")
    fig.tight_layout()
    return fig


def _histogram_grid(arrays: Mapping[str, Any], bins: int, max_panels: int, title: str,
                    xlabel: str) -> Figure:
    if not arrays:
        raise ValueError("Nothing to draw: got no layer.")
    names = list(arrays)[:max_panels]
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, name in zip(axes.flat, names):
        values = np.asarray(arrays[name], dtype="float64").ravel()
        finite = values[np.isfinite(values)]
        if finite.size > 200_000:
            finite = rng.choice(finite, 200_000, replace=False)
        ax.hist(finite, bins=bins, color="tab:blue", alpha=0.8)
        ax.set_yscale("log")
        zeros = float(np.mean(finite == 0)) if finite.size else float("nan")
        bad = values.size - np.isfinite(values).sum()
        note = f"zeros {zeros:.0%}" + (f", {bad} NaN/Inf" if bad else "")
        ax.set_title(f"{name}\n{note}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel(xlabel, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def activation_histograms(activations: Mapping[str, Any], *, bins: int = 50,
                          max_layers: int = 16, title: str | None = None) -> Figure:
    """One histogram (log counts) of each layer's outputs, with its fraction of zeros.

    Args:
        activations: layer name -> outputs, e.g. `recipes.diagnosis.measures.layer_outputs`.
        bins: histogram bins. Defaults to `50`.
        max_layers: at most this many panels (the first layers). Defaults to `16`.
        title: the figure's title.

    Returns:
        The figure.

    Raises:
        ValueError: `activations` is empty.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, figure 11-1 (saturation) and "Dying
    ReLUs".
    """
    return _histogram_grid(activations, bins, max_layers, title or "Activations per layer",
                           "output value")


def weight_histograms(weights: Any, *, bins: int = 50, max_layers: int = 16,
                      title: str | None = None) -> Figure:
    """One histogram (log counts) of each layer's kernel.

    Args:
        weights: a Keras model (its trainable kernels are drawn) or name -> array.
        bins: histogram bins. Defaults to `50`.
        max_layers: at most this many panels. Defaults to `16`.
        title: the figure's title.

    Returns:
        The figure.

    Raises:
        ValueError: nothing to draw.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Glorot and He Initialization".
    """
    if not isinstance(weights, Mapping):
        from recipes.diagnosis.probing import kernels

        weights = {name: np.asarray(v.numpy()) for name, v in kernels(weights)}
    return _histogram_grid(weights, bins, max_layers, title or "Kernel weights per layer",
                           "weight")


def _as_image(a: np.ndarray) -> np.ndarray:
    if a.ndim == 1:  # a flat image: square it when possible
        side = int(round(np.sqrt(a.size)))
        a = a.reshape(side, side) if side * side == a.size else a[None, :]
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    return a


def _stretched(a: Any) -> np.ndarray:
    """One image for ``imshow``: squared if flat, one channel dropped, min-max to [0, 1]."""
    img = _as_image(np.asarray(a, dtype="float64"))
    span = img.max() - img.min()
    return (img - img.min()) / span if span > 0 else np.zeros_like(img)


def saliency_grid(images: Any, maps: Any, *, labels: Sequence[Any] | None = None,
                  max_images: int = 8, title: str | None = None) -> Figure:
    """Images (top row) and their saliency maps (bottom row, max over channels).

    Args:
        images: a batch ``(N, H, W[, C])`` (or flat square images ``(N, H*W)``).
        maps: `recipes.diagnosis.saliency.saliency_map` output, the images' shape.
        labels: one caption per image (class names, "true/predicted" ...).
        max_images: at most this many columns. Defaults to `8`.
        title: the figure's title.

    Returns:
        The figure.

    Raises:
        ValueError: images and maps differ in shape.

    Reference: Simonyan et al. (2013); Smilkov et al. (2017).
    """
    images, maps = np.asarray(images, dtype="float64"), np.asarray(maps, dtype="float64")
    if images.shape != maps.shape:
        raise ValueError(f"images {images.shape} and maps {maps.shape} differ in shape.")
    n = min(len(images), max_images)
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 4.0), squeeze=False)
    for i in range(n):
        img = _stretched(images[i])
        axes[0, i].imshow(img, cmap="gray" if img.ndim == 2 else None)
        sal = _as_image(maps[i])
        sal = sal.max(axis=-1) if sal.ndim == 3 else sal
        axes[1, i].imshow(sal, cmap="hot")
        if labels is not None:
            axes[0, i].set_title(str(labels[i]), fontsize=8)
        for ax in axes[:, i]:
            ax.axis("off")
    fig.suptitle(title or "Saliency: |d class score / d pixel|")
    fig.tight_layout()
    return fig


def image_rows(rows: Mapping[str, tuple[Any, Sequence[str]]], *, max_images: int = 8,
               title: str | None = None) -> Figure:
    """Rows of images, a caption above each: e.g. a class's test photos, highest score
    first, above the other classes' photos the model scores highest for that class.

    Args:
        rows: row title -> ``(images, captions)``: images ``(N, H, W[, C])`` or flat square
            ``(N, H*W)`` (uint8 or floats in any range: each image is stretched to its own
            min and max, as in `saliency_grid`), one caption per image. A row with no
            images is drawn as its title and "none".
        max_images: at most this many images per row. Defaults to `8`.
        title: the figure's title.

    Returns:
        The figure.

    Raises:
        ValueError: no rows, or a row whose captions and images differ in number.
    """
    if not rows:
        raise ValueError("image_rows needs at least one row.")
    for name, (images, captions) in rows.items():
        if len(images) != len(captions):
            raise ValueError(f"Row {name!r} has {len(images)} images and {len(captions)} "
                             "captions.")
    n = max(1, min(max_images, max(len(images) for images, _ in rows.values())))
    fig = plt.figure(figsize=(1.9 * n, 2.6 * len(rows) + (0.4 if title else 0.0)),
                     layout="constrained")
    for sub, (name, (images, captions)) in zip(fig.subfigures(len(rows), 1, squeeze=False)[:, 0],
                                               rows.items()):
        sub.suptitle(name if len(images) else f"{name}: none", x=0.01, ha="left",
                     fontsize=9, fontweight="bold")
        for i, ax in enumerate(sub.subplots(1, n, squeeze=False)[0]):
            ax.axis("off")
            if i >= min(len(images), max_images):
                continue
            img = _stretched(images[i])
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            ax.set_title(str(captions[i]), fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def confusion_heatmap(matrix: pd.DataFrame, *, normalize: bool = True,
                      title: str | None = None) -> Figure:
    """A confusion matrix as a heat map: colours by row share, counts written in the cells.

    Args:
        matrix: `recipes.metrics.confusion_matrix` output (counts).
        normalize: colour by the share of each true class (row), so small classes show.
            Defaults to `True`.
        title: the figure's title.

    Returns:
        The figure.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3, "Error Analysis".
    """
    counts = matrix.to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        shown = counts / counts.sum(axis=1, keepdims=True) if normalize else counts
    k = len(counts)
    size = max(4.0, 0.5 * k + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(np.nan_to_num(shown), cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, label="share of the true class" if normalize else "count")
    if k <= 25:
        top = np.nanmax(shown) if np.isfinite(shown).any() else 1.0
        for (i, j), c in np.ndenumerate(counts):
            if c:
                ax.text(j, i, f"{c:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > 0.6 * top else "black")
    names = [str(c) for c in matrix.columns]
    ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), [str(c) for c in matrix.index], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "Confusion matrix")
    fig.tight_layout()
    return fig


def roc_plot(curves: pd.DataFrame, aucs: pd.DataFrame | Mapping[str, float] | None = None, *,
             title: str | None = None) -> Figure:
    """One-vs-rest ROC curves, one per class, with the chance diagonal.

    Args:
        curves: `recipes.metrics.roc_curves` output.
        aucs: `roc_auc_per_class` output or class -> AUC, written in the legend.
        title: the figure's title.

    Returns:
        The figure.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3, "The ROC Curve".
    """
    if isinstance(aucs, pd.DataFrame):
        aucs = dict(zip(aucs["class"].astype(str), aucs["auc"]))
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    for name, part in curves.groupby("class", sort=False):
        label = str(name)
        if aucs and str(name) in aucs:
            label += f" (AUC {aucs[str(name)]:.3f})"
        ax.plot(part["fpr"], part["tpr"], label=label, lw=1.2)
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate (recall)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title or "ROC curves (one class vs the rest)")
    fig.tight_layout()
    return fig
