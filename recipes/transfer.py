"""Transfer learning the book's way and the Keras guide's: reuse, freeze, fine-tune.

`reuse_layers` clones model A (``keras.models.clone_model`` + ``set_weights``), keeps its
first ``n_layers`` layers and stacks a new head, so training model B never changes model
A (the book's pitfall: ``Sequential(model_A.layers[:-1])`` shares the layers). `freeze`
and `unfreeze` set ``trainable`` flags (batch-norm layers stay frozen when unfreezing, as
the Keras fine-tuning guide recommends; in Keras 3 a frozen ``BatchNormalization`` also
runs in inference mode). `fine_tune` runs the two phases: reused layers frozen, then
unfrozen with a 10x smaller learning rate, recompiling with a fresh optimizer after each
change of ``trainable``.

Layer counts (``n_layers``, ``until``, ``base_layers``) count the layers of
``model.layers`` without the ``InputLayer``: for ``Sequential([Input, Dense, Dense])`` and
for the equivalent functional model, layer 1 is the first ``Dense``.

Example:

```python
model_b = reuse_layers(model_a, n_layers=3, new_head=1)   # a fresh sigmoid output
histories = fine_tune(model_b, (x_b, y_b), base_layers=3, loss="binary_crossentropy")
```

Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Reusing Pretrained Layers";
Keras guide "Transfer learning & fine-tuning".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from recipes.losses import LOSS_NAMES, make_loss

__all__ = ["BACKBONES", "build_transfer", "fine_tune", "freeze", "reuse_layers",
           "set_batch_norm_momentum", "unfreeze"]


def _body(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers of ``model.layers`` without the InputLayer."""
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _count(model: keras.Model, n: int | str | None, what: str, low: int = 0) -> int:
    """Resolve a layer count (int, layer name, or None for all) and check its range."""
    body = _body(model)
    if n is None:
        return len(body)
    if isinstance(n, str):
        names = [layer.name for layer in body]
        if n not in names:
            raise ValueError(f"Unknown layer {n!r} for {what}. Valid: {', '.join(names)}.")
        return names.index(n) + 1
    if isinstance(n, bool) or not isinstance(n, int) or not low <= n <= len(body):
        raise ValueError(
            f"{what} must be an integer between {low} and {len(body)} (the layers of "
            f"{model.name!r} without its InputLayer), got {n!r}."
        )
    return n


def _check_linear_chain(model: keras.Model, body: list[keras.layers.Layer], name: str) -> None:
    """Raise unless each layer of a functional model feeds only the next one."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"reuse_layers needs a single-input, single-output chain; {name!r} has "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs."
        )
    previous = model.inputs[0]
    for layer in body:
        if layer.input is not previous:
            raise ValueError(
                f"reuse_layers needs a linear chain of layers, but layer {layer.name!r} of "
                f"{name!r} does not take the previous layer's output. Build model B "
                "with the functional API instead."
            )
        previous = layer.output


def _head_layers(new_head: Any) -> list[keras.layers.Layer]:
    if isinstance(new_head, bool):
        raise ValueError(f"new_head must be layers or a number of classes, got {new_head!r}.")
    if isinstance(new_head, int):
        if new_head < 1:
            raise ValueError(f"new_head as a number of classes must be >= 1, got {new_head}.")
        activation = "sigmoid" if new_head == 1 else "softmax"
        return [keras.layers.Dense(new_head, activation=activation)]
    if isinstance(new_head, keras.layers.Layer):
        return [new_head]
    layers = list(new_head)
    bad = [layer for layer in layers if not isinstance(layer, keras.layers.Layer)]
    if bad:
        raise ValueError(f"new_head must hold Keras layers, got {bad[0]!r}.")
    return layers


def reuse_layers(
    model: keras.Model,
    n_layers: int,
    new_head: int | keras.layers.Layer | Sequence[keras.layers.Layer],
    *,
    name: str | None = None,
) -> keras.Model:
    """Model B: a copy of model A's first ``n_layers`` layers with a new head on top.

    Model A is cloned and its weights copied, so the reused layers start equal to A's but
    training B leaves A unchanged. The head replaces A's remaining layers.

    Args:
        model: model A, built, a ``Sequential`` or a functional linear chain.
        n_layers: how many of A's layers to reuse, counting ``model.layers`` without the
            ``InputLayer``; from 1 to all of them.
        new_head: the layers stacked on top: a list of layers, one layer, or a number of
            classes (a fresh ``Dense`` with softmax, or sigmoid for 1 unit).
        name: name of model B. Defaults to ``"<A's name>_reused"``.

    Returns:
        Model B, a functional ``keras.Model``, uncompiled, all layers trainable as in A.

    Raises:
        ValueError: if ``n_layers`` is out of range, A is not built or not a linear
            chain, or ``new_head`` is not layers or a positive number of classes.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Transfer Learning with Keras".
    """
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError(
            f"Model {model.name!r} has no defined input; build it with keras.Input(...) " "first."
        )
    n = _count(model, n_layers, "n_layers", low=1)
    head = _head_layers(new_head)
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    # Checked on the clone: its layers have one inbound node each, A's may have more.
    _check_linear_chain(clone, _body(clone), model.name)
    # Built on the clone's own graph, so every layer of B keeps a single node and
    # `keras.Model(model_b.inputs, model_b.layers[i].output)` works.
    x = _body(clone)[n - 1].output
    for layer in head:
        x = layer(x)
    # One input tensor, as A's (not a list of one): B(x) then takes an array as A(x) does.
    return keras.Model(clone.inputs[0], x, name=name or f"{model.name}_reused")


def _sublayers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The layer and, for nested models, all the layers inside it."""
    out = [layer]
    for sub in getattr(layer, "layers", []):
        out.extend(_sublayers(sub))
    return out


