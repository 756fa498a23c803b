"""Tests for recipes.activations: closed forms, RReLU's slopes, serialization."""

import math
import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from recipes.activations import ACTIVATION_NAMES, RReLU, make_activation

X = np.linspace(-3.0, 3.0, 13).reshape(1, -1).astype("float32")
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * (np.exp(x) - 1.0))


CLOSED_FORMS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.2 * x),
    "prelu": lambda x: np.maximum(x, 0.0),  # alpha starts at zeros
    "rrelu": lambda x: np.where(x >= 0, x, (1 / 8 + 1 / 3) / 2 * x),  # inference
    "elu": _elu,
    "selu": lambda x: SELU_SCALE * _elu(x, SELU_ALPHA),
    "gelu": lambda x: 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0))),
    "swish": lambda x: x * _sigmoid(x),
    "silu": lambda x: x * _sigmoid(x),
    "mish": lambda x: x * np.tanh(np.log1p(np.exp(x))),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "linear": lambda x: x,
}


class ActivationsTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_every_name_has_a_closed_form_test(self):
        self.assertCountEqual(ACTIVATION_NAMES, CLOSED_FORMS)

    @parameterized.parameters(*ACTIVATION_NAMES)
    def test_layer_matches_closed_form(self, name):
        layer = make_activation(name, name=f"act_{name}")
        self.assertIsInstance(layer, keras.layers.Layer)
        self.assertEqual(layer.name, f"act_{name}")
        out = keras.ops.convert_to_numpy(layer(X, training=False))
        self.assertAllClose(out, CLOSED_FORMS[name](X.astype("float64")), atol=1e-5, rtol=1e-5)

    def test_leaky_relu_slope_argument(self):
        layer = make_activation("leaky_relu", negative_slope=0.1)
        self.assertIsInstance(layer, keras.layers.LeakyReLU)
        self.assertAllClose(layer(X), np.where(X >= 0, X, 0.1 * X))
        self.assertEqual(make_activation("leaky_relu").negative_slope, 0.2)

    def test_elu_alpha_argument(self):
        layer = make_activation("elu", alpha=0.5)
        self.assertAllClose(layer(X), _elu(X, 0.5), atol=1e-6)

    def test_prelu_learns_its_slope_parameter(self):
        layer = make_activation("prelu")
        self.assertIsInstance(layer, keras.layers.PReLU)
        layer.build(X.shape)
        layer.alpha.assign(np.full((13,), 0.25, "float32"))
        self.assertAllClose(layer(X), np.where(X >= 0, X, 0.25 * X))
        self.assertEqual(len(layer.trainable_weights), 1)

    def test_layer_passes_through(self):
        layer = keras.layers.ReLU()
        self.assertIs(make_activation(layer), layer)

    def test_unknown_activation_lists_valid_names(self):
        with self.assertRaisesRegex(
            ValueError, r"^Unknown activation 'relu6x'\. Valid: relu, leaky_relu, prelu, rrelu, "
        ):
            make_activation("relu6x")

    def test_argument_that_does_not_apply_is_rejected(self):
        with self.assertRaisesRegex(
            ValueError,
            r"^Unknown argument\(s\) \['alpha'\] for activation 'leaky_relu'\. "
            r"Valid: negative_slope, name, dtype\.$",
        ):
            make_activation("leaky_relu", alpha=0.2)

    def test_rrelu_inference_slope_is_the_mean(self):
        lower, upper = 0.1, 0.3
        layer = RReLU(lower=lower, upper=upper)
        x = -np.arange(1.0, 101.0, dtype="float32").reshape(4, 25)
        out = keras.ops.convert_to_numpy(layer(x, training=False))
        self.assertAllClose(out / x, np.full_like(x, (lower + upper) / 2), atol=1e-7)
        self.assertAllClose(layer(-x, training=False), -x)

    def test_rrelu_training_slopes_vary_within_bounds(self):
        lower, upper = 1 / 8, 1 / 3
        layer = make_activation("rrelu")
        x = -np.ones((200, 50), dtype="float32")
        slopes = keras.ops.convert_to_numpy(layer(x, training=True)) / x
        self.assertGreaterEqual(slopes.min(), lower - 1e-7)
        self.assertLessEqual(slopes.max(), upper + 1e-7)
        self.assertGreater(len(np.unique(slopes)), 1000)
        self.assertAllClose(slopes.mean(), (lower + upper) / 2, atol=0.005)
        self.assertAllClose(slopes.var(), (upper - lower) ** 2 / 12, rtol=0.05)
        again = keras.ops.convert_to_numpy(layer(x, training=True)) / x
        self.assertNotAllClose(slopes, again)
        self.assertAllClose(layer(-x, training=True), -x)  # positives pass unchanged

    def test_rrelu_bad_bounds(self):
        with self.assertRaisesRegex(ValueError, r"RReLU needs 0 <= lower <= upper, got lower=0.5"):
            RReLU(lower=0.5, upper=0.2)

    def test_rrelu_config_round_trip(self):
        layer = RReLU(lower=0.05, upper=0.4, seed=3, name="r")
        config = layer.get_config()
        self.assertEqual((config["lower"], config["upper"], config["seed"]), (0.05, 0.4, 3))
        clone = RReLU.from_config(config)
        self.assertEqual(clone.get_config(), config)
        self.assertAllClose(clone(X), layer(X))

    def test_rrelu_model_trains_saves_and_reloads(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(64, 6)).astype("float32")
        y = (x[:, 0] > 0).astype("int32")
        model = keras.Sequential(
            [keras.Input((6,)), keras.layers.Dense(8), RReLU(lower=0.1, upper=0.3, name="rrelu"),
             keras.layers.Dense(2, activation="softmax")]
        )  # fmt: skip
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        path = os.path.join(self.get_temp_dir(), "rrelu.keras")
        model.save(path)
        reloaded = keras.models.load_model(path)
        self.assertIsInstance(reloaded.get_layer("rrelu"), RReLU)
        self.assertEqual(reloaded.get_layer("rrelu").get_config()["lower"], 0.1)
        self.assertAllClose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))
