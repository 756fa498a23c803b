"""Tests for recipes.transfer: reuse_layers, freeze/unfreeze and two-phase fine_tune."""

import warnings

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from recipes.transfer import fine_tune, freeze, reuse_layers, unfreeze


def _model_a():
    """Dense(8) [40 params] -> BN [16 trainable + 16 moving] -> Dense(6) [54] -> Dense(3) [21]."""
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(6, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ],
        name="model_a",
    )


def _functional_a():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(8, activation="relu")(inputs)
    x = keras.layers.Dense(6, activation="relu")(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="functional_a")


def _separable(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = rng.normal(scale=0.5, size=(n, 4)).astype("float32")
    x[:, 0] += np.where(y == 1, 2.0, -2.0)
    return x, y


def _trainable_count(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def _snapshot(layers):
    return [[np.array(w) for w in layer.get_weights()] for layer in layers]


class _PhaseRecorder(keras.callbacks.Callback):
    """Records the learning rate, optimizer and reused-layer weights at each fit's end."""

    def __init__(self, n_base):
        super().__init__()
        self.n_base = n_base
        self.phases = []

    def on_train_end(self, logs=None):
        body = self.model.layers[1:]
        self.phases.append(
            {
                "lr": float(self.model.optimizer.learning_rate),
                "optimizer": self.model.optimizer,
                "base": _snapshot(body[: self.n_base]),
                "head": _snapshot(body[self.n_base :]),
            }
        )


class ReuseLayersTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_training_b_leaves_a_bit_identical(self):
        model_a = _model_a()
        before = [np.array(w) for w in model_a.get_weights()]
        model_b = reuse_layers(model_a, 3, 1)
        for layer_a, layer_b in zip(model_a.layers[:3], model_b.layers[1:4]):
            self.assertIsNot(layer_a, layer_b)
            for w_a, w_b in zip(layer_a.get_weights(), layer_b.get_weights()):
                self.assertAllEqual(w_a, w_b)
        x, y = _separable(64)
        model_b.compile(keras.optimizers.SGD(learning_rate=0.1), loss="binary_crossentropy")
        model_b.fit(x, y, batch_size=16, epochs=1, verbose=0)
        for w_before, w_after in zip(before, model_a.get_weights()):
            self.assertAllEqual(w_before, w_after)
        # B did train: its first reused kernel moved away from A's.
        self.assertGreater(np.abs(model_b.layers[1].get_weights()[0] - before[0]).max(), 1e-4)

    @parameterized.named_parameters(
        ("softmax", 5, (None, 5), 1.0),
        ("sigmoid", 1, (None, 1), None),
    )
    def test_int_head(self, num_classes, shape, row_sum):
        model_b = reuse_layers(_model_a(), 2, num_classes, name="model_b")
        self.assertEqual(model_b.name, "model_b")
        self.assertEqual(model_b.output_shape, shape)
        self.assertEqual(len(model_b.layers), 1 + 2 + 1)
        probs = model_b.predict(np.ones((3, 4), "float32"), verbose=0)
        if row_sum is None:
            self.assertTrue(np.all((probs > 0) & (probs < 1)))
        else:
            self.assertAllClose(probs.sum(axis=1), np.full(3, row_sum), rtol=1e-5)

    def test_layer_and_list_heads(self):
        model_b = reuse_layers(_model_a(), 4, keras.layers.Dense(7))
        self.assertEqual(model_b.output_shape, (None, 7))
        self.assertEqual(len(model_b.layers), 1 + 4 + 1)
        head = [keras.layers.Dense(5, activation="relu"), keras.layers.Dense(2)]
        model_c = reuse_layers(_model_a(), 1, head)
        self.assertEqual(model_c.output_shape, (None, 2))
        self.assertEqual([layer.output.shape[-1] for layer in model_c.layers[1:]], [8, 5, 2])

    def test_functional_counts_layers_without_input_layer(self):
        model_a = _functional_a()
        self.assertIsInstance(model_a.layers[0], keras.layers.InputLayer)
        model_b = reuse_layers(model_a, 2, 4)
        self.assertEqual([w.shape for w in model_b.weights[:4]], [(4, 8), (8,), (8, 6), (6,)])
        self.assertEqual(model_b.output_shape, (None, 4))
        x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
        hidden_a = keras.Model(model_a.inputs, model_a.layers[2].output)(x)
        hidden_b = keras.Model(model_b.inputs, model_b.layers[2].output)(x)
        self.assertAllClose(hidden_b, hidden_a)
        # A model B can itself be reused (its cloned layers have several nodes).
        self.assertEqual(reuse_layers(model_b, 3, 2).output_shape, (None, 2))

    def test_model_b_takes_one_tensor_as_model_a_does(self):
        # Called on an array, a model whose input is a list of one tensor warns (Keras's
        # "The structure of `inputs` doesn't match"): B takes one tensor, like A.
        x = np.ones((3, 4), "float32")
        for model_a in (_model_a(), _functional_a()):
            model_b = reuse_layers(model_a, 2, 2)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                self.assertEqual(model_b(x).shape, (3, 2))
            self.assertEqual(model_b.input_shape, (None, 4))

    @parameterized.named_parameters(("zero", 0), ("too_many", 5), ("float", 2.0))
    def test_n_layers_out_of_range(self, n_layers):
        with self.assertRaisesRegex(
            ValueError,
            r"n_layers must be an integer between 1 and 4 \(the layers of 'model_a' without "
            r"its InputLayer\), got " + str(n_layers),
        ):
            reuse_layers(_model_a(), n_layers, 2)

    def test_non_linear_chain_and_bad_inputs(self):
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(4)(inputs)
        outputs = keras.layers.Add()([inputs, hidden])
        branched = keras.Model(inputs, outputs, name="branched")
        with self.assertRaisesRegex(ValueError, r"linear chain.*'add' of 'branched'"):
            reuse_layers(branched, 2, 2)
        with self.assertRaisesRegex(ValueError, r"number of classes must be >= 1, got 0"):
            reuse_layers(_model_a(), 2, 0)
        with self.assertRaisesRegex(ValueError, r"new_head must hold Keras layers, got 'relu'"):
            reuse_layers(_model_a(), 2, ["relu"])
        unbuilt = keras.Sequential([keras.layers.Dense(3)], name="unbuilt")
        with self.assertRaisesRegex(ValueError, r"'unbuilt' has no defined input"):
            reuse_layers(unbuilt, 1, 2)


class FreezeTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_freeze_counts(self):
        model_b = reuse_layers(_model_a(), 3, 2)  # Dense 40, BN 16(+16), Dense 54, head 14
        self.assertEqual(_trainable_count(model_b), 124)
        freeze(model_b, 3)
        self.assertEqual([layer.trainable for layer in model_b.layers[1:]], [0, 0, 0, 1])
        self.assertEqual(_trainable_count(model_b), 14)
        self.assertEqual(model_b.count_params(), 140)
        freeze(model_b)
        self.assertEqual(_trainable_count(model_b), 0)

    def test_freeze_until_layer_name(self):
        model_b = reuse_layers(_model_a(), 3, 2)
        freeze(model_b, model_b.layers[2].name)  # the BatchNormalization layer
        self.assertEqual([layer.trainable for layer in model_b.layers[1:]], [0, 0, 1, 1])
        self.assertEqual(_trainable_count(model_b), 54 + 14)

    @parameterized.named_parameters(
        ("all_keep_bn", None, True, [1, 0, 1, 1], 40 + 54 + 14),
        ("all_train_bn", None, False, [1, 1, 1, 1], 124),
        ("top1", 1, True, [0, 0, 1, 1], 54 + 14),
        ("top2_keep_bn", 2, True, [0, 0, 1, 1], 54 + 14),
        ("top2_train_bn", 2, False, [0, 1, 1, 1], 16 + 54 + 14),
        ("top0", 0, True, [0, 0, 0, 1], 14),
    )
    def test_unfreeze_counts(self, top_k, keep_bn_frozen, flags, count):
        model_b = reuse_layers(_model_a(), 3, 2)
        freeze(model_b, 3)
        unfreeze(model_b, top_k, base_layers=3, keep_bn_frozen=keep_bn_frozen)
        self.assertEqual([layer.trainable for layer in model_b.layers[1:]], flags)
        self.assertEqual(_trainable_count(model_b), count)

    def test_unfreeze_keeps_nested_bn_frozen(self):
        base = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(8), keras.layers.BatchNormalization()],
            name="base",
        )
        model = keras.Sequential([keras.Input((4,)), base, keras.layers.Dense(2)])
        freeze(model, 1)
        self.assertEqual(_trainable_count(model), 18)
        unfreeze(model, base_layers="base")
        self.assertEqual([layer.trainable for layer in base.layers], [True, False])
        self.assertEqual(_trainable_count(model), 40 + 18)

    def test_bad_counts(self):
        model_b = reuse_layers(_model_a(), 3, 2)
        message = r"top_k must be None or an integer between 0 and 3"
        with self.assertRaisesRegex(ValueError, message):
            unfreeze(model_b, 4, base_layers=3)
        with self.assertRaisesRegex(ValueError, r"until must be an integer between 0 and 4"):
            freeze(model_b, 9)
        with self.assertRaisesRegex(ValueError, r"Unknown layer 'nope' for until\. Valid: dense"):
            freeze(model_b, "nope")


class FineTuneTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.named_parameters(("tuple", False), ("dataset", True))
    def test_two_phases(self, as_dataset):
        x, y = _separable(200)
        model_b = reuse_layers(_model_a(), 3, 2)
        start = _snapshot(model_b.layers[1:])
        recorder = _PhaseRecorder(3)
        train = tf.data.Dataset.from_tensor_slices((x, y)).batch(32) if as_dataset else (x, y)
        # An optimizer object is a template: its config is kept, its rate replaced.
        optimizer = keras.optimizers.SGD(learning_rate=0.5, momentum=0.9) if as_dataset else "adam"
        histories = fine_tune(
            model_b,
            train,
            (x[:50], y[:50]),
            base_layers=3,
            optimizer=optimizer,
            learning_rate=1e-2,
            frozen_epochs=1,
            fine_tune_epochs=1,
            callbacks=[recorder],
            verbose=0,
        )
        phase1, phase2 = recorder.phases
        # Phase 1: the reused layers (BN moving statistics included) are bit-identical.
        for before, after in zip(start[:3], phase1["base"]):
            for w_before, w_after in zip(before, after):
                self.assertAllEqual(w_before, w_after)
        self.assertGreater(np.abs(phase1["head"][0][0] - start[3][0]).max(), 1e-4)
        # Phase 2: the Dense layers of the base move; the BN layer stays frozen.
        for i in (0, 2):
            self.assertGreater(np.abs(phase2["base"][i][0] - start[i][0]).max(), 1e-5)
        for w_before, w_after in zip(start[1], phase2["base"][1]):
            self.assertAllEqual(w_before, w_after)
        # A fresh optimizer per phase, the second at 0.1x the rate, 7 steps each.
        self.assertIsNot(phase1["optimizer"], phase2["optimizer"])
        expected_type = keras.optimizers.SGD if as_dataset else keras.optimizers.Adam
        for phase in (phase1, phase2):
            self.assertIsInstance(phase["optimizer"], expected_type)
        if as_dataset:
            self.assertAllClose(phase2["optimizer"].momentum, 0.9)
            self.assertEqual(float(optimizer.learning_rate), 0.5)  # the template is untouched
        self.assertAllClose(phase1["lr"], 1e-2)
        self.assertAllClose(phase2["lr"], 0.1 * phase1["lr"])
        self.assertEqual(int(phase1["optimizer"].iterations), 7)
        self.assertEqual(int(phase2["optimizer"].iterations), 7)
        self.assertEqual(sorted(histories), ["phase1", "phase2"])
        self.assertEqual(histories["phase1"].epoch, [0])
        self.assertEqual(histories["phase2"].epoch, [1])
        for history in histories.values():
            self.assertEqual(len(history.history["loss"]), 1)
            self.assertEqual(len(history.history["val_accuracy"]), 1)

    def test_learns_separable_problem(self):
        x, y = _separable(200)
        model_b = reuse_layers(_model_a(), 3, 1)
        histories = fine_tune(
            model_b,
            (x, y),
            base_layers=3,
            learning_rate=5e-2,
            frozen_epochs=3,
            fine_tune_epochs=2,
            loss="binary_crossentropy",
            verbose=0,
            batch_size=20,
        )
        self.assertEqual(len(histories["phase1"].history["accuracy"]), 3)
        self.assertEqual(len(histories["phase2"].history["accuracy"]), 2)
        self.assertGreaterEqual(histories["phase2"].history["accuracy"][-1], 0.95)
        self.assertAllClose(float(model_b.optimizer.learning_rate), 5e-3)

    @parameterized.named_parameters(
        ("all_layers", {"base_layers": 4}, r"base_layers=4 covers all 4 layers"),
        ("zero", {"base_layers": 0}, r"base_layers must be an integer between 1 and 4"),
        ("epochs", {"base_layers": 3, "frozen_epochs": -1}, r"frozen_epochs must be an"),
        ("factor", {"base_layers": 3, "fine_tune_lr_factor": 0.0}, r"fine_tune_lr_factor"),
    )
    def test_bad_arguments(self, kwargs, message):
        model_b = reuse_layers(_model_a(), 3, 2)
        with self.assertRaisesRegex(ValueError, message):
            fine_tune(model_b, _separable(20), verbose=0, **kwargs)
