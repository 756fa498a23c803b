"""Tests for recipes.selu: a 100-layer SELU net self-normalizes; layer statistics."""

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from absl.testing import parameterized

from recipes.builders import build_mlp
from recipes.selu import build_selu_mlp, layer_statistics
from recipes.specs import MLPSpec


def _inputs(n=1000, width=50, seed=0):
    # Far from standardized on purpose: the Normalization layer must fix it.
    return np.random.default_rng(seed).normal(5.0, 3.0, (n, width)).astype("float32")


class SeluTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_hundred_layer_selu_net_self_normalizes(self):
        x = _inputs()
        model = build_selu_mlp(100, 100, (50,), 10, x_train=x)
        stats = layer_statistics(model, x)
        self.assertLen(stats, 100)
        last = stats.iloc[-1]
        self.assertEqual(last["layer"], "act_99")
        self.assertBetween(last["mean"], -0.2, 0.2)
        self.assertBetween(last["std"], 0.7, 1.3)
        self.assertLess(stats["mean"].abs().max(), 0.2)  # every layer, not just the last
        self.assertBetween(stats["std"].min(), 0.7, 1.3)
        self.assertBetween(stats["std"].max(), 0.7, 1.3)

    def test_hundred_layer_sigmoid_net_with_unit_normal_weights_does_not(self):
        x = _inputs()
        spec = MLPSpec.deep(100, 100, activation="sigmoid", initializer="random_normal",
                            input_norm="normalization")  # fmt: skip
        model = build_mlp(spec, (50,), 10, adapt_data=x)
        last = layer_statistics(model, x).iloc[-1]
        # Saturated sigmoids: outputs pile up at 0 and 1, mean ~0.5, std < 0.5.
        self.assertGreater(abs(last["mean"]), 0.3)
        self.assertFalse(0.7 <= last["std"] <= 1.3)

    def test_selu_conditions_are_met(self):
        x = _inputs(200, 8)
        model = build_selu_mlp(3, 16, (8,), 4, x_train=x, alpha_dropout=0.1, name="snn")
        self.assertEqual(model.name, "snn")
        self.assertEqual(model.layers[1].name, "input_normalization")
        self.assertAllClose(np.ravel(model.layers[1].mean), x.mean(axis=0), atol=1e-4)
        for i in range(3):
            dense = model.get_layer(f"hidden_{i}")
            self.assertIsInstance(dense.kernel_initializer, keras.initializers.LecunNormal)
            self.assertEqual(model.get_layer(f"act_{i}").get_config()["activation"], "selu")
            self.assertIs(type(model.get_layer(f"dropout_{i}")), keras.layers.AlphaDropout)
            self.assertEqual(model.get_layer(f"dropout_{i}").rate, 0.1)
        classes = {type(layer).__name__ for layer in model.layers}
        self.assertEqual(
            classes, {"InputLayer", "Normalization", "Dense", "Activation", "AlphaDropout"}
        )
        plain = build_selu_mlp(3, 16, (8,), 4, x_train=x)
        self.assertEqual(plain.name, "selu_mlp_3x16")
        self.assertNotIn("AlphaDropout", {type(layer).__name__ for layer in plain.layers})

    def test_x_train_is_required(self):
        with self.assertRaisesRegex(
            ValueError, r"build_selu_mlp needs x_train: self-normalization only holds for"
        ):
            build_selu_mlp(3, 16, (8,), 4)

    def test_bad_depth(self):
        with self.assertRaisesRegex(ValueError, r"depth and units must be >= 1, got depth=0"):
            build_selu_mlp(0, 16, (8,), 4, x_train=_inputs(10, 8))

    def test_layer_statistics_values(self):
        x = _inputs(64, 6)
        model = build_mlp(MLPSpec(hidden_units=(8, 5), activation="tanh"), (6,), 3)
        stats = layer_statistics(model, x)
        self.assertIsInstance(stats, pd.DataFrame)
        self.assertEqual(list(stats.columns), ["layer", "depth", "mean", "std"])
        self.assertEqual(list(stats["layer"]), ["act_0", "act_1"])
        self.assertEqual(list(stats["depth"]), [0, 1])
        for name, row in zip(["act_0", "act_1"], stats.itertuples()):
            out = keras.Model(model.input, model.get_layer(name).output)(x).numpy()
            self.assertAllClose([row.mean, row.std], [out.mean(), out.std()], rtol=1e-5)

    def test_layer_statistics_named_layers(self):
        x = _inputs(32, 6)
        model = build_mlp(MLPSpec(hidden_units=(8,)), (6,), 3)
        stats = layer_statistics(model, x, layer_names=["output"])
        self.assertEqual(list(stats["layer"]), ["output"])
        self.assertAllClose(stats["mean"].iloc[0], 1 / 3, atol=1e-6)  # softmax rows sum to 1

    def test_layer_statistics_errors(self):
        model = build_mlp(MLPSpec(hidden_units=(8,)), (6,), 3)
        with self.assertRaisesRegex(
            ValueError,
            r"^Unknown layer\(s\) \['act_7'\]\. Valid: input_layer.*, hidden_0, act_0, output\.$",
        ):
            layer_statistics(model, _inputs(4, 6), layer_names=["act_7"])
        bare = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
        with self.assertRaisesRegex(ValueError, r"found no layer to measure"):
            layer_statistics(bare, _inputs(4, 6))
