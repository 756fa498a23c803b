"""The fish classifier's report: per-class metrics, figures, the doctor's findings, notes.

Reference: Géron, Hands-On ML (3rd ed.), ch. 3 (per-class metrics, ROC) and ch. 11.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ch11._evidence import BookFigure, Evidence, seed_summary
from ch11._fish import PHOTOS, FishSplits, Trained, confusion_pairs, test_confusion
from recipes.diagnosis.doctor import diagnose
from recipes.diagnosis.saliency import saliency_map
from recipes.metrics import positive_ranks, roc_auc_per_class, roc_curves
from recipes.plots import (
    confusion_heatmap,
    image_rows,
    learning_curves,
    lr_finder_plot,
    roc_plot,
    saliency_grid,
)
from recipes.runs import markdown_table, save_figure

__all__ = ["BOOK", "PUBLISHED_ACCURACY", "agreement", "diagnose_model", "evidence",
           "figures_and_sections", "intro", "notes", "rare_classes", "rare_metrics",
           "rare_ranking"]

PUBLISHED_ACCURACY = 0.992  # a published PyTorch custom CNN on the same course set (224x224, GPU)
BOOK = BookFigure(
    claim="a CNN trained from scratch with the chapter's techniques (He init, batch norm, "
          "1cycle, augmentation, early stopping) classifies the 11 species",
    figure=None,
    setting=f"the book has no fish photos; the reference is a published PyTorch custom CNN on "
            f"the same course set: {PUBLISHED_ACCURACY:.1%} test accuracy at 224x224 on a GPU",
    dataset=PHOTOS)


def rare_classes(counts: pd.DataFrame) -> list[str]:
    """Classes with fewer than half the median's training photos (at least the smallest)."""
    train = counts["train"]
    rare = list(train[train < 0.5 * train.median()].index)
    return rare or [str(train.idxmin())]


def diagnose_model(m: Trained, data: FishSplits) -> None:
    """The training doctor on the trained model (validation split), its findings in place."""
    x, y = data.x["train"], data.y["train"]
    pick = np.random.default_rng(0).choice(len(y), min(256, len(y)), replace=False)
    counts = np.bincount(y, minlength=len(data.class_names))
    try:
        found = diagnose(m.model, x[pick], y[pick], data.x["validation"], data.y["validation"],
                         history=m.history, class_names=data.class_names,
                         class_counts=counts, batch_size=64)
        m.findings = [str(f) for f in found]
    except Exception as e:  # noqa: BLE001 - a report without findings beats no report
        m.findings = [f"(the doctor could not run: {type(e).__name__}: {e})"]


def rare_metrics(m: Trained, data: FishSplits) -> dict[str, float]:
    """The rare classes' test recall, precision and AUC, for results.json."""
    rep = m.report.set_index("class")
    out = {}
    for c in rare_classes(data.counts):
        key = c.replace(" ", "_")
        for col in ("recall", "precision", "auc"):
            out[f"{key}_{col}"] = float(rep.loc[c, col])
    return out


def _short(name: str, n: int = 17) -> str:
    name = name.replace("fish sea_food ", "")
    return name if len(name) <= n else "..." + name[-(n - 3):]


def _saliency(run_dir: Path, best: Trained, data: FishSplits, per: int) -> list:
    names, y = data.class_names, data.y["test"]
    picks = [i for c in range(len(names)) for i in np.flatnonzero(y == c)[:per]]
    if not picks or per == 0:
        return []
    x = data.x["test"][picks].astype("float32")
    maps = saliency_map(best.model, x, smoothgrad_samples=10)
    pred = best.probs["test"][picks].argmax(1)
    labels = [f"{_short(names[y[i]])}\n-> {_short(names[p])}" for i, p in zip(picks, pred)]
    figs = []
    for start in range(0, len(picks), 8):
        fig = saliency_grid(x[start:start + 8], maps[start:start + 8],
                            labels=labels[start:start + 8],
                            title=f"SmoothGrad saliency of the {best.name} (true -> predicted)")
        name = f"saliency_{start // 8 + 1}.png"
        save_figure(fig, run_dir / name)
        figs.append((f"Saliency maps {start // 8 + 1}", name))
    return figs


def _per_class(m: Trained, data: FishSplits) -> pd.DataFrame:
    rep = m.report.drop(columns=["index"]).copy()
    rep.insert(1, "train_photos", [int(data.counts.loc[c, "train"]) for c in rep["class"]])
    return rep


