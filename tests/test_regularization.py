"""Tests for recipes.regularization: l1/l2 penalties, max-norm, MC dropout."""

import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from recipes.builders import build_mlp
from recipes.regularization import MCDropout, make_regularizer, mc_predict
from recipes.specs import MLPSpec


def _data(n=32, d=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype("float32")


def _mc_model(rate=0.5, seed=None):
    return keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
         MCDropout(rate, seed=seed, name="mc"), keras.layers.Dense(3, activation="softmax")]
    )  # fmt: skip


class RegularizationTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_make_regularizer_none_when_both_zero(self):
        self.assertIsNone(make_regularizer())
        self.assertIsNone(make_regularizer(0, 0.0))

    @parameterized.parameters((0.01, 0.0), (0.0, 0.02), (0.01, 0.02))
    def test_make_regularizer_value(self, l1, l2):
        w = np.array([[1.0, -2.0], [0.5, 3.0]], dtype="float32")
        reg = make_regularizer(l1, l2)
        self.assertIsInstance(reg, keras.regularizers.L1L2)
        self.assertAllClose(reg(w), l1 * np.abs(w).sum() + l2 * (w**2).sum())

    def test_make_regularizer_negative(self):
        with self.assertRaisesRegex(ValueError, r"l1 and l2 must be >= 0, got l1=-0.1, l2=0"):
            make_regularizer(-0.1, 0)

    def test_model_losses_hold_the_penalty_of_hidden_kernels(self):
        l1, l2 = 0.01, 0.001
        model = build_mlp(MLPSpec(hidden_units=(4, 3), l1=l1, l2=l2), (5,), 2)
        expected = 0.0
        for i, shape in enumerate([(5, 4), (4, 3)]):
            w = np.arange(np.prod(shape), dtype="float32").reshape(shape) / 10 - 0.5
            model.get_layer(f"hidden_{i}").kernel.assign(w)
            expected += l1 * np.abs(w).sum() + l2 * (w**2).sum()
        self.assertLen(model.losses, 2)  # the output layer is not penalized
        self.assertAllClose(sum(keras.ops.convert_to_numpy(v) for v in model.losses), expected)

    def test_max_norm_clips_columns_after_a_training_step(self):
        c = 1.5
        model = build_mlp(MLPSpec(hidden_units=(8,), max_norm=c), (6,), 3)
        kernel = model.get_layer("hidden_0").kernel
        kernel.assign(np.full((6, 8), 2.0, "float32"))
        self.assertGreater(np.linalg.norm(kernel.numpy(), axis=0).min(), c)  # can fail
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
        model.train_on_batch(_data(), np.zeros(32, "int32"))
        norms = np.linalg.norm(kernel.numpy(), axis=0)
        self.assertAllClose(norms, np.full(8, c), rtol=1e-4)  # all were above c: all clipped
        out_kernel = model.get_layer("output").kernel.numpy()
        self.assertIsNone(model.get_layer("output").kernel_constraint)
        self.assertEqual(out_kernel.shape, (8, 3))

    def test_mc_dropout_is_active_at_inference(self):
        rate = 0.5
        layer = MCDropout(rate)
        x = np.ones((50, 40), "float32")
        out = keras.ops.convert_to_numpy(layer(x, training=False))
        self.assertAllClose(np.unique(out), [0.0, 1.0 / (1.0 - rate)])
        self.assertAllClose((out == 0).mean(), rate, atol=0.03)
        model = _mc_model()
        a, b = model.predict(_data(), verbose=0), model.predict(_data(), verbose=0)
        self.assertNotAllClose(a, b)
        self.assertAllClose(keras.layers.Dropout(rate)(x, training=False), x)

    def test_mc_dropout_config_round_trip(self):
        layer = MCDropout(0.3, seed=4, name="mc")
        config = layer.get_config()
        self.assertEqual((config["rate"], config["seed"]), (0.3, 4))
        self.assertEqual(MCDropout.from_config(config).get_config(), config)

    def test_mc_dropout_model_save_and_reload(self):
        # Seeded: the seed generator's state is saved, so the reloaded model draws the same
        # masks as the original from the moment of saving.
        model = _mc_model(seed=1)
        x = _data()
        path = os.path.join(self.get_temp_dir(), "mc.keras")
        model.save(path)
        reloaded = keras.models.load_model(path)
        self.assertIsInstance(reloaded.get_layer("mc"), MCDropout)
        first, first_reloaded = model.predict(x, verbose=0), reloaded.predict(x, verbose=0)
        self.assertAllClose(first_reloaded, first)
        self.assertNotAllClose(model.predict(x, verbose=0), first)  # still stochastic

    def test_mc_predict_mean_and_std(self):
        model = _mc_model()
        x = _data(20)
        mean, std = mc_predict(model, x, samples=30)
        self.assertEqual(mean.shape, (20, 3))
        self.assertEqual(std.shape, (20, 3))
        self.assertAllClose(mean.sum(axis=1), np.ones(20), atol=1e-5)
        self.assertGreater(std.min(), 0.0)
        batched, _ = mc_predict(model, x, samples=30, batch_size=7)
        self.assertEqual(batched.shape, (20, 3))
        self.assertAllClose(batched.sum(axis=1), np.ones(20), atol=1e-5)

    def test_mc_predict_on_ordinary_dropout(self):
        model = build_mlp(MLPSpec(hidden_units=(16,), dropout_rate=0.5), (6,), 3)
        x = _data(10)
        mean, std = mc_predict(model, x, samples=20)
        self.assertGreater(std.min(), 0.0)
        self.assertAllClose(mean.sum(axis=1), np.ones(10), atol=1e-5)
        _, std_off = mc_predict(model, x, samples=5, training=False)
        self.assertAllClose(std_off, np.zeros_like(std_off))  # dropout off: deterministic

    def test_mc_predict_leaves_batch_norm_statistics_unchanged(self):
        spec = MLPSpec(hidden_units=(16,), batch_norm="before", dropout_rate=0.3)
        model = build_mlp(spec, (6,), 3)
        bn = model.get_layer("bn_0")
        before = bn.moving_mean.numpy().copy(), bn.moving_variance.numpy().copy()
        x = _data(40) * 3 + 2
        model(x, training=True)  # Keras 3: a training call moves the averages...
        self.assertNotAllClose(bn.moving_mean.numpy(), before[0])
        bn.moving_mean.assign(before[0])
        bn.moving_variance.assign(before[1])
        mc_predict(model, x, samples=5)  # ...but mc_predict puts them back
        self.assertAllClose(bn.moving_mean.numpy(), before[0])
        self.assertAllClose(bn.moving_variance.numpy(), before[1])

    def test_mc_predict_bad_arguments(self):
        model = _mc_model()
        with self.assertRaisesRegex(ValueError, r"samples must be >= 1, got 0"):
            mc_predict(model, _data(), samples=0)
        with self.assertRaisesRegex(ValueError, r"batch_size must be >= 1 or None, got 0"):
            mc_predict(model, _data(), batch_size=0)