def freeze(model: keras.Model, until: int | str | None = None) -> None:
    """Make the first layers of ``model`` non-trainable (in place).

    Recompile the model afterwards: ``trainable`` is read when the train step is built.

    Args:
        model: the model.
        until: how many leading layers to freeze (``model.layers`` without the
            ``InputLayer``), or the name of the last layer to freeze; ``None`` freezes
            every layer. Later layers are left as they are.

    Raises:
        ValueError: if ``until`` is out of range or names no layer.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Transfer Learning with Keras".
    """
    for layer in _body(model)[: _count(model, until, "until")]:
        layer.trainable = False


def unfreeze(
    model: keras.Model,
    top_k: int | None = None,
    *,
    base_layers: int | str | None = None,
    keep_bn_frozen: bool = True,
) -> None:
    """Make the reused part of ``model`` trainable again (in place), for fine-tuning.

    The reused part is the first ``base_layers`` layers. Its last ``top_k`` layers become
    trainable and its earlier layers are frozen; layers after it are left as they are.
    Recompile the model afterwards.

    Args:
        model: the model.
        top_k: how many of the reused part's last layers to unfreeze; ``None`` for all.
        base_layers: size of the reused part (layers of ``model.layers`` without the
            ``InputLayer``) or the name of its last layer; ``None`` for the whole model.
        keep_bn_frozen: keep ``BatchNormalization`` layers (also inside nested models)
            frozen, so their statistics stay those of the pretraining. Defaults to `True`.

    Raises:
        ValueError: if ``base_layers`` or ``top_k`` is out of range.

    Reference: Keras guide "Transfer learning & fine-tuning" (BatchNormalization).
    """
    base = _body(model)[: _count(model, base_layers, "base_layers")]
    k = len(base) if top_k is None else top_k
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= len(base):
        raise ValueError(
            f"top_k must be None or an integer between 0 and {len(base)} (the reused "
            f"layers), got {top_k!r}."
        )
    for i, layer in enumerate(base):
        layer.trainable = i >= len(base) - k
        if layer.trainable and keep_bn_frozen:
            for sub in _sublayers(layer):
                if isinstance(sub, keras.layers.BatchNormalization):
                    sub.trainable = False


def _fresh_optimizer(optimizer: str | keras.optimizers.Optimizer, learning_rate: float) -> Any:
    """A new, unbuilt optimizer of the given kind with the given learning rate."""
    template = keras.optimizers.get(optimizer)
    config = template.get_config()
    config["learning_rate"] = float(learning_rate)
    return type(template).from_config(config)