def _compare_rows(compare: list[Trained], data: FishSplits) -> pd.DataFrame:
    rows = []
    for m in compare:
        rep = m.report.set_index("class")
        for c in rare_classes(data.counts):
            rows.append({"remedy": m.remedy, "class": c,
                         "train_photos": int(data.counts.loc[c, "train"]),
                         "test_photos": int(data.counts.loc[c, "test"]),
                         "recall": rep.loc[c, "recall"], "precision": rep.loc[c, "precision"],
                         "auc": rep.loc[c, "auc"], "test_acc": m.accuracy["test"],
                         "macro_auc": m.macro_auc})
    return pd.DataFrame(rows)


def figures_and_sections(run_dir: Path, data: FishSplits, models: list[Trained], best: Trained,
                         config: Any, timing: dict, compare: list[Trained]) -> tuple[list, list]:
    """Every figure and report section."""
    names = data.class_names
    figures = []
    for m in models:
        save_figure(learning_curves({m.name: m.history}), run_dir / f"{m.name}_curves.png")
        figures.append((f"Learning curves: {m.name}", f"{m.name}_curves.png"))
        if m.lr_table is not None:
            save_figure(lr_finder_plot(m.lr_table, m.max_lr), run_dir / f"{m.name}_lr_range.png")
            figures.append((f"LR range test: {m.name} (the dotted line: the 1cycle peak)",
                            f"{m.name}_lr_range.png"))
    matrix = test_confusion(best, data)
    short = [_short(n, 22) for n in names]
    shown = matrix.copy()
    shown.index, shown.columns = short, short
    save_figure(confusion_heatmap(shown, title=f"Confusion matrix ({best.name}, test)"),
                run_dir / "confusion.png")
    curves = roc_curves(data.y["test"], best.probs["test"], short)
    aucs = roc_auc_per_class(data.y["test"], best.probs["test"], short)
    save_figure(roc_plot(curves, aucs, title=f"ROC one-vs-rest ({best.name}, test)"),
                run_dir / "roc.png")
    figures += [("Confusion matrix (test)", "confusion.png"), ("ROC curves (test)", "roc.png")]
    ranked, ranking_sections = rare_ranking(run_dir, best, data)
    figures += ranked + _saliency(run_dir, best, data, config.saliency_per_class)
    counts = data.counts.copy()
    counts.loc["TOTAL"] = counts.sum()
    where = "\n".join(f"- {split}: {text}" for split, text in data.sources.items())
    sections = [("Data", f"{where}\n\n" + markdown_table(counts.reset_index()))]
    sections.append(("Input speed", (
        f"Photos decoded and resized at {timing['photos_decoded_per_s']:,.0f} per second "
        if not timing["photos_from_cache"] else "Photos read back from the disk cache ")
        + f"({timing['load_s']:.1f} s for all splits); the first training step ended "
          f"{timing['first_step_s']:.1f} s after the run started (load, build, LR range test "
          f"and tracing included); training ran at {timing['train_photos_per_s']:,.0f} "
          "photos/s through `recipes.make_dataset` with the augmentation inside the model ("
        + (", ".join(config.augmentations) or "none: --augmentation none") + ")."))
    for m in models:
        sections.append((f"Per-class test metrics: {m.name}", markdown_table(_per_class(m, data))))
        pairs = confusion_pairs(test_confusion(m, data))
        sections.append((f"Most frequent mistakes: {m.name}", "\n".join(
            f"- {t} -> {p}: {n} photo(s)" for t, p, n in pairs) or "None."))
    sections += ranking_sections
    for m in models:
        text = "\n\n".join(f"```\n{f}\n```" for f in m.findings) or "No problem found."
        sections.append((f"The training doctor: {m.name}", text))
    if len(compare) > 1:
        sections.append(("Imbalance comparison (CNN, rare classes, test split, one seed)",
                         markdown_table(_compare_rows(compare, data)) +
                         "\n\n`make recipe-fish-imbalance` runs the full study over seeds."))
    for m in models:
        sections.append((f"How the {m.name} was trained", m.lr_note))
    sections.append(("Predict", "`python -m ch11.fish predict --model "
                     f"{run_dir / 'best.keras'} PHOTO.jpg [FOLDER ...] [--mc-samples 30]` prints "
                     "the top-3 species per photo (a folder of photos writes a CSV); the class "
                     "names are read from `best.classes.json` next to the model."))
    return figures, sections


