"""ch11.gradient_descent: the learning-rate rule, the CLI, and --quick on real MNIST."""

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

from ch11 import gradient_descent as gd


class LearningRateRuleTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.parameters(
        (32, "sqrt", 0.01), (128, "sqrt", 0.02), (8, "sqrt", 0.005), (1, "sqrt", 0.01 / 32**0.5),
        (256, "linear", 0.08), (16, "linear", 0.005), (55000, "none", 0.01),
    )
    def test_closed_form(self, batch, scaling, expected):
        self.assertAllClose(gd.learning_rate_for(batch, 0.01, scaling), expected)

    def test_bad_inputs_are_named(self):
        with self.assertRaisesRegex(ValueError, r"Unknown lr_scaling 'cube'. Valid: sqrt, "
                                                r"linear, none."):
            gd.learning_rate_for(32, 0.01, "cube")
        with self.assertRaisesRegex(ValueError, "batch_size must be >= 1, got 0"):
            gd.learning_rate_for(0, 0.01, "sqrt")


@pytest.mark.slow
class GradientDescentExperimentTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_quick_run_writes_everything_with_sane_numbers(self):
        results = gd.run(gd.Config(quick=True, seeds=(42, 43), out_dir=self.get_temp_dir()))
        run_dir = results.run_dir
        for name in ("config.json", "results.json", "report.md", "loss_curves.png"):
            self.assertTrue((run_dir / name).is_file(), name)
        for key in ("full", "b256", "b32", "b1"):
            history = pd.read_csv(run_dir / f"history_{key}.csv")
            self.assertIn("train_time", history.columns)
            self.assertTrue(np.all(history["train_time"] > 0), key)

        table = results.table.set_index("batch_size")
        # Quick mode: 2,000 training images; batch GD = all of them; SGD on 200.
        self.assertEqual(list(table.index), [2000, 256, 32, 1])
        self.assertEqual(table["train_images"].tolist(), [2000, 2000, 2000, 200])
        self.assertEqual(table["epochs"].tolist(), [5, 1, 1, 1])
        self.assertEqual(table["steps"].tolist(), [5, 8, 63, 200])
        self.assertAllClose(table["learning_rate"],
                            [0.01 * math.sqrt(2000 / 32), 0.01 * math.sqrt(8), 0.01,
                             0.01 / math.sqrt(32)])
        self.assertAllClose(table["images_per_s"] / table["steps_per_s"],
                            [2000, 2000 / 8, 2000 / 63, 1], rtol=1e-6)
        for column in ("val_acc", "test_acc"):
            self.assertTrue(np.all((table[column] >= 0) & (table[column] <= 1)), column)
        for column in ("val_loss", "val_loss_epoch1", "val_loss_at_common_time", "train_s"):
            self.assertTrue(np.all(np.isfinite(table[column]) & (table[column] > 0)), column)
        # Batch GD's five steps each lower the validation loss from log(10) or so.
        full = pd.read_csv(run_dir / "history_full.csv")
        self.assertLess(full["val_loss"].iloc[-1], full["val_loss"].iloc[0])
        self.assertGreater(table["test_acc"].max(), 0.3)

        saved = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(saved["seed"], 42)
        self.assertAllClose(saved["metrics"]["common_time_s"], table["train_s"].min())
        report = (run_dir / "report.md").read_text()
        self.assertIn("| variant | batch_size |", report)
        self.assertIn("![Validation loss against epochs", report)
        self.assertIn("lowest validation loss", results.notes[0])


class GradientDescentCliTest(tf.test.TestCase):
    def test_help_lists_every_option(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            gd.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(gd.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())

    def test_bad_values_fail_with_a_message(self):
        with self.assertRaisesRegex(ValueError, "epochs needs one value per batch size: 4 "
                                                "batch sizes but 2 epoch counts"):
            gd.Config(epochs=(1, 2))
        with self.assertRaisesRegex(ValueError, r"batch_sizes must be >= 0 \(0 = whole "
                                                r"training set\), got \(-1,\)"):
            gd.Config(batch_sizes=(-1,), epochs=(1,))
        with self.assertRaisesRegex(ValueError, "base_learning_rate must be > 0, got 0"):
            gd.Config(base_learning_rate=0)
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            gd.main(["--lr-scaling", "cube"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("invalid choice: 'cube'", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(err):
            gd.main(["--batch-sizes", "32", "1"])
        self.assertIn("epochs needs one value per batch size", err.getvalue())
