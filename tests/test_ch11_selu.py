"""ch11.selu: the self-normalization check, the CLI, and a --quick run on MNIST."""

import contextlib
import dataclasses
import io
import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from absl.testing import parameterized

from ch11 import selu


class SelfNormalizedTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.named_parameters(
        ("unit", [0.0, 0.1, -0.2], [1.0, 0.9, 1.2], True),
        ("edges", [0.5, -0.5], [0.5, 2.0], True),
        ("mean_off", [0.0, 0.6], [1.0, 1.0], False),
        ("std_blown", [0.0, 0.0], [1.0, 2.5], False),
        ("std_faded", [0.0, 0.0], [1.0, 0.4], False),
        ("nan", [0.0, np.nan], [1.0, np.nan], False))
    def test_self_normalized(self, means, stds, expected):
        stats = pd.DataFrame({"mean": means, "std": stds})
        self.assertEqual(selu.self_normalized(stats), expected)

    def test_self_normalized_custom_bounds(self):
        stats = pd.DataFrame({"mean": [0.0], "std": [1.5]})
        self.assertFalse(selu.self_normalized(stats, std_range=(0.8, 1.25)))
        self.assertTrue(selu.self_normalized(stats, mean_tol=0.0))


@pytest.mark.slow
class SeluExperimentTest(tf.test.TestCase):
    def test_quick_run_writes_everything_with_sane_numbers(self):
        out = self.get_temp_dir()
        results = selu.run(selu.Config(quick=True, out_dir=out))
        run_dir = results.run_dir
        self.assertEqual(Path(run_dir).parent, Path(out) / "selu")
        for name in ("config.json", "results.json", "report.md", "layer_std.png",
                     "layer_mean.png", "learning_curves.png", "history_selu.csv",
                     "history_relu.csv"):
            self.assertTrue((run_dir / name).is_file(), name)

        table = results.table.set_index("net")
        self.assertEqual(list(table.index), ["selu", "relu"])
        for column in ("val_acc", "test_acc", "val_acc_epoch1"):
            self.assertTrue(np.all((table[column] >= 0) & (table[column] <= 1)), column)
        # 10 x 100 hidden (quick mode), 784 inputs, 10 outputs; the Normalization layer
        # keeps its (floored) statistics in its config, not in weights.
        self.assertTrue(np.all(table["trainable"] == 78_500 + 9 * 10_100 + 1_010))
        self.assertTrue(np.all(table["non_trainable"] == 0))
        self.assertTrue(table.loc["selu", "init_self_normalized"])
        self.assertGreater(table.loc["relu", "init_mean_min"], 0.0)  # ReLU outputs are >= 0
        self.assertEqual(list(table["trains"]), list(table["val_acc"] >= selu.TRAINS_AT))
        self.assertTrue(np.all(np.isfinite(table[["grad_first", "grad_last"]].to_numpy())))

        saved = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(saved["seed"], 42)
        self.assertIn("selu_val_acc", saved["metrics"])
        report = (run_dir / "report.md").read_text()
        self.assertIn("| net | initializer |", report)
        self.assertIn("The chapter's claim that the 10-layer SELU net trains", report)
        self.assertIn("![Per-layer activation std", report)
        history = pd.read_csv(run_dir / "history_relu.csv")
        self.assertLen(history, 1)
        self.assertIn("val_accuracy", history.columns)


class SeluCliTest(tf.test.TestCase):
    def test_help_lists_every_option(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            selu.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(selu.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())

    def test_bad_values_fail_with_a_message(self):
        with self.assertRaisesRegex(ValueError, "depth must be >= 1, got 0"):
            selu.Config(depth=0)
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            selu.main(["--units", "-3"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("units must be >= 1, got -3", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(err):
            selu.main(["--optimizer", "sgdx"])
        self.assertIn("invalid choice: 'sgdx'", err.getvalue())