def intro(config: Any, data: FishSplits, best: Trained, policy: str, timing: dict) -> str:
    """The report's first paragraph."""
    k = len(data.class_names)
    return (f"{k} classes, {len(data.y['train']):,} training / {len(data.y['validation']):,} "
            f"validation / {len(data.y['test']):,} test photos at {config.image_size}x"
            f"{config.image_size}; dtype policy {policy}. The CNN from scratch trained for "
            f"{timing['cnn_train_s']:.0f} s. Best model (validation accuracy): "
            f"**{best.name}**, saved as `best.keras` with its class names in "
            "`best.classes.json`.")


def notes(models: list[Trained], data: FishSplits, config: Any,
          compare: list[Trained]) -> list[str]:
    """What the run measured, computed from the numbers; the first model's line first.

    The first note is the run's headline (the README's results table quotes it); where the
    test photos came from and any photo shared by two splits follow the models' lines.
    """
    out = []
    rare = rare_classes(data.counts)
    for m in models:
        rep = m.report.set_index("class")
        others = rep.drop(index=rare)["auc"]
        rare_txt = ", ".join(f"{c} (train {int(data.counts.loc[c, 'train'])}, test "
                             f"{int(data.counts.loc[c, 'test'])}: recall "
                             f"{rep.loc[c, 'recall']:.2f}, AUC {rep.loc[c, 'auc']:.3f})"
                             for c in rare)
        gap = m.accuracy["train"] - m.accuracy["validation"]
        out.append(f"{m.name}: test accuracy {m.accuracy['test']:.4f}, macro AUC "
                   f"{m.macro_auc:.4f}; rare class(es) {rare_txt} vs a median AUC of "
                   f"{np.nanmedian(others):.4f} for the others; train-validation gap "
                   f"{gap:+.3f}" + (" (overfitting)" if gap > 0.1 else "") + ".")
        named = [c for c in rare if any(f"'{c}'" in f for f in m.findings)]
        if named:
            out.append(f"The training doctor names the rare class(es) {', '.join(named)} as "
                       "lagging (see its findings).")
    if "held out" in data.sources["test"]:
        out.append(f"The test split is {data.sources['test']}: give --test-dir DIR for a "
                   "separate test folder.")
    if data.duplicates:
        out.append(f"{len(data.duplicates)} photo(s) appear in two splits (same bytes): the "
                   "test figures are optimistic by that much.")
    few = [f"{c} ({int(data.counts.loc[c, 'test'])})" for c in rare
           if data.counts.loc[c, "test"] < 10]
    if few:
        out.append(f"Rare class(es) with fewer than 10 test photos: {', '.join(few)}: one photo "
                   "moves their recall by 0.1 or more; `make recipe-fish-imbalance` gives the "
                   "spread over seeds.")
    if config.backbone != "none" and config.weights.lower() == "none":
        out.append("The transfer model had NO pretrained weights (--weights none): its "
                   "backbone was trained from scratch, so this is not transfer learning.")
    for m in compare[1:]:
        base = compare[0].report.set_index("class")
        rep = m.report.set_index("class")
        deltas = ", ".join(f"{c}: recall {base.loc[c, 'recall']:.2f} -> {rep.loc[c, 'recall']:.2f}"
                           f", AUC {base.loc[c, 'auc']:.3f} -> {rep.loc[c, 'auc']:.3f}"
                           for c in rare)
        out.append(f"{m.remedy} vs {compare[0].remedy} (CNN, one seed): {deltas}; test "
                   f"accuracy {compare[0].accuracy['test']:.4f} -> {m.accuracy['test']:.4f}.")
    return out


def agreement(model: Trained, n_test: int, image_size: int) -> str:
    """One line: our test accuracy beside the published PyTorch CNN's, with its standard error.

    Args:
        model: the evaluated CNN.
        n_test: the number of test photos.
        image_size: the photos' side in pixels here.

    Returns:
        The sentence.
    """
    acc = model.accuracy["test"]
    se = float(np.sqrt(max(acc * (1 - acc), 1e-12) / max(n_test, 1)))
    gap = acc - PUBLISHED_ACCURACY
    verdict = ("within noise of it" if abs(gap) <= 2 * se else
               "above it" if gap > 0 else "below it, beyond noise")
    return (f"the book gives no figure; beside the published PyTorch CNN's "
            f"{PUBLISHED_ACCURACY:.1%}: ours {acc:.4f} on {n_test:,} test photos "
            f"({gap:+.4f}, binomial standard error {se:.4f}: {verdict}), at "
            f"{image_size}x{image_size} on a CPU instead of 224x224 on a GPU.")


