"""Tests for recipes.data.pipeline.make_dataset: batches, per-epoch shuffling, no autotuning."""

import keras
import numpy as np
import tensorflow as tf

from recipes import make_dataset


def _epoch(ds):
    return [tuple(np.asarray(t) for t in batch) for batch in ds]


class MakeDatasetTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        self.x = np.arange(10 * 3, dtype="float32").reshape(10, 3)
        self.y = np.arange(10, dtype="int64")

    def test_batches_cover_every_sample_once_per_epoch(self):
        ds = make_dataset(self.x, self.y, batch_size=4, seed=1)
        for _ in range(2):
            batches = _epoch(ds)
            self.assertEqual([len(b[1]) for b in batches], [4, 4, 2])
            ys = np.concatenate([b[1] for b in batches])
            self.assertAllEqual(np.sort(ys), self.y)
            for bx, by in batches:  # rows stay paired with their labels
                self.assertAllEqual(bx[:, 0], 3 * by)

    def test_reshuffles_every_epoch_and_the_seed_repeats_the_sequence(self):
        x, y = np.zeros((200, 1), "float32"), np.arange(200)
        first, second = make_dataset(x, y, 200, seed=3), make_dataset(x, y, 200, seed=3)
        a1, a2 = _epoch(first)[0][1], _epoch(first)[0][1]
        b1, b2 = _epoch(second)[0][1], _epoch(second)[0][1]
        self.assertNotAllEqual(a1, a2)
        self.assertAllEqual(a1, b1)
        self.assertAllEqual(a2, b2)
        self.assertNotAllEqual(a1, np.arange(200))

    def test_no_shuffle_keeps_the_order_and_drop_remainder(self):
        batches = _epoch(make_dataset(self.x, self.y, 4, shuffle=False, drop_remainder=True))
        self.assertAllEqual(np.concatenate([b[1] for b in batches]), np.arange(8))

    def test_inputs_only(self):
        batches = [np.asarray(b) for b in make_dataset(self.x, batch_size=5, shuffle=False)]
        self.assertAllEqual(batches[1], self.x[5:])

    def test_autotuning_is_off(self):
        # The autotuning thread is what makes `fit` wait at epoch starts (module docstring).
        ds = make_dataset(self.x, self.y, 4)
        self.assertFalse(ds.options().autotune.enabled)
        self.assertTrue(ds.options().deterministic)

    def test_fit_learns_from_it(self):
        keras.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(256, 2)).astype("float32")
        y = (x[:, 0] + x[:, 1] > 0).astype("int64")
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        history = model.fit(make_dataset(x, y, 32, seed=0), epochs=5, verbose=0, shuffle=False)
        self.assertGreater(history.history["accuracy"][-1], 0.95)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, r"^x has 10 samples but y has 9; they must match"):
            make_dataset(self.x, self.y[:9])
        with self.assertRaisesRegex(ValueError, r"^batch_size must be >= 1, got 0"):
            make_dataset(self.x, self.y, 0)
        with self.assertRaisesRegex(ValueError, r"^prefetch must be >= 0, got -1"):
            make_dataset(self.x, self.y, 4, prefetch=-1)
        with self.assertRaisesRegex(ValueError, r"^x must hold at least one sample"):
            make_dataset(np.zeros((0, 3)), None)
