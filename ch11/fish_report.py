"""Evaluation and report of ``ch11.fish``: per-class metrics, figures, findings, notes.

Reference: Géron, Hands-On ML (3rd ed.), ch. 3 (per-class metrics, ROC) and ch. 11.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from recipes.builders import count_params
from recipes.diagnosis.doctor import diagnose
from recipes.diagnosis.saliency import saliency_map
from recipes.metrics import class_report, confusion_matrix, roc_auc_per_class, roc_curves
from recipes.plots import confusion_heatmap, learning_curves, roc_plot, saliency_grid
from recipes.runs import save_figure

__all__ = ["Trained", "evaluate", "figures_and_sections", "imbalance_rows", "markdown", "notes",
           "rare_classes"]


@dataclass
class Trained:
    """One trained model and what was measured on it."""

    name: str
    model: keras.Model
    history: dict[str, list]
    imbalance: str
    how: str
    probs: np.ndarray | None = None
    report: pd.DataFrame | None = None
    test_acc: float = float("nan")
    val_acc: float = float("nan")
    train_acc: float = float("nan")
    findings: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """One row of the report's main table."""
        params = count_params(self.model)
        times = self.history.get("epoch_time", [])
        return {"model": self.name, "imbalance": self.imbalance,
                "epochs": len(self.history.get("loss", [])), "train_acc": self.train_acc,
                "val_acc": self.val_acc, "test_acc": self.test_acc,
                "macro_auc": float(np.nanmean(self.report["auc"])),
                "min_class_recall": float(self.report["recall"].min()),
                "s_per_epoch": float(np.mean(times)) if times else float("nan"),
                "trainable": params["trainable"], "non_trainable": params["non_trainable"]}


def evaluate(m: Trained, arrays: dict, class_names: list[str]) -> None:
    """Accuracies, the per-class test report and the diagnostics' findings (in place)."""
    n = len(arrays["x_valid"])
    m.probs = m.model.predict(arrays["x_test"], verbose=0)
    m.test_acc = float(np.mean(m.probs.argmax(1) == arrays["y_test"]))
    m.val_acc = float(np.mean(m.model.predict(arrays["x_valid"], verbose=0).argmax(1)
                              == arrays["y_valid"]))
    m.train_acc = float(np.mean(m.model.predict(arrays["x_train"][:n], verbose=0).argmax(1)
                                == arrays["y_train"][:n]))
    m.report = class_report(arrays["y_test"], m.probs, class_names)
    counts = np.bincount(arrays["y_train"], minlength=len(class_names))
    try:
        found = diagnose(m.model, arrays["x_train"][:256], arrays["y_train"][:256],
                         arrays["x_valid"], arrays["y_valid"], history=m.history,
                         class_names=class_names, class_counts=counts, batch_size=64)
        m.findings = [str(f) for f in found]
    except Exception as e:  # noqa: BLE001 - a report without findings beats no report
        m.findings = [f"(diagnostics could not run: {type(e).__name__}: {e})"]


def markdown(table: pd.DataFrame) -> str:
    """A DataFrame as a markdown table (numbers to 3 decimals)."""
    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float | np.floating) else str(v).replace("|", "/")

    lines = ["| " + " | ".join(map(str, table.columns)) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines)


def rare_classes(counts: pd.DataFrame) -> list[str]:
    """Classes with fewer than half the median's images (at least the smallest class)."""
    total = counts["total"]
    rare = list(total[total < 0.5 * total.median()].index)
    return rare or [str(total.idxmin())]


def imbalance_rows(compare: list[Trained], data: Any) -> pd.DataFrame:
    """The rare classes' test recall and AUC under each loss, and the overall accuracy."""
    rows = []
    for m in compare:
        rep = m.report.set_index("class")
        for c in rare_classes(data.counts):
            rows.append({"imbalance": m.imbalance, "class": c,
                         "train_images": int(data.counts.loc[c, "train"]),
                         "test_images": int(data.counts.loc[c, "test"]),
                         "recall": rep.loc[c, "recall"], "auc": rep.loc[c, "auc"],
                         "test_acc": m.test_acc})
    return pd.DataFrame(rows).round(3)


def _short(name: str, n: int = 17) -> str:
    return name if len(name) <= n else "..." + name[-(n - 3):]


