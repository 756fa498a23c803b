"""Tests for recipes.losses: balanced class weights and the label-agnostic losses."""

import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

import recipes  # noqa: F401  (registers the custom objects for load_model)
from recipes.losses import (
    LOSS_NAMES,
    AnyLabelCrossentropy,
    FocalLoss,
    SoftmaxMeanSquaredError,
    class_weights,
    make_loss,
)

CUSTOM = {
    "crossentropy": AnyLabelCrossentropy,
    "focal": FocalLoss,
    "mse": SoftmaxMeanSquaredError,
}


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _batch(n=8, k=4, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)).astype("float32") * 2.0
    labels = rng.integers(0, k, size=n)
    return labels, np.eye(k, dtype="float32")[labels], logits, _softmax(logits)


class ClassWeightsTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_balanced_formula(self):
        weights = class_weights([0, 0, 0, 1])
        self.assertEqual(set(weights), {0, 1})
        self.assertAllClose([weights[0], weights[1]], [4 / (2 * 3), 4 / (2 * 1)])
        self.assertIsInstance(weights[0], float)

    def test_weighted_totals_equal_per_class(self):
        labels = np.array([0] * 50 + [1] * 30 + [2] * 15 + [3] * 5)
        weights = class_weights(labels)
        totals = [weights[c] * np.sum(labels == c) for c in range(4)]
        self.assertAllClose(totals, [100 / 4] * 4)

    def test_one_hot_and_column_labels_match_integers(self):
        labels = np.array([0, 2, 2, 1, 2, 0])
        expected = class_weights(labels)
        self.assertEqual(class_weights(np.eye(3)[labels]), expected)
        self.assertEqual(class_weights(labels[:, None]), expected)
        self.assertEqual(class_weights(labels.astype("float32")), expected)
        self.assertEqual(class_weights([True, False, False]), {0: 0.75, 1: 1.5})

    def test_missing_class_raises_naming_it(self):
        with self.assertRaisesRegex(ValueError, r"Class 2 has no samples .*\[2\]"):
            class_weights([0, 1, 1], num_classes=3)
        with self.assertRaisesRegex(ValueError, r"Class 1 has no samples"):
            class_weights([0, 0, 2])

    @parameterized.named_parameters(
        ("out_of_range", [0, 3], 3, r"Labels must be in \[0, 3\), got values from 0 to 3"),
        ("negative", [-1, 0], None, r"Labels must be in"),
        ("empty", [], None, r"at least one label"),
        ("fractional", [0.5, 1.0], None, r"needs integer labels"),
    )
    def test_bad_labels(self, labels, num_classes, message):
        with self.assertRaisesRegex(ValueError, message):
            class_weights(labels, num_classes=num_classes)


class LossesTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.product(gamma=[0.0, 1.0, 2.0, 5.0], alpha=[None, 0.25, [0.1, 0.2, 0.3, 0.4]])
    def test_focal_equals_keras_on_one_hot(self, gamma, alpha):
        _, one_hot, _, probs = _batch()
        keras_alpha = 1.0 if alpha is None else alpha
        expected = keras.losses.CategoricalFocalCrossentropy(alpha=keras_alpha, gamma=gamma)
        ours = FocalLoss(gamma=gamma, alpha=alpha)
        self.assertAllClose(ours(one_hot, probs), expected(one_hot, probs), rtol=1e-6)

    def test_focal_gamma_zero_is_crossentropy(self):
        labels, one_hot, _, probs = _batch()
        expected = -np.mean(np.log(probs[np.arange(len(labels)), labels]))
        self.assertAllClose(FocalLoss(gamma=0.0)(labels, probs), expected, rtol=1e-5)
        self.assertAllClose(AnyLabelCrossentropy()(labels, probs), expected, rtol=1e-5)
        keras_cce = keras.losses.CategoricalCrossentropy()(one_hot, probs)
        self.assertAllClose(FocalLoss(gamma=0.0)(one_hot, probs), keras_cce, rtol=1e-6)

    @parameterized.named_parameters(
        ("crossentropy", "crossentropy", {}),
        ("focal", "focal", {"gamma": 2.0, "alpha": [0.4, 0.3, 0.2, 0.1]}),
        ("focal_smoothing", "focal", {"label_smoothing": 0.1}),
        ("mse", "mse", {}),
        ("mse_logits", "mse", {"from_logits": True}),
    )
    def test_integer_labels_equal_one_hot(self, name, kwargs):
        labels, one_hot, logits, probs = _batch()
        loss = make_loss(name, **kwargs)
        y_pred = logits if kwargs.get("from_logits") else probs
        expected = loss(one_hot, y_pred)
        self.assertAllClose(loss(labels, y_pred), expected, rtol=1e-6)
        self.assertAllClose(loss(labels[:, None], y_pred), expected, rtol=1e-6)
        self.assertAllClose(loss(labels.astype("float32"), y_pred), expected, rtol=1e-6)

    def test_per_class_alpha_weights_each_class_term(self):
        labels, _, _, probs = _batch(n=12)
        alpha = np.array([0.5, 1.0, 2.0, 4.0])
        weighted = FocalLoss(alpha=list(alpha), reduction=None)(labels, probs)
        plain = FocalLoss(reduction=None)(labels, probs)
        self.assertAllClose(weighted, alpha[labels] * np.asarray(plain), rtol=1e-6)

    def test_alpha_from_class_weights_dict(self):
        _, _, _, probs = _batch(n=6)
        labels = np.array([0, 1, 2, 3, 3, 3])
        weights = class_weights(labels, num_classes=4)
        loss = FocalLoss(alpha=weights)
        self.assertEqual(loss.alpha, [weights[c] for c in range(4)])
        expected = FocalLoss(alpha=[weights[c] for c in range(4)])(labels, probs)
        self.assertAllClose(loss(labels, probs), expected)

    def test_hand_computed_two_samples(self):
        probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], dtype="float32")
        labels = np.array([0, 2])
        # -(1 - p)^gamma log p for the true class, then the mean over the batch.
        expected = (0.3**2 * -np.log(0.7) + 0.4**2 * -np.log(0.6)) / 2
        self.assertAllClose(FocalLoss(gamma=2.0)(labels, probs), expected, rtol=1e-5)
        self.assertAllClose(expected, 0.0569164, rtol=1e-5)
        alpha = [0.25, 0.5, 0.75]
        expected_alpha = (0.25 * 0.3**2 * -np.log(0.7) + 0.75 * 0.4**2 * -np.log(0.6)) / 2
        self.assertAllClose(FocalLoss(alpha=alpha)(labels, probs), expected_alpha, rtol=1e-5)

    @parameterized.parameters("crossentropy", "focal", "mse")
    def test_from_logits_matches_softmax(self, name):
        labels, _, logits, probs = _batch()
        on_logits = make_loss(name, from_logits=True)(labels, logits)
        self.assertAllClose(on_logits, make_loss(name)(labels, probs), rtol=1e-5)

    def test_mse_on_softmax_formula(self):
        labels, one_hot, logits, probs = _batch()
        expected = np.mean((probs - one_hot) ** 2)
        self.assertAllClose(make_loss("mse")(labels, probs), expected, rtol=1e-6)
        smooth = one_hot * 0.8 + 0.2 / 4
        loss = make_loss("mse", label_smoothing=0.2)
        self.assertAllClose(loss(labels, probs), np.mean((probs - smooth) ** 2), rtol=1e-6)

    def test_crossentropy_label_smoothing_matches_keras(self):
        labels, one_hot, _, probs = _batch()
        expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(one_hot, probs)
        got = make_loss("crossentropy", label_smoothing=0.1)(labels, probs)
        self.assertAllClose(got, expected, rtol=1e-6)

    @parameterized.named_parameters(
        ("crossentropy", AnyLabelCrossentropy, {"from_logits": True, "label_smoothing": 0.1}),
        ("focal", FocalLoss, {"gamma": 1.5, "alpha": [0.2, 0.8], "from_logits": True}),
        ("focal_scalar", FocalLoss, {"alpha": 0.25, "reduction": "sum", "name": "f"}),
        ("mse", SoftmaxMeanSquaredError, {"label_smoothing": 0.05}),
    )
    def test_config_round_trip(self, cls, kwargs):
        loss = cls(**kwargs)
        config = loss.get_config()
        for key, value in kwargs.items():
            self.assertEqual(config[key], value)
        self.assertEqual(cls.from_config(config).get_config(), config)
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
        self.assertIsInstance(restored, cls)
        self.assertEqual(restored.get_config(), config)

    @parameterized.parameters("crossentropy", "focal", "mse")
    def test_saved_model_keeps_the_loss(self, name):
        rng = np.random.default_rng(1)
        x = rng.normal(size=(64, 5)).astype("float32")
        y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax")])
        loss = make_loss(name, alpha=[0.5, 1.0, 2.0]) if name == "focal" else make_loss(name)
        model.compile("adam", loss=loss)
        model.fit(x, y, epochs=1, verbose=0)
        path = os.path.join(self.get_temp_dir(), f"{name}.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
        self.assertIsInstance(loaded.loss, type(loss))
        self.assertEqual(loaded.loss.get_config(), loss.get_config())
        expected = model.evaluate(x, y, verbose=0)
        self.assertAllClose(loaded.evaluate(x, y, verbose=0), expected, rtol=1e-6)
        self.assertAllClose(expected, loss(y, model.predict(x, verbose=0)), rtol=1e-5)

    @parameterized.named_parameters(
        ("crossentropy", "crossentropy", AnyLabelCrossentropy),
        ("focal", "focal", FocalLoss),
        ("binary_crossentropy", "binary_crossentropy", keras.losses.BinaryCrossentropy),
        ("binary_focal", "binary_focal", keras.losses.BinaryFocalCrossentropy),
        ("mse", "mse", SoftmaxMeanSquaredError),
    )
    def test_make_loss_types(self, name, cls):
        self.assertIn(name, LOSS_NAMES)
        loss = make_loss(name.upper(), from_logits=True)
        self.assertIsInstance(loss, cls)
        self.assertTrue(loss.get_config()["from_logits"])

    def test_binary_losses_match_formulas(self):
        y = np.array([[1.0], [0.0], [1.0]], dtype="float32")
        p = np.array([[0.9], [0.2], [0.4]], dtype="float32")
        bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        self.assertAllClose(make_loss("binary_crossentropy")(y, p), bce.mean(), rtol=1e-5)
        p_t = np.where(y == 1, p, 1 - p)
        a_t = np.where(y == 1, 0.75, 0.25)
        focal = a_t * (1 - p_t) ** 2 * bce
        got = make_loss("binary_focal", gamma=2.0, alpha=0.75)(y, p)
        self.assertAllClose(got, focal.mean(), rtol=1e-5)
        self.assertFalse(make_loss("binary_focal").get_config()["apply_class_balancing"])

    def test_make_loss_passes_objects_through(self):
        loss = FocalLoss(gamma=3.0)
        self.assertIs(make_loss(loss), loss)
        with self.assertRaisesRegex(ValueError, r"got a Loss object \(FocalLoss\) and options"):
            make_loss(loss, gamma=1.0)

    def test_unknown_name_lists_valid(self):
        with self.assertRaisesRegex(
            ValueError,
            r"^Unknown loss 'hinge'\. Valid: crossentropy, focal, binary_crossentropy, "
            r"binary_focal, mse\.$",
        ):
            make_loss("hinge")

    @parameterized.named_parameters(
        ("alpha_on_crossentropy", "crossentropy", {"alpha": 0.5}, r"alpha only applies"),
        ("alpha_list_binary", "binary_focal", {"alpha": [0.1, 0.9]}, r"single alpha"),
        ("smoothing", "focal", {"label_smoothing": 1.5}, r"label_smoothing must be in \[0, 1\]"),
        ("gamma", "focal", {"gamma": -1.0}, r"gamma must be >= 0, got -1\.0"),
        ("gamma_nan", "focal", {"gamma": float("nan")}, r"gamma must be a finite number >= 0"),
        ("smoothing_nan", "focal", {"label_smoothing": float("nan")},
         r"label_smoothing must be a finite number in \[0, 1\]"),
        ("alpha", "focal", {"alpha": [0.5, -0.1]}, r"alpha must be >= 0"),
    )
    def test_bad_options(self, name, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            make_loss(name, **kwargs)

    def test_alpha_length_must_match_classes(self):
        labels, _, _, probs = _batch(k=4)
        with self.assertRaisesRegex(ValueError, r"alpha has 3 values but y_pred has 4 classes"):
            FocalLoss(alpha=[1.0, 1.0, 1.0])(labels, probs)