def fine_tune(
    model: keras.Model,
    train_data: Any,
    val_data: Any = None,
    *,
    base_layers: int | str,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float = 1e-3,
    frozen_epochs: int = 4,
    fine_tune_epochs: int = 16,
    fine_tune_lr_factor: float = 0.1,
    loss: str | keras.losses.Loss = "crossentropy",
    metrics: Sequence[Any] | None = ("accuracy",),
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
    verbose: str | int = "auto",
    class_weight: dict[int, float] | None = None,
    batch_size: int | None = None,
    top_k: int | None = None,
    keep_bn_frozen: bool = True,
) -> dict[str, keras.callbacks.History]:
    """Train a model with reused layers in two phases: frozen base, then fine-tuning.

    Phase 1 freezes the first ``base_layers`` layers and trains the head for
    ``frozen_epochs`` epochs at ``learning_rate``. Phase 2 unfreezes them (see `unfreeze`)
    and trains everything for ``fine_tune_epochs`` more epochs at ``learning_rate *
    fine_tune_lr_factor``. The model is recompiled with a fresh optimizer at each phase.
    This is the one place in ``recipes`` that fits; it prints only what Keras's
    ``verbose`` prints.

    Args:
        model: model B, e.g. from `reuse_layers`.
        train_data: a ``tf.data.Dataset`` (or anything ``fit`` takes as ``x``) or an
            ``(x, y)`` tuple.
        val_data: validation data as ``fit`` takes it, or ``None``.
        base_layers: the reused part: number of leading layers (``model.layers`` without
            the ``InputLayer``) or the name of its last layer; at least one layer must
            remain after it.
        optimizer: an optimizer name or a Keras optimizer used as a template (its config
            is copied, its learning rate replaced). Defaults to `"adam"`.
        learning_rate: phase-1 learning rate. Defaults to `1e-3`.
        frozen_epochs: phase-1 epochs. Defaults to `4`.
        fine_tune_epochs: phase-2 epochs. Defaults to `16`.
        fine_tune_lr_factor: phase-2 rate / phase-1 rate. Defaults to `0.1`.
        loss: a `recipes.losses.LOSS_NAMES` name, another Keras loss name, or a loss.
            Defaults to `"crossentropy"` (integer or one-hot labels).
        metrics: metrics for ``compile``. Defaults to `("accuracy",)`.
        callbacks: callbacks used in both phases.
        verbose: Keras ``fit`` verbosity. Defaults to `"auto"`.
        class_weight: per-class weights for ``fit`` (e.g. `recipes.losses.class_weights`).
        batch_size: batch size with ``(x, y)`` tuples; ``None`` for Keras's default.
        top_k: unfreeze only the last ``top_k`` reused layers in phase 2; ``None`` for all.
        keep_bn_frozen: keep batch-norm layers frozen in phase 2. Defaults to `True`.

    Returns:
        ``{"phase1": History, "phase2": History}``; phase-2 epochs are numbered after
        phase 1's.

    Raises:
        ValueError: for bad ``base_layers``, epochs or learning-rate factor.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Transfer Learning with Keras";
    Keras guide "Transfer learning & fine-tuning".
    """
    n_base = _count(model, base_layers, "base_layers", low=1)
    if n_base >= len(_body(model)):
        raise ValueError(
            f"base_layers={base_layers!r} covers all {len(_body(model))} layers of "
            f"{model.name!r}; leave at least one layer (the head) to train in phase 1."
        )
    for label, epochs in (("frozen_epochs", frozen_epochs), ("fine_tune_epochs", fine_tune_epochs)):
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"{label} must be an integer >= 0, got {epochs!r}.")
    if not fine_tune_lr_factor > 0:
        raise ValueError(f"fine_tune_lr_factor must be > 0, got {fine_tune_lr_factor!r}.")
    if isinstance(train_data, tuple) and len(train_data) == 2:
        x, y = train_data
    else:
        x, y = train_data, None

    def run_phase(lr: float, epochs: int, initial_epoch: int) -> keras.callbacks.History:
        the_loss = make_loss(loss) if isinstance(loss, str) and loss in LOSS_NAMES else loss
        model.compile(
            optimizer=_fresh_optimizer(optimizer, lr),
            loss=the_loss,
            metrics=list(metrics) if metrics else None,
        )
        return model.fit(
            x,
            y,
            batch_size=batch_size,
            epochs=initial_epoch + epochs,
            initial_epoch=initial_epoch,
            validation_data=val_data,
            callbacks=list(callbacks) if callbacks else None,
            verbose=verbose,
            class_weight=class_weight,
            # a dataset shuffles itself; Keras would warn that it ignores shuffle=True
            shuffle=y is not None,
        )

    freeze(model, n_base)
    phase1 = run_phase(learning_rate, frozen_epochs, 0)
    unfreeze(model, top_k, base_layers=n_base, keep_bn_frozen=keep_bn_frozen)
    phase2 = run_phase(learning_rate * fine_tune_lr_factor, fine_tune_epochs, frozen_epochs)
    return {"phase1": phase1, "phase2": phase2}


