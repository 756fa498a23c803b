"""Diagnosis: what a trained (or untrained) network's gradients and activations say.

- `measures`: per-layer gradient norms, activation and weight statistics, layer outputs
  (`recipes.callbacks.GradientMonitor` records them during training).
- `probing`: the model walking and checks every measure shares.
- `lr_probe`: short training probes at several learning rates.
- `saliency`: input-gradient saliency maps.
- `findings` and `checks`: the findings, their thresholds and remedies, and the checks
  that produce them from the measures.
- `doctor`: `diagnose` / `examine`, every check on a model and a few batches of data.
- `plots`: the diagnostic figures (also in `recipes.plots`).

Reference: Géron, Hands-On ML (3rd ed.), chapter 11 (vanishing/exploding gradients,
saturation, dying ReLUs, learning rates) and chapter 10 (learning curves).
"""
