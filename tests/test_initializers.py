"""Tests for recipes.initializers: variances, the chapter's table, error messages."""

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from recipes.initializers import INITIALIZER_NAMES, make_initializer, recommended_initializer

FAN_IN, FAN_OUT = 400, 600  # 240k weights: the variance estimate's relative error ~0.3%
# Max |w| / std: sqrt(3) for a uniform; 2 / 0.8796 for Keras's normal truncated at 2 sigma.
UNIFORM_RATIO = np.sqrt(3.0)
TRUNCATED_RATIO = 2.0 / 0.87962566103423978


def _dense_kernel(initializer):
    layer = keras.layers.Dense(FAN_OUT, kernel_initializer=initializer)
    layer.build((None, FAN_IN))
    return keras.ops.convert_to_numpy(layer.kernel).astype("float64")


class InitializersTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.named_parameters(
        ("glorot_normal", "glorot_normal", 2 / (FAN_IN + FAN_OUT), "normal"),
        ("glorot_uniform", "glorot_uniform", 2 / (FAN_IN + FAN_OUT), "uniform"),
        ("he_normal", "he_normal", 2 / FAN_IN, "normal"),
        ("he_uniform", "he_uniform", 2 / FAN_IN, "uniform"),
        ("lecun_normal", "lecun_normal", 1 / FAN_IN, "normal"),
        ("lecun_uniform", "lecun_uniform", 1 / FAN_IN, "uniform"),
        ("glorot", "glorot", 2 / (FAN_IN + FAN_OUT), "normal"),
        ("he", "he", 2 / FAN_IN, "normal"),
        ("lecun", "lecun", 1 / FAN_IN, "normal"),
        ("he_avg_uniform", "he_avg_uniform", 2 * 2 / (FAN_IN + FAN_OUT), "uniform"),
        ("fan_avg", "variance_scaling_fan_avg", 2 * 2 / (FAN_IN + FAN_OUT), "uniform"),
    )
    def test_dense_kernel_variance_and_distribution(self, name, variance, distribution):
        w = _dense_kernel(make_initializer(name))
        self.assertAllClose(w.var(), variance, rtol=0.03)
        self.assertAllClose(w.mean(), 0.0, atol=0.01 * np.sqrt(variance))
        ratio = np.abs(w).max() / np.sqrt(variance)
        expected = UNIFORM_RATIO if distribution == "uniform" else TRUNCATED_RATIO
        self.assertAllClose(ratio, expected, rtol=0.02)

    def test_random_normal_is_the_books_bad_init(self):
        init = make_initializer("random_normal")
        self.assertIsInstance(init, keras.initializers.RandomNormal)
        w = _dense_kernel(init)
        self.assertAllClose(w.std(), 1.0, rtol=0.02)
        self.assertGreater(np.abs(w).max(), 4.0)  # not truncated

    def test_fan_avg_variant_is_variance_scaling(self):
        init = make_initializer("he_avg_uniform")
        self.assertIsInstance(init, keras.initializers.VarianceScaling)
        config = init.get_config()
        self.assertEqual(
            (config["scale"], config["mode"], config["distribution"]), (2.0, "fan_avg", "uniform")
        )

    @parameterized.named_parameters(
        ("glorot", "glorot", keras.initializers.GlorotNormal),
        ("he", "he", keras.initializers.HeNormal),
        ("lecun", "lecun", keras.initializers.LecunNormal),
        ("he_uniform", "he_uniform", keras.initializers.HeUniform),
    )
    def test_names_map_to_keras_classes(self, name, cls):
        self.assertIs(type(make_initializer(name)), cls)

    def test_object_passes_through(self):
        init = keras.initializers.Orthogonal()
        self.assertIs(make_initializer(init), init)

    def test_seed_makes_values_repeatable(self):
        a = make_initializer("he_normal", seed=7)((20, 30))
        b = make_initializer("he_normal", seed=7)((20, 30))
        c = make_initializer("he_normal", seed=8)((20, 30))
        self.assertAllClose(a, b)
        self.assertNotAllClose(a, c)

    def test_every_listed_name_builds(self):
        for name in INITIALIZER_NAMES:
            self.assertIsInstance(make_initializer(name), keras.initializers.Initializer)

    def test_unknown_initializer_lists_valid_names(self):
        with self.assertRaisesRegex(
            ValueError, r"^Unknown initializer 'xavier'\. Valid: glorot_normal, glorot_uniform, "
        ):
            make_initializer("xavier")
        with self.assertRaisesRegex(ValueError, r"random_normal\.$"):
            make_initializer("xavier")

    @parameterized.parameters(
        (None, "glorot_uniform"),
        ("linear", "glorot_uniform"),
        ("tanh", "glorot_uniform"),
        ("sigmoid", "glorot_uniform"),
        ("softmax", "glorot_uniform"),
        ("relu", "he_normal"),
        ("leaky_relu", "he_normal"),
        ("prelu", "he_normal"),
        ("rrelu", "he_normal"),
        ("elu", "he_normal"),
        ("gelu", "he_normal"),
        ("swish", "he_normal"),
        ("silu", "he_normal"),
        ("mish", "he_normal"),
        ("selu", "lecun_normal"),
    )
    def test_recommended_initializer_table(self, activation, expected):
        self.assertEqual(recommended_initializer(activation), expected)
        self.assertIn(recommended_initializer(activation), INITIALIZER_NAMES)

    def test_recommended_unknown_activation_lists_valid(self):
        with self.assertRaisesRegex(
            ValueError, r"^Unknown activation 'relu6x'\. Valid: linear, none, tanh, .*selu\.$"
        ):
            recommended_initializer("relu6x")