def _saliency(run_dir: Path, best: Trained, arrays: dict, names: list[str], per: int):
    picks = [i for c in range(len(names)) for i in np.flatnonzero(arrays["y_test"] == c)[:per]]
    if not picks or per == 0:
        return []
    x = arrays["x_test"][picks]
    maps = saliency_map(best.model, x, smoothgrad_samples=10)
    pred = best.probs[picks].argmax(1)
    labels = [f"{_short(names[arrays['y_test'][i]])}\n-> {_short(names[p])}"
              for i, p in zip(picks, pred)]
    figs = []
    for start in range(0, len(picks), 8):
        fig = saliency_grid(x[start:start + 8], maps[start:start + 8],
                            labels=labels[start:start + 8],
                            title=f"SmoothGrad saliency of the {best.name} (true -> predicted)")
        name = f"saliency_{start // 8 + 1}.png"
        save_figure(fig, run_dir / name)
        figs.append((f"Saliency maps {start // 8 + 1}", name))
    return figs


def figures_and_sections(run_dir: Path, data: Any, arrays: dict, models: list[Trained],
                         best: Trained, config: Any) -> tuple[list, list]:
    """Every figure and every report section but the imbalance comparison."""
    names = data.class_names
    figures = []
    for m in models:
        save_figure(learning_curves({m.name: m.history}), run_dir / f"{m.name}_curves.png")
        figures.append((f"Learning curves: {m.name}", f"{m.name}_curves.png"))
    matrix = confusion_matrix(arrays["y_test"], best.probs, names)
    save_figure(confusion_heatmap(matrix, title=f"Confusion matrix ({best.name}, test)"),
                run_dir / "confusion.png")
    curves = roc_curves(arrays["y_test"], best.probs, names)
    aucs = roc_auc_per_class(arrays["y_test"], best.probs, names)
    save_figure(roc_plot(curves, aucs, title=f"ROC one-vs-rest ({best.name}, test)"),
                run_dir / "roc.png")
    figures += [("Confusion matrix", "confusion.png"), ("ROC curves", "roc.png")]
    figures += _saliency(run_dir, best, arrays, names, config.saliency_per_class)
    counts = data.counts.copy()
    counts.loc["TOTAL"] = counts.sum()
    sections = [("Class counts per split", markdown(counts.reset_index()))]
    for m in models:
        rep = m.report.drop(columns=["index"]).copy()
        rep.insert(1, "train_images", [int(data.counts.loc[c, "train"]) for c in rep["class"]])
        sections.append((f"Per-class test metrics: {m.name}",
                         markdown(rep)))
    for m in models:
        text = "\n\n".join(f"```\n{f}\n```" for f in m.findings) or "No problem found."
        sections.append((f"Diagnostics: {m.name}", text))
    sections.append(("Transfer model training", models[-1].how))
    sections.append(("Predict", "`python -m ch11.fish predict --model "
                     f"{run_dir / 'best.keras'} PHOTO.jpg [--mc-samples 30]` prints the top-3 "
                     "species; the class names are read from `best.classes.json` next to it."))
    return figures, sections


def notes(models: list[Trained], compare: list[Trained], data: Any, config: Any) -> list[str]:
    """What the run measured, computed from the numbers."""
    out = []
    rare = rare_classes(data.counts)
    for m in models:
        rep = m.report.set_index("class")
        others = rep.drop(index=rare)["auc"]
        rare_txt = ", ".join(f"{c} (train {int(data.counts.loc[c, 'train'])}: recall "
                             f"{rep.loc[c, 'recall']:.2f}, AUC {rep.loc[c, 'auc']:.2f})"
                             for c in rare)
        gap = m.train_acc - m.val_acc
        out.append(f"{m.name}: test accuracy {m.test_acc:.3f}; rare class(es) {rare_txt} vs "
                   f"median AUC {np.nanmedian(others):.2f} for the others; train-validation "
                   f"gap {gap:+.3f}" + (" (overfitting)" if gap > 0.1 else "") + ".")
    few = [f"{c} ({int(data.counts.loc[c, 'test'])})" for c in rare
           if data.counts.loc[c, "test"] < 5]
    if few:
        out.append(f"Rare class(es) with fewer than 5 test photos: {', '.join(few)}; their "
                   "recall and AUC rest on so few photos that one photo changes them a lot: "
                   "read them with the confusion matrix, not as a precise measurement.")
    if config.weights.lower() == "none":
        out.append("The transfer model had NO pretrained weights (--weights none): its "
                   "backbone was trained from scratch, so this is not transfer learning.")
    if compare:
        base = {c: r for c, r in imbalance_rows(compare[:1], data).set_index("class")
                .iterrows()}
        for m in compare[1:]:
            rows = imbalance_rows([m], data).set_index("class")
            deltas = ", ".join(f"{c}: recall {base[c]['recall']:.2f} -> {rows.loc[c, 'recall']:.2f}"
                               f", AUC {base[c]['auc']:.2f} -> {rows.loc[c, 'auc']:.2f}"
                               for c in rows.index)
            out.append(f"{m.imbalance} vs none (CNN): {deltas}; test accuracy "
                       f"{compare[0].test_acc:.3f} -> {m.test_acc:.3f}.")
    return out
