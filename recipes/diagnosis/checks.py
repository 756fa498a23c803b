"""The checks behind `recipes.diagnosis.doctor.diagnose`: measurements in, `Finding`s out.

Each ``check_*`` reads the tables of `recipes.diagnosis.measures`, `recipes.metrics` and
`recipes.diagnosis.lr_probe` and returns a list of findings (empty when healthy). The
remedies are in `recipes.diagnosis.findings.REMEDIES`.

Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Training Deep Neural Networks".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from recipes.diagnosis.findings import Finding, Thresholds
from recipes.diagnosis.probing import SATURATING
from recipes.runs import read_history

__all__ = ["check_activations", "check_classes", "check_gradients",
           "check_non_finite", "check_overfitting", "check_probe"]

def _finding(kind: str, severity: str, message: str, evidence: dict) -> Finding:
    return Finding(kind, severity, message, evidence)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out


def check_non_finite(weights: pd.DataFrame, grads: pd.DataFrame | None,
                     activations: pd.DataFrame | None, predictions: np.ndarray) -> list[Finding]:
    """NaN/Inf in the weights, the loss, the gradients, the activations or the outputs.

    Args:
        weights: `weight_stats`.
        grads: `gradient_norms` (with ``attrs["loss"]``), or None.
        activations: `activation_stats`, or None.
        predictions: the model's outputs on the evaluated examples.

    Returns:
        One ``non_finite`` error, or nothing.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Gradient Clipping".
    """
    evidence: dict[str, Any] = {}
    bad_w = weights[weights["nonfinite"] > 0]
    if len(bad_w):
        evidence["weights_nonfinite"] = dict(zip(bad_w["variable"], bad_w["nonfinite"]))
    if grads is not None:
        loss = grads.attrs.get("loss", 0.0)
        if not np.isfinite(loss):
            evidence["loss"] = float(loss)
        bad_g = grads[~np.isfinite(grads["grad_norm"])]
        if len(bad_g):
            evidence["gradients_nonfinite"] = list(bad_g["layer"])
    if activations is not None:
        bad_a = activations[activations["nonfinite_fraction"] > 0]
        if len(bad_a):
            evidence["activations_nonfinite"] = dict(zip(bad_a["layer"],
                                                         bad_a["nonfinite_fraction"]))
    bad_p = int(np.sum(~np.isfinite(predictions)))
    if bad_p:
        evidence["predictions_nonfinite"] = bad_p
    if not evidence:
        return []
    where = ", ".join(k.replace("_nonfinite", "") for k in evidence)
    return [_finding("non_finite", "error",
                     f"NaN/Inf values in: {where}. Training has diverged (exploding gradients "
                     "or too high a learning rate) or the inputs are not finite.", evidence)]


def check_gradients(grads: pd.DataFrame | None, t: Thresholds) -> list[Finding]:
    """Vanishing or exploding gradients from the per-kernel relative gradients.

    Args:
        grads: `gradient_norms` (at least 3 kernels are needed to speak of depth).
        t: the `Thresholds`.

    Returns:
        ``vanishing`` and/or ``exploding`` findings.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "The Vanishing/Exploding Gradients Problems".
    """
    if grads is None or len(grads) < 3:
        return []
    ratio = grads["ratio"].to_numpy(dtype=float)
    names = _unique(list(grads["layer"]))
    q = max(1, len(grads) // 4)
    first, last = float(np.median(ratio[:q])), float(ratio[-1])
    per_layer = dict(zip(names, grads["grad_norm"]))
    evidence = {"first_layers": names[:q], "first_relative_gradient": first,
                "output_relative_gradient": last, "loss": grads.attrs.get("loss"),
                "grad_norm_per_layer": per_layer}
    if not (np.isfinite(first) and np.isfinite(last)) or last <= 0 or first <= 0:
        return []
    out = []
    if first / last < t.vanishing:
        out.append(_finding(
            "vanishing", "warning",
            f"Gradients vanish toward the input: relative gradient (|grad| / |weights|) "
            f"{first:.2g} in the first layers vs {last:.2g} at the output, "
            f"{last / first:.2g}x smaller; the lower layers barely learn.",
            {**evidence, "factor": last / first}))
    top = int(np.nanargmax(ratio))
    if first / last > t.exploding or ratio[top] > t.exploding_step:
        out.append(_finding(
            "exploding", "error",
            f"Gradients explode: relative gradient up to {ratio[top]:.3g} (layer "
            f"{names[top]}), {first / last:.3g}x the output layer's in the first layers; "
            "a step would change the weights by more than their size.",
            {**evidence, "max_relative_gradient": float(ratio[top]), "max_layer": names[top]}))
    return out


def check_activations(acts: pd.DataFrame | None, t: Thresholds, n: int) -> list[Finding]:
    """Dead ReLU-like units and saturated sigmoid/tanh units in hidden layers.

    Args:
        acts: `activation_stats`, or None.
        t: the `Thresholds`.
        n: examples the statistics were measured on (evidence).

    Returns:
        A ``dead`` and/or a ``saturated`` finding.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Better Activation Functions".
    """
    if acts is None:
        return []
    hidden = acts[~acts["is_output"].astype(bool)]
    out = []
    flat = hidden[~hidden["kind"].isin([*SATURATING, "softmax"])]
    dead = flat[flat["dead_fraction"] >= t.dead]
    if len(dead):
        worst = dead.loc[dead["dead_fraction"].idxmax()]
        out.append(_finding(
            "dead", "warning",
            f"Dead units: {worst['dead_fraction']:.0%} of the {worst['units']} units of "
            f"{worst['layer']} ({worst['kind']}) output 0 on all {n} examples"
            + (f"; {len(dead)} layers are affected." if len(dead) > 1 else "."),
            {"dead_fraction": dict(zip(dead["layer"], dead["dead_fraction"])),
             "units": dict(zip(dead["layer"], dead["units"])),
             "zero_outputs": dict(zip(dead["layer"], dead["frac_zero"])), "examples": n}))
    sat = hidden[hidden["kind"].isin(list(SATURATING))]
    sat = sat[sat["saturated_fraction"] >= t.saturated]
    if len(sat):
        worst = sat.loc[sat["saturated_fraction"].idxmax()]
        out.append(_finding(
            "saturated", "warning",
            f"Saturated units: {worst['saturated_fraction']:.0%} of the outputs of "
            f"{worst['layer']} ({worst['kind']}) sit at its bounds, where its gradient is ~0"
            + (f"; {len(sat)} layers are affected." if len(sat) > 1 else "."),
            {"saturated_fraction": dict(zip(sat["layer"], sat["saturated_fraction"])),
             "mean": dict(zip(sat["layer"], sat["mean"])), "examples": n}))
    return out


def _count_dict(counts: Any, names: list[str]) -> dict[str, int]:
    if isinstance(counts, pd.Series):
        counts = counts.to_dict()
    if isinstance(counts, Mapping):
        return {str(k): int(v) for k, v in counts.items()}
    values = list(np.asarray(counts).reshape(-1))
    return {names[i]: int(v) for i, v in enumerate(values) if i < len(names)}


def check_classes(classes: pd.DataFrame | None, counts: Any, t: Thresholds) -> list[Finding]:
    """Classes whose one-vs-rest AUC, or recall, is far below the median of the others'.

    A rare class is judged like any other (it is usually the one that lags); when it has
    fewer than ``t.min_examples`` examples to evaluate, the finding says how few, since one
    example then moves its recall a lot.

    Args:
        classes: `recipes.metrics.class_report`, or None.
        counts: training examples per class (list, array, Series or dict).
        t: the `Thresholds`.

    Returns:
        One ``lagging_class`` finding per lagging class.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 3 (the ROC curve) and ch. 11.
    """
    if classes is None:
        return []
    n = len(classes)
    negatives = classes["support"].sum() - classes["support"]
    ok = classes[(classes["support"] >= 1) & (negatives >= 1) & np.isfinite(classes["auc"])]
    if len(ok) < 3:
        return []
    count_of = _count_dict(counts, list(classes["class"].astype(str)))
    out = []
    for index, row in ok.iterrows():
        rest = ok.loc[ok.index != index]
        others, others_recall = float(np.median(rest["auc"])), float(np.median(rest["recall"]))
        auc_lags = others - row.auc >= t.auc_gap
        recall_lags = others_recall - row.recall >= t.recall_gap
        if (auc_lags or recall_lags) and others >= t.auc_learned:
            name = str(row["class"])
            few = (f" (only {int(row.support)} examples evaluated: one of them moves the recall "
                   f"by {1 / row.support:.2f})" if row.support < t.min_examples else "")
            out.append(_finding(
                "lagging_class", "warning",
                f"Class '{name}' lags: AUC {row.auc:.3f} vs a median of {others:.3f} for the "
                f"other {len(ok) - 1} classes; recall {row.recall:.2f} vs a median of "
                f"{others_recall:.2f}, on {row.support} examples{few}; "
                f"{count_of.get(name, 'unknown')} training examples.",
                {"class": name, "auc": float(row.auc), "median_auc_others": others,
                 "recall": float(row.recall), "median_recall_others": others_recall,
                 "precision": float(row.precision), "examples_evaluated": int(row.support),
                 "training_count": count_of.get(name), "class_counts": count_of,
                 "classes": n, "by": ("auc" if auc_lags else "") + ("+" if auc_lags and
                                                                    recall_lags else "")
                 + ("recall" if recall_lags else "")}))
    return out


def check_overfitting(history: Any, scores: Mapping[str, float], t: Thresholds) -> list[Finding]:
    """A large train-validation gap (history's last epoch or evaluation) or a rising val loss.

    Args:
        history: a ``History``, a dict of per-epoch lists, a DataFrame, or None.
        scores: ``train_accuracy`` and ``val_accuracy`` of an evaluation (may be empty).
        t: the `Thresholds`.

    Returns:
        One ``overfitting`` finding, or nothing.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Avoiding Overfitting Through Regularization".
    """
    h, evidence, reasons = read_history(history), {}, []
    acc = next((k for k in h if "acc" in k and not k.startswith("val_") and f"val_{k}" in h), None)
    if acc and h[acc]:
        gap = h[acc][-1] - h[f"val_{acc}"][-1]
        evidence |= {f"history_{acc}": h[acc][-1], f"history_val_{acc}": h[f"val_{acc}"][-1],
                     "history_gap": gap, "epochs": len(h[acc])}
        if gap >= t.overfit_gap:
            reasons.append(f"{acc} {h[acc][-1]:.3f} vs val_{acc} {h['val_' + acc][-1]:.3f} "
                           "at the last epoch")
    if len(h.get("val_loss", [])) >= 3 and len(h.get("loss", [])) == len(h["val_loss"]):
        val, train = np.asarray(h["val_loss"]), np.asarray(h["loss"])
        best = int(np.nanargmin(val))
        rise = val[-1] / val[best] - 1
        if best <= len(val) - 3 and rise >= t.overfit_loss_rise and train[-1] < train[best]:
            evidence |= {"best_val_loss_epoch": best + 1, "best_val_loss": float(val[best]),
                         "last_val_loss": float(val[-1]), "val_loss_rise": float(rise)}
            reasons.append(f"validation loss up {rise:.0%} since epoch {best + 1} while the "
                           "training loss kept falling")
    if "val_accuracy" in scores:
        gap = scores["train_accuracy"] - scores["val_accuracy"]
        evidence |= {"train_accuracy": scores["train_accuracy"],
                     "val_accuracy": scores["val_accuracy"], "evaluated_gap": gap}
        if gap >= t.overfit_gap:
            reasons.append(f"accuracy {scores['train_accuracy']:.3f} on training examples vs "
                           f"{scores['val_accuracy']:.3f} on validation examples")
    if not reasons:
        return []
    return [_finding("overfitting", "warning", "Overfitting: " + "; ".join(reasons) + ".",
                     evidence)]


def _probe_runs(probe: pd.DataFrame, suffix: str = "") -> list[str]:
    """The per-order columns of a rate (``order<k>_loss<suffix>``), else its median column."""
    runs = [c for c in probe.columns if re.fullmatch(rf"order\d+_loss{re.escape(suffix)}", c)]
    return runs or [f"loss{suffix}"]


def check_probe(probe: pd.DataFrame | None, t: Thresholds) -> list[Finding]:
    """A learning rate too high (the probe's loss rises) or too low (it does not move).

    Too high: at the model's own rate the loss becomes NaN/Inf, or it rises in every
    mini-batch order beyond the noise of the rate itself. Each order's level is the median
    of its loss over the last half of the steps; each must be at least ``t.lr_rise`` times
    the initial loss and above it by ``t.lr_noise`` times the spread of that order's loss
    over those steps (the standard deviation of its logarithm, the median over the
    orders). A healthy, trained model's loss jitters from step to step (each mini-batch
    pulls the weights its own way) and, measured on examples it memorized, drifts up
    toward its held-out loss: neither is a rate that is too high.

    Args:
        probe: `recipes.diagnosis.lr_probe.probe_learning_rate`'s table, or None.
        t: the `Thresholds`.

    Returns:
        One ``lr_too_high`` or ``lr_too_low`` finding, or nothing.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Learning Rate Scheduling".
    """
    if probe is None or len(probe) < 2:
        return []
    steps = len(probe) - 1
    runs = probe[_probe_runs(probe)].to_numpy(dtype=float)  # (steps + 1, orders)
    loss = probe["loss"].to_numpy(dtype=float)
    l0, ln = float(runs[0, 0]), float(loss[-1])
    evidence = {"optimizer": probe.attrs.get("optimizer"),
                "learning_rate": probe.attrs.get("learning_rate"), "steps": steps,
                "orders": runs.shape[1], "evaluated_on": probe.attrs.get("evaluated_on"),
                "initial_loss": l0, "final_loss": ln,
                "max_loss": float(np.nanmax(np.where(np.isfinite(runs), runs, np.inf)))}
    bad = int(np.sum(~np.all(np.isfinite(runs), axis=0)))
    if bad:
        return [_finding(
            "lr_too_high", "error",
            f"Learning rate too high: at its own rate, on a copy, the loss became NaN/Inf "
            f"within {steps} steps in {bad} of {runs.shape[1]} mini-batch orders.",
            {**evidence, "orders_non_finite": bad})]
    first = max(1, (steps + 1) // 2)  # the last half of the steps
    window = runs[first:]
    if l0 > 0 and np.all(window > 0):
        levels = np.median(window, axis=0)
        rise = float(np.min(levels)) / l0
        spread = float(np.median(np.std(np.log(window), axis=0)))
        if rise >= t.lr_rise and np.log(rise) >= t.lr_noise * spread:
            return [_finding(
                "lr_too_high", "error",
                f"Learning rate too high: at its own rate, on a copy, the loss rose from "
                f"{l0:.4g} to {np.min(levels):.4g}-{np.max(levels):.4g} (median of steps "
                f"{first}-{steps}) in all {runs.shape[1]} mini-batch orders: {rise:.2f}x or "
                f"more, beyond its own step-to-step spread (x{np.exp(spread):.2f}).",
                {**evidence, "level_per_order": [float(v) for v in levels], "rise": rise,
                 "spread": spread, "window": [first, steps]})]
    moved = (l0 - ln) / l0 if l0 > 0 else 0.0
    drops = {}
    for column in (c for c in probe.columns if c.startswith("loss_x")):
        values, factor = probe[column].to_numpy(dtype=float), float(column[len("loss_x"):])
        drop = (values[0] - values[-1]) / values[0] if values[0] > 0 else float("nan")
        # 1e-5: well above float32's resolution of a loss (about 1e-7 of its value).
        proportional = drop > 1e-5 and drop >= t.lr_linear * factor * max(moved, 0)
        drops[f"x{factor:g}"] = (float(drop), bool(np.isfinite(drop) and proportional))
    if (steps >= t.lr_min_steps and abs(moved) < t.lr_still and drops
            and all(ok for _, ok in drops.values())):
        top = max(drops, key=lambda k: float(k[1:]))
        return [_finding(
            "lr_too_low", "warning",
            f"Learning rate too low: the loss fell {moved:.3%} in {steps} steps; at "
            f"{top[1:]}x the rate it fell {drops[top][0]:.3%}: the gain grows in proportion to "
            "the rate, so the steps are far below the rate where training would overshoot.",
            {**evidence, "relative_drop": float(moved),
             **{f"relative_drop_{k}": v for k, (v, _) in drops.items()}})]
    return []