def evidence(models: list[Trained], table: pd.DataFrame, headline: str, n_test: int,
             config: Any) -> Evidence:
    """The headline (one seed) and the published figure beside it.

    Args:
        models: the trained models, the CNN first.
        table: one row per model (`Trained.row`).
        headline: the report's first note.
        n_test: the number of test photos.
        config: the run's settings.

    Returns:
        The `Evidence` (results.json's ``evidence`` entry, the README table's row).
    """
    columns = ("test_acc", "macro_auc")
    return Evidence(headline, (config.seed,), seed_summary(table, "model", columns), columns,
                    BOOK, agreement(models[0], n_test, config.image_size),
                    "one training run of about 5 minutes; `make recipe-fish-imbalance` has "
                    "the spread over seeds", data=PHOTOS)


def rare_ranking(run_dir: Path, m: Trained, data: FishSplits,
                 top: int = 8) -> tuple[list, list]:
    """Where each rare class's test photos rank on that class's score: a figure and a table.

    A class's one-vs-rest AUC is one minus the other photos scored above its photos, summed
    over its photos, per pair (`recipes.metrics.positive_ranks`): with five test photos one
    photo ranked far down costs more AUC than four ranked a little low. The figure shows the
    class's photos (the `top` that cost most, highest score first) above the other photos
    the model scores highest for the class, so a reader sees what it is mistaken for.

    Args:
        run_dir: the run folder (``rare_ranking_<i>.png`` is written there).
        m: the evaluated model.
        data: the `FishSplits`.
        top: photos per row of the figure. Defaults to `8`.

    Returns:
        ``(figures, sections)`` for the report, one of each per rare class with test photos.
    """
    names, y, probs = data.class_names, data.y["test"], m.probs["test"]
    figures, sections = [], []
    for j, c in enumerate(rare_classes(data.counts), 1):
        idx = names.index(c)
        ranks = positive_ranks(y, probs, idx, names)
        if ranks.empty:
            continue
        negatives = np.flatnonzero(y != idx)
        by_score = negatives[np.argsort(-probs[negatives, idx], kind="stable")]
        shown = (ranks if len(ranks) <= top else
                 ranks.nlargest(top, "negatives_above").sort_values("score", ascending=False))
        rows = {f"'{c}' test photos (score, other photos above, predicted)": (
                    data.x["test"][shown["row"].to_numpy()],
                    [f"p={r.score:.2f}, {r.negatives_above:g} above\n-> {_short(r.predicted)}"
                     for r in shown.itertuples()]),
                f"the other test photos scored highest for '{c}'": (
                    data.x["test"][by_score[:top]],
                    [f"{_short(names[y[i]])}\np={probs[i, idx]:.2f}" for i in by_score[:top]])}
        name = f"rare_ranking_{j}.png"
        save_figure(image_rows(rows, max_images=top,
                               title=f"Where '{c}' ranks ({m.name}, test)"), run_dir / name)
        figures.append((f"Where '{c}' ranks ({m.name}, test)", name))
        above = ranks["negatives_above"].to_numpy()
        n_neg = ranks.attrs["negatives"]
        costly = np.sort(above)[::-1]
        share = costly.cumsum() / above.sum() if above.sum() else np.ones(len(above))
        k = int(np.searchsorted(share, 0.8) + 1)
        nearest = pd.Series([names[y[i]] for i in by_score[:20]]).value_counts()
        table = pd.DataFrame({"photo": [data.files["test"][r].name for r in ranks["row"]],
                              "score": ranks["score"], "predicted": ranks["predicted"],
                              "other photos above": ranks["negatives_above"]})
        text = (f"AUC {ranks.attrs['auc']:.4f} = 1 - {above.sum():g} / ({len(ranks)} x "
                f"{n_neg:,}): the other test photos scored above each '{c}' photo, summed, "
                "per pair. " + (
                    f"{k} of its {len(ranks)} photos account for {share[k - 1]:.0%} of those "
                    "pairs. " if above.sum() else "No other photo ranks above any of them. ")
                + f"The 20 other photos scored highest for '{c}': "
                + ", ".join(f"{n} '{cls}'" for cls, n in nearest.items()) + ".\n\n"
                + markdown_table(table))
        sections.append((f"Where '{c}' ranks ({m.name}, test)", text))
    return figures, sections