BACKBONES = ("mobilenetv2", "efficientnetb0")


def set_batch_norm_momentum(model: keras.Model, momentum: float) -> keras.Model:
    """Set every BN layer's momentum, nested models included (in place).

    With a few hundred photos an epoch is ~25-100 steps: Keras's 0.99 (MobileNetV2's 0.999)
    leaves the moving averages near their initial values for the whole run, and the model
    predicts garbage at inference while the training accuracy climbs.

    Args:
        model: the model.
        momentum: the new momentum.

    Returns:
        The same model.
    """
    for layer in _sublayers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
    return model


def build_transfer(
    backbone: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    weights: str | None = "imagenet",
    width: float = 0.35,
    augmentation: Sequence[str] = ("flip", "rotation", "zoom", "contrast"),
    dropout_rate: float = 0.3,
) -> keras.Model:
    """Raw pixels -> augmentation -> the backbone's preprocessing -> backbone -> new head.

    The backbone (a ``keras.applications`` model without its top, in a layer named
    ``backbone``) is what `fine_tune(model, ..., base_layers="backbone")` freezes and then
    fine-tunes. Without pretrained weights (``weights=None``) its BN momentum is set to
    0.9 so that the moving averages settle within a few epochs.

    Args:
        backbone: one of `BACKBONES`.
        input_shape: ``(H, W, 3)`` raw photos in [0, 255].
        num_classes: the new head's classes.
        weights: ``"imagenet"`` (Keras downloads them or finds them in ``~/.keras/models``),
            ``None`` (random) or the path of a no-top weights file. Defaults to `"imagenet"`.
        width: MobileNetV2's width multiplier alpha. Defaults to `0.35`.
        augmentation: `recipes.builders.augmentation_layers` names.
        dropout_rate: dropout before the output. Defaults to `0.3`.

    Returns:
        An uncompiled functional model.

    Raises:
        InputError: unknown backbone, ImageNet weights neither downloadable nor cached, a
            weights file that does not exist or does not fit.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 14, "Pretrained Models for Transfer
    Learning"; Keras guide "Transfer learning & fine-tuning".
    """
    from pathlib import Path

    from recipes.builders import augmentation_layers
    from recipes.checks import InputError

    if backbone not in BACKBONES:
        raise InputError(f"Unknown backbone {backbone!r}. Valid: {', '.join(BACKBONES)}.")
    if weights is not None and weights != "imagenet" and not Path(weights).is_file():
        raise InputError(f"Weights file '{weights}' does not exist (use imagenet, none or the "
                         "path of a no-top .h5/.weights.h5 file).")
    try:
        if backbone == "mobilenetv2":
            base = keras.applications.MobileNetV2(input_shape=input_shape, alpha=width,
                                                  include_top=False, weights=weights,
                                                  name="backbone")
            prep = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")
        else:
            base = keras.applications.EfficientNetB0(input_shape=input_shape, include_top=False,
                                                     weights=weights, name="backbone")
            prep = keras.layers.Identity(name="preprocess")  # rescales inside the backbone
    except Exception as e:  # noqa: BLE001 - download failures come in many kinds
        first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        if weights == "imagenet":
            raise InputError(
                f"Cannot get the ImageNet weights of {backbone} ({first}): no internet and not "
                "in the Keras cache (~/.keras/models). Copy the no-top weights file there, "
                "pass the path of a local weights file, or use no weights (none) to train the "
                "backbone from scratch.") from None
        raise InputError(f"Cannot build {backbone} with weights {weights!r}: {first}") from None
    if weights is None:
        set_batch_norm_momentum(base, 0.9)
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for layer in augmentation_layers(tuple(augmentation)):
        x = layer(x)
    x = base(prep(x))
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    x = keras.layers.Dropout(dropout_rate, name="dropout_head")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="output",
                                 dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"transfer_{backbone}")
