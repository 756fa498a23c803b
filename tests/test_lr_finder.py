"""Tests for recipes.lr_finder: the sweep, per-batch losses, smoothing, restoring."""

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from absl.testing import parameterized

from recipes.lr_finder import LRFinderResult, find_learning_rate
from recipes.schedules import PowerSchedule


def regression_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0], "float32") + 0.1 * rng.normal(size=n))[:, None]
    return x, y.astype("float32")


def mlp(optimizer="sgd", learning_rate=1e-3):
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Dropout(0.1),
        keras.layers.Dense(1),
    ])
    opt = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[optimizer]
    model.compile(optimizer=opt(learning_rate=learning_rate), loss="mse", metrics=["mae"])
    return model


def state(model):
    return [v.numpy().copy() for v in model.variables], \
        [v.numpy().copy() for v in model.optimizer.variables]


class LRFinderTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_sweep_rates_smoothing_and_suggestion(self):
        x, y = regression_data()
        model = mlp()
        result = find_learning_rate(model, (x, y), min_lr=1e-4, max_lr=1.0, steps=40,
                                    batch_size=16)
        self.assertIsInstance(result, LRFinderResult)
        self.assertIsInstance(result.table, pd.DataFrame)
        self.assertEqual(list(result.table.columns), ["learning_rate", "loss", "smoothed_loss"])
        table = result.table
        n = len(table)
        self.assertGreaterEqual(n, 2)
        lrs = table["learning_rate"].to_numpy()
        self.assertTrue(np.all(np.diff(lrs) > 0))
        self.assertAllClose(lrs, 1e-4 * (1.0 / 1e-4) ** (np.arange(n) / 39), rtol=1e-12)
        # bias-corrected exponential moving average, beta = 0.98
        avg, expected = 0.0, []
        for i, loss in enumerate(table["loss"]):
            avg = 0.98 * avg + 0.02 * loss
            expected.append(avg / (1 - 0.98 ** (i + 1)))
        self.assertAllClose(table["smoothed_loss"], expected)
        self.assertAllClose(table["smoothed_loss"][0], table["loss"][0])
        self.assertBetween(result.suggestion, 1e-4, 1.0)
        best = int(np.argmin(table["smoothed_loss"]))
        self.assertGreaterEqual(best, 2)
        self.assertEqual(result.min_loss_lr, lrs[best])
        self.assertAllClose(result.suggestion, max(lrs[best] / 10, 1e-4))
        slope = np.gradient(table["smoothed_loss"][: best + 1], np.log10(lrs[: best + 1]))
        self.assertEqual(result.steepest_lr, lrs[int(np.argmin(slope))])
        self.assertLessEqual(result.steepest_lr, result.min_loss_lr)

    def test_suggestion_when_the_loss_only_rises(self):
        # min at the first step: suggestion is clamped to min_lr, no steepest descent
        x, y = regression_data(64)
        model = mlp(learning_rate=1e-3)
        result = find_learning_rate(model, (x, y), min_lr=50.0, max_lr=100.0, steps=4,
                                    batch_size=16, smoothing=0.0, stop_factor=1e9)
        self.assertEqual(result.min_loss_lr, 50.0)
        self.assertEqual(result.suggestion, 50.0)
        self.assertIsNone(result.steepest_lr)

    def test_stops_early_when_the_loss_explodes(self):
        x, y = regression_data()
        model = mlp()
        result = find_learning_rate(model, (x, y), min_lr=1e-4, max_lr=10.0, steps=60,
                                    batch_size=8)
        self.assertTrue(result.stopped_early)
        self.assertLess(len(result.table), 60)
        smoothed = result.table["smoothed_loss"].to_numpy()
        self.assertGreater(smoothed[-1], 4.0 * smoothed.min())
        self.assertTrue(np.all(smoothed[:-1] <= 4.0 * np.minimum.accumulate(smoothed)[:-1]))
        self.assertLess(result.suggestion, result.table["learning_rate"].iloc[-1])

    def test_restores_weights_optimizer_and_learning_rate_bit_for_bit(self):
        x, y = regression_data()
        model = mlp("adam", learning_rate=2e-3)
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)  # non-zero Adam moments
        weights, opt_vars = state(model)
        self.assertGreater(int(model.optimizer.iterations), 0)
        find_learning_rate(model, (x, y), min_lr=1e-4, max_lr=10.0, batch_size=16)
        new_weights, new_opt_vars = state(model)
        self.assertEqual(len(new_opt_vars), len(opt_vars))
        for before, after in zip(weights + opt_vars, new_weights + new_opt_vars):
            self.assertAllEqual(before, after)
        self.assertEqual(float(model.optimizer.learning_rate), np.float32(2e-3))
        # and the model still trains as before the test: the same next step as a twin
        # given the saved state (weights, dropout seed, optimizer variables)
        twin = mlp("adam", learning_rate=2e-3)
        twin.optimizer.build(twin.trainable_variables)
        for v, value in zip(twin.variables + twin.optimizer.variables, weights + opt_vars):
            v.assign(value)
        self.assertAllClose(model.train_on_batch(x[:32], y[:32]),
                            twin.train_on_batch(x[:32], y[:32]))

    def test_unbuilt_optimizer_is_left_at_its_fresh_state(self):
        x, y = regression_data(64)
        model = mlp("adam")
        find_learning_rate(model, (x, y), steps=5, batch_size=16)
        self.assertEqual(int(model.optimizer.iterations), 0)
        for v in model.optimizer.variables[2:]:  # moments back to zeros
            self.assertAllEqual(v.numpy(), np.zeros(v.shape))

    def test_losses_are_per_batch_not_running_means(self):
        # w = 0 and a tiny rate: batch k (targets all 8 - k) has loss (8 - k)^2.
        x = np.ones((64, 1), "float32")
        y = np.repeat(np.arange(8, 0, -1, dtype="float32"), 8)[:, None]
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
            1, use_bias=False, kernel_initializer="zeros")])
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        result = find_learning_rate(model, (x, y), min_lr=1e-12, max_lr=1e-11, batch_size=8)
        per_batch = np.arange(8, 0, -1) ** 2.0
        running_mean = np.cumsum(per_batch) / np.arange(1, 9)
        self.assertEqual(len(result.table), 8)
        self.assertAllClose(result.table["loss"], per_batch, rtol=1e-5)
        self.assertNotAllClose(result.table["loss"], running_mean)
        self.assertFalse(result.stopped_early)

    def test_dataset_input_and_cycling(self):
        x, y = regression_data(64)
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
        model = mlp()
        result = find_learning_rate(model, ds, min_lr=1e-5, max_lr=1e-3)
        self.assertEqual(len(result.table), 4)  # one epoch by default
        result = find_learning_rate(model, ds, min_lr=1e-5, max_lr=1e-3, steps=10)
        self.assertEqual(len(result.table), 10)  # batches cycle
        self.assertAllClose(result.table["learning_rate"].iloc[[0, -1]], [1e-5, 1e-3])

    def test_not_compiled(self):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        with self.assertRaisesRegex(ValueError, r"needs a compiled model: call "
                                                r"model\.compile\(optimizer=\.\.\., loss=\.\.\.\)"):
            find_learning_rate(model, regression_data(32))

    def test_scheduled_learning_rate_is_refused(self):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(PowerSchedule(0.1, 10)), loss="mse")
        with self.assertRaisesRegex(ValueError, "float learning rate, not a LearningRateSchedule"):
            find_learning_rate(model, regression_data(32))

    def test_unbuilt_model_is_refused(self):
        model = keras.Sequential([keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        with self.assertRaisesRegex(ValueError, r"needs a built model: start it with keras\.Input"):
            find_learning_rate(model, regression_data(32))

    @parameterized.parameters(
        ({"min_lr": 1.0, "max_lr": 0.1}, r"Need 0 < min_lr < max_lr, got min_lr=1\.0, max_lr=0\.1"),
        ({"min_lr": 0.0}, r"min_lr must be > 0, got 0\.0\."),
        ({"max_lr": float("inf")}, r"max_lr must be a finite number > 0, got inf\."),
        ({"steps": 0}, r"steps must be >= 2, got 0\."),
        ({"steps": 1}, r"steps must be >= 2, got 1\."),
        ({"steps": 2.5}, r"steps must be an integer >= 2, got 2\.5\."),
        ({"batch_size": 0}, r"batch_size must be >= 1, got 0\."),
        ({"smoothing": 1.0}, r"smoothing must be in \[0, 1\), got 1\.0\."),
        ({"stop_factor": 1.0}, r"stop_factor must be > 1, got 1\.0\."),
        ({"stop_factor": float("nan")}, r"stop_factor must be a finite number, got nan\."),
        ({"batch_size": 64}, r"The sweep needs at least 2 steps, the data gives 1\."),
    )
    def test_bad_arguments(self, kwargs, message):
        model = mlp()
        with self.assertRaisesRegex(ValueError, message):
            find_learning_rate(model, regression_data(32), **kwargs)

    def test_bad_data(self):
        model = mlp()
        with self.assertRaisesRegex(ValueError, r"dataset_or_xy must be a batched "
                                                r"tf\.data\.Dataset or a tuple \(x, y\)"):
            find_learning_rate(model, np.zeros((8, 4)))
        ds = tf.data.Dataset.from_tensor_slices(regression_data(32)).batch(8).repeat()
        with self.assertRaisesRegex(ValueError, r"unknown length: pass steps=<number of batches>"):
            find_learning_rate(model, ds)
