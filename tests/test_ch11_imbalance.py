"""ch11.imbalance: making a digit rare, oversampling it, the CLI, and --quick on real MNIST."""

import contextlib
import dataclasses
import io
import json
import math

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from absl.testing import parameterized

from ch11 import imbalance
from recipes.data import load_mnist


def _tiny():
    y = np.repeat(np.arange(10), 100)
    x = np.arange(len(y), dtype="float32")[:, None] * np.ones((1, 3), "float32")
    return x, y


class MakeImbalancedTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.parameters((3, 0.05, 5), (0, 0.01, 1), (9, 0.001, 1), (7, 0.333, 34),
                              (2, 0.07, 7), (5, 1.0, 100))
    def test_keeps_exactly_the_fraction_of_one_digit(self, digit, fraction, kept):
        x, y = _tiny()
        x2, y2 = imbalance.make_imbalanced(x, y, digit, fraction, seed=1)
        counts = np.bincount(y2, minlength=10)
        self.assertEqual(counts[digit], kept)
        self.assertAllEqual(np.delete(counts, digit), [100] * 9)
        # Examples stay paired with their labels and in their original order.
        ids = x2[:, 0].astype(int)
        self.assertAllEqual(y[ids], y2)
        self.assertTrue(np.all(np.diff(ids) > 0))

    def test_the_draw_follows_the_seed(self):
        x, y = _tiny()
        a = imbalance.make_imbalanced(x, y, 4, 0.1, seed=3)[0]
        b = imbalance.make_imbalanced(x, y, 4, 0.1, seed=3)[0]
        c = imbalance.make_imbalanced(x, y, 4, 0.1, seed=4)[0]
        self.assertAllEqual(a, b)
        self.assertNotAllEqual(a, c)

    @parameterized.parameters(10, -1, 3.0, True)
    def test_digit_outside_0_to_9_is_refused(self, digit):
        x, y = _tiny()
        with self.assertRaisesRegex(ValueError,
                                    f"digit must be an MNIST digit 0-9, got {digit!r}"):
            imbalance.make_imbalanced(x, y, digit, 0.5)

    @parameterized.parameters(0.0, -0.1, 1.5)
    def test_fraction_outside_0_1_is_refused(self, fraction):
        x, y = _tiny()
        with self.assertRaisesRegex(ValueError,
                                    rf"keep_fraction must be in \(0, 1\], got {fraction!r}"):
            imbalance.make_imbalanced(x, y, 2, fraction)

    def test_missing_digit_and_length_mismatch(self):
        x, y = _tiny()
        with self.assertRaisesRegex(ValueError, "There is no example of digit 3 to make rare"):
            imbalance.make_imbalanced(x[y != 3], y[y != 3], 3, 0.5)
        with self.assertRaisesRegex(ValueError, "Got 999 examples and 1000 labels"):
            imbalance.make_imbalanced(x[:-1], y, 3, 0.5)

    def test_oversample_repeats_each_rare_example_equally(self):
        x, y = _tiny()
        x, y = imbalance.make_imbalanced(x, y, 6, 0.05, seed=0)  # 5 sixes left
        sixes = set(x[y == 6, 0].astype(int))
        x2, y2 = imbalance.oversample(x, y, 6, 100, seed=0)
        counts = np.bincount(y2, minlength=10)
        self.assertEqual(counts[6], 100)
        self.assertAllEqual(np.delete(counts, 6), [100] * 9)
        ids, reps = np.unique(x2[y2 == 6, 0].astype(int), return_counts=True)
        self.assertEqual(set(ids), sixes)
        self.assertAllEqual(reps, [20] * 5)
        self.assertAllEqual(_tiny()[1][x2[:, 0].astype(int)], y2)  # pairs kept
        with self.assertRaisesRegex(ValueError, "target must be at least the 5 examples "
                                                "digit 6 already has, got 3"):
            imbalance.oversample(x, y, 6, 3)
        with self.assertRaisesRegex(ValueError, "digit must be an MNIST digit 0-9, got 11"):
            imbalance.oversample(x, y, 11, 3)


