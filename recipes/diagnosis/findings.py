"""Findings: what `recipes.diagnosis.doctor.diagnose` reports, when, and the chapter's remedies.

A `Finding` is one problem: its kind, severity, message, evidence (the numbers) and the
remedy; `Thresholds` says when a measurement becomes a finding; `REMEDIES` holds the
chapter's remedy for each kind.

Example:

```python
finding = Finding("dead", "warning", "40% of hidden_0's units are dead", {"dead": 0.4})
print(finding)  # the message, the evidence line by line, the remedy
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Training Deep Neural Networks".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["KINDS", "REMEDIES", "Finding", "Thresholds"]

REMEDIES = {
    "non_finite": "Lower the learning rate and clip gradients (optimizer clipnorm=1.0 or "
                  "clipvalue); check the inputs for NaN/Inf and their scale; restart from a "
                  "checkpoint taken before the divergence (ch. 11, 'Gradient Clipping').",
    "vanishing": "Use He initialization for the ReLU family (LeCun for SELU), a non-saturating "
                 "activation (ReLU, leaky ReLU, ELU, SELU) instead of sigmoid/tanh, batch "
                 "normalization, or residual (skip) connections (ch. 11, 'The Vanishing/"
                 "Exploding Gradients Problems').",
    "exploding": "Clip the gradients (clipnorm=1.0, or global_clipnorm), lower the learning "
                 "rate, use Glorot/He initialization and batch normalization (ch. 11, "
                 "'Gradient Clipping').",
    "dead": "Use leaky ReLU, ELU or SELU (they never output a flat zero), a lower learning "
            "rate, and He initialization; check for large negative biases (ch. 11, 'Better "
            "Activation Functions').",
    "saturated": "Replace sigmoid/tanh in hidden layers by ReLU-family, ELU or SELU, keep "
                 "Glorot initialization for sigmoid/tanh, scale the inputs, add batch "
                 "normalization (ch. 11, 'Glorot and He Initialization').",
    "lagging_class": "Weight the loss by class (model.fit(class_weight=recipes.losses."
                     "class_weights(y))), use a focal loss (recipes.losses.FocalLoss), "
                     "collect more data or augment that class (ch. 11 and ch. 14).",
    "overfitting": "Regularize (l1/l2, dropout or MC dropout, max-norm), stop early "
                   "(EarlyStopping(restore_best_weights=True)), use a smaller model or more "
                   "(augmented) data (ch. 11, 'Avoiding Overfitting Through Regularization').",
    "lr_too_high": "Lower the learning rate 3-10x, or use a schedule with warm-up (1cycle) and "
                   "gradient clipping; find a rate with recipes.lr_finder.find_learning_rate "
                   "(ch. 11, 'Learning Rate Scheduling').",
    "lr_too_low": "Raise the learning rate 3-10x (find it with recipes.lr_finder."
                  "find_learning_rate), or use 1cycle / a faster optimizer such as Adam or "
                  "Nesterov momentum (ch. 11, 'Faster Optimizers').",
}

KINDS = tuple(REMEDIES)


@dataclass
class Finding:
    """One problem found: what, how bad, the numbers, and the chapter's remedy.

    Args:
        kind: ``non_finite``, ``vanishing``, ``exploding``, ``dead``, ``saturated``,
            ``lagging_class``, ``overfitting``, ``lr_too_high`` or ``lr_too_low``.
        severity: ``"error"`` (training cannot work) or ``"warning"``.
        message: one sentence with the key numbers.
        evidence: the numbers behind it (JSON-ready).
        remedy: what the chapter recommends.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11.
    """

    kind: str
    severity: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remedy: str = ""

    def evidence_lines(self) -> list[str]:
        """The evidence as ``"name: value"`` lines, numbers to 3 significant digits."""
        return [f"{k}: {_fmt(v)}" for k, v in self.evidence.items()]

    def __str__(self) -> str:
        lines = [f"[{self.severity.upper()}] {self.kind}: {self.message}", "  evidence:"]
        lines += [f"    {line}" for line in self.evidence_lines()]
        lines.append(f"  remedy: {self.remedy}")
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.3g}"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True)
class Thresholds:
    """When a measurement becomes a finding.

    Args:
        vanishing: the first layers' relative gradient (gradient norm / weight norm, median
            of the first quarter of kernels) below this times the output layer's.
        exploding: the same ratio above this, or any relative gradient above
            `exploding_step`.
        exploding_step: a relative gradient this large moves the weights by more than
            their own size at a learning rate of 1/`exploding_step`.
        dead: a hidden layer with at least this fraction of units zero on every example
            (a few dead units are common in healthy ReLU nets; half is the book's "in some
            cases half of the network's neurons are dead").
        saturated: a sigmoid/tanh layer with at least this fraction of outputs saturated.
        auc_gap: a class whose AUC is this far below the median of the others' ...
        auc_learned: ... when that median reaches this (the model has learned the others;
            an untrained model's AUCs all scatter around 0.5).
        recall_gap: ... or whose recall is this far below the median of the others' (a
            rare class the model never predicts keeps a fair AUC but recall 0).
        min_examples: a lagging class evaluated on fewer examples is reported with a note
            that its figures rest on few examples (it is still judged).
        overfit_gap: training minus validation accuracy at least this large.
        overfit_loss_rise: the history's last validation loss this fraction above its best
            (at least 2 epochs earlier) while the training loss kept falling.
        lr_rise: the probe's loss at the model's rate, over the last half of its steps
            (the median), at least this many times the initial loss in every mini-batch
            order ...
        lr_noise: ... and above it by at least this many times its own spread (the
            standard deviation of the log loss over those steps, median over the orders):
            a rise within the rate's step-to-step noise is no finding.
        lr_still: probe loss moving by less than this fraction over the steps ...
        lr_linear: ... while each faster copy (f x the rate) lowers it at least this times f
            as much (even 100x the rate does not overshoot: the steps are far too small) ...
        lr_min_steps: ... in a probe of at least this many steps.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11.
    """

    vanishing: float = 1e-2
    exploding: float = 1e2
    exploding_step: float = 10.0
    dead: float = 0.5
    saturated: float = 0.3
    auc_gap: float = 0.15
    auc_learned: float = 0.75
    recall_gap: float = 0.5
    min_examples: int = 5
    overfit_gap: float = 0.1
    overfit_loss_rise: float = 0.25
    lr_rise: float = 1.2
    lr_noise: float = 2.0
    lr_still: float = 0.01
    lr_linear: float = 0.5
    lr_min_steps: int = 10
