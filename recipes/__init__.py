"""ch11-recipes: Chapter 11 of Hands-On Machine Learning as importable Keras 3 pieces.

``import recipes`` is cheap: it imports neither TensorFlow nor Keras. Each public name is
imported from its home module on first use (``recipes.build_mlp``, ``from recipes import
OneCycle``), and the package registers its custom layers, schedules and losses with Keras
as soon as Keras is imported, so ``import recipes; keras.models.load_model(path)`` reloads
a saved model with nothing else. TensorFlow's C++ start-up INFO lines are dropped from
stderr when it is imported (``RECIPES_TF_VERBOSE=1`` keeps them).

Example:

```python
from recipes import MLPSpec, build_mlp, make_optimizer, OneCycle
model = build_mlp(MLPSpec(batch_norm="before"), input_shape=(28, 28), num_classes=10)
```

Layout: `recipes.data` (MNIST, fish photos, input pipelines), `recipes.diagnosis`
(measures, probes, saliency, findings, the doctor and its plots), and one module per
technique (`activations`, `initializers`, `optimizers`, `schedules` with `make_schedule`,
`losses`, `regularization`, `transfer`, ...). `recipes.callbacks` holds every callback
and `make_callbacks`; `recipes.plots` every figure (`learning_curves`, `layer_profile`,
`schedule_curves`, `lr_finder_plot`, `gradient_flow`, `activation_histograms`,
`weight_histograms`, `saliency_grid`, `confusion_heatmap`, `roc_plot`, `spread_bars`,
`capacity_curves`, `image_rows`: ``from recipes.plots import learning_curves``);
`recipes.runs` the run folders and their files. `recipes.names` lists every name a factory
accepts.
"""

from recipes._startup import install_import_hooks, lazy_exports

_EXPORTS: dict[str, str] = {
    # names every factory accepts (no TensorFlow)
    **dict.fromkeys(("ACTIVATION_NAMES", "DEFAULT_LEARNING_RATES", "INITIALIZER_NAMES",
                     "LOSS_NAMES", "OPTIMIZER_NAMES", "PRECISIONS", "SCHEDULE_NAMES"),
                    "recipes.names"),
    # specs and builders
    **dict.fromkeys(("CNNSpec", "MLPSpec"), "recipes.specs"),
    **dict.fromkeys(("build_cnn", "build_mlp", "count_params"), "recipes.builders"),
    **dict.fromkeys(("build_selu_mlp", "layer_statistics"), "recipes.selu"),
    # factories and custom objects
    **dict.fromkeys(("RReLU", "make_activation"), "recipes.activations"),
    **dict.fromkeys(("make_initializer", "recommended_initializer"), "recipes.initializers"),
    "make_optimizer": "recipes.optimizers",
    **dict.fromkeys(("CyclicalLR", "OneCycle", "PowerSchedule", "make_schedule"),
                    "recipes.schedules"),
    # callbacks
    **dict.fromkeys(("EpochTimer", "GradientMonitor", "ValidationMetrics", "make_callbacks"),
                    "recipes.callbacks"),
    **dict.fromkeys(("AnyLabelCrossentropy", "FocalLoss", "SoftmaxMeanSquaredError",
                     "class_weights", "make_loss"), "recipes.losses"),
    **dict.fromkeys(("MCDropout", "make_regularizer", "mc_predict"), "recipes.regularization"),
    **dict.fromkeys(("fine_tune", "freeze", "reuse_layers", "unfreeze"), "recipes.transfer"),
    **dict.fromkeys(("LRFinderResult", "find_learning_rate"), "recipes.lr_finder"),
    # metrics
    **dict.fromkeys(("class_report", "confusion_matrix", "positive_ranks",
                     "precision_recall_f1", "roc_auc_per_class", "roc_curves"),
                    "recipes.metrics"),
    # data
    "load_mnist": "recipes.data.mnist",
    **dict.fromkeys(("FishData", "load_fish"), "recipes.data.fish"),
    "make_dataset": "recipes.data.pipeline",
    # the machine and its dtype policy
    **dict.fromkeys(("choose_precision", "clear_session", "machine_info"), "recipes.hardware"),
    # diagnosis
    **dict.fromkeys(("activation_stats", "gradient_norms", "layer_outputs", "weight_stats"),
                    "recipes.diagnosis.measures"),
    "saliency_map": "recipes.diagnosis.saliency",
    "probe_learning_rate": "recipes.diagnosis.lr_probe",
    **dict.fromkeys(("Finding", "Thresholds", "diagnose", "examine"), "recipes.diagnosis.doctor"),
}

__version__ = "0.1.0"
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
install_import_hooks()