@pytest.mark.slow
class ImbalanceExperimentTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_quick_run_reduces_the_digit_in_training_only(self):
        config = imbalance.Config(quick=True, seeds=(42, 43), out_dir=self.get_temp_dir())
        results = imbalance.run(config)
        run_dir = results.run_dir
        for name in ("config.json", "results.json", "report.md", "per_class.png",
                     "confusion.png", "per_class.csv", "class_counts.csv"):
            self.assertTrue((run_dir / name).is_file(), name)
        for t in imbalance.TREATMENTS:
            self.assertTrue((run_dir / f"history_{t}.csv").is_file(), t)
            self.assertTrue((run_dir / f"confusion_{t}.csv").is_file(), t)

        # The quick slice: 2,000 training, 400 validation, 1,000 test images of real MNIST.
        (x_full, y_full), (_, y_test) = load_mnist(log=lambda _: None)
        before = np.bincount(y_full[:2000], minlength=10)
        counts = pd.read_csv(run_dir / "class_counts.csv").set_index("digit")
        d = config.digit
        self.assertAllEqual(counts["train_before"], before)
        self.assertEqual(counts.loc[d, "train"], math.ceil(0.01 * before[d]))
        self.assertLess(counts.loc[d, "train"], before[d] / 10)
        self.assertAllEqual(counts["train"].drop(d), np.delete(before, d))
        self.assertAllEqual(counts["valid"], np.bincount(y_full[2000:2400], minlength=10))
        self.assertAllEqual(counts["test"], np.bincount(y_test[:1000], minlength=10))
        saved = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(saved["metrics"]["test_counts"], counts["test"].tolist())
        self.assertEqual(saved["metrics"]["train_counts"], counts["train"].tolist())

        table = results.table.set_index("treatment")
        self.assertEqual(list(table.index), list(imbalance.TREATMENTS))
        rare = counts.loc[d, "train"]
        self.assertEqual(table.loc["plain", "minority_train"], rare)
        self.assertEqual(table.loc["class_weights", "minority_train"], rare)
        self.assertEqual(table.loc["oversampling", "minority_train"],
                         int(np.median(np.delete(before, d))))
        self.assertEqual(table.loc["plain", "train_images"], counts["train"].sum())
        for column in ("test_acc", "minority_recall", "minority_auc", "others_min_recall",
                       "others_median_auc"):
            values = table[column].to_numpy(dtype=float)
            self.assertTrue(np.all((values >= 0) & (values <= 1)), column)
        # Each confusion matrix's rows add up to the untouched test counts.
        for t in imbalance.TREATMENTS:
            matrix = pd.read_csv(run_dir / f"confusion_{t}.csv", index_col=0)
            self.assertAllEqual(matrix.sum(axis=1).to_numpy(), counts["test"].to_numpy())
        per_class = pd.read_csv(run_dir / "per_class.csv")
        self.assertLen(per_class, 10 * len(imbalance.TREATMENTS))
        report = (run_dir / "report.md").read_text()
        self.assertIn("## Class counts", report)
        self.assertIn("diagnose", report)


class ImbalanceCliTest(tf.test.TestCase):
    def test_help_lists_every_option(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            imbalance.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(imbalance.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())

    def test_bad_values_fail_with_a_message(self):
        with self.assertRaisesRegex(ValueError, "digit must be an MNIST digit 0-9, got 12"):
            imbalance.Config(digit=12)
        with self.assertRaisesRegex(ValueError, r"keep_fraction must be in \(0, 1\], got 0"):
            imbalance.Config(keep_fraction=0)
        with self.assertRaisesRegex(ValueError, "Unknown treatment 'smote'. Valid: plain, "
                                                "class_weights, focal, oversampling."):
            imbalance.Config(treatments=("plain", "smote"))
        with self.assertRaisesRegex(ValueError, "treatments must name at least one of plain, "):
            imbalance.Config(treatments=())
        # focal_gamma is a real number >= 0 (the focal loss's gamma need not be an integer).
        self.assertAllClose(imbalance.Config(focal_gamma=0.5).focal_gamma, 0.5)
        with self.assertRaisesRegex(ValueError, "focal_gamma must be a finite number >= 0, got "
                                                "nan"):
            imbalance.Config(focal_gamma=float("nan"))
        with self.assertRaisesRegex(ValueError, r"keep_fraction must be a finite number in "
                                                r"\(0, 1\], got nan"):
            imbalance.Config(keep_fraction=float("nan"))
        for argv, message in ((["--digit", "-3"], "digit must be an MNIST digit 0-9, got -3"),
                              (["--keep-fraction", "1.5"],
                               "keep_fraction must be in (0, 1], got 1.5"),
                              (["--treatments", "smote"], "invalid choice: 'smote'")):
            err = io.StringIO()
            with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
                imbalance.main(argv)
            self.assertEqual(ctx.exception.code, 2)
            self.assertIn(message, err.getvalue())
