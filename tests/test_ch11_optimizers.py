"""ch11.optimizers: learning rates, computed notes, the CLI, and a --quick run on real MNIST."""

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

from ch11 import optimizers
from ch11.optimizers import report as opt_report
from ch11.optimizers.config import BOOK_OPTIMIZERS


def _table(sgd_acc, adam_acc, nadam_acc):
    rows = []
    for name, acc, lr in (("sgd", sgd_acc, 0.01), ("adam", adam_acc, 1e-3),
                          ("nadam", nadam_acc, 1e-3)):
        rows.append({"optimizer": name, "learning_rate": lr, "epochs": 5, "val_acc": acc,
                     "test_acc": acc, "train_loss": 1 - acc, "s_per_epoch": 2.0,
                     "val_acc_epoch1": acc - 0.01})
    return pd.DataFrame(rows)


class OptimizersHelpersTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.parameters(("sgd", 1e-2), ("adam", 1e-3), ("nadam", 1e-3), ("momentum", 1e-3))
    def test_learning_rate_defaults_and_override(self, name, default):
        self.assertAllClose(optimizers._learning_rate(optimizers.Config(), name), default)
        self.assertAllClose(
            optimizers._learning_rate(optimizers.Config(learning_rate=0.3), name), 0.3)

    def test_notes_follow_the_numbers(self):
        notes = opt_report.notes(_table(0.95, 0.97, 0.96), optimizers.Config(), (1.0, 1.0), 5000)
        self.assertIn("adam beats plain SGD after the same 5 epoch(s): validation 0.9700 vs "
                      "0.9500 (difference +0.0200; noise level", " ".join(notes))
        notes = opt_report.notes(_table(0.95, 0.953, 0.90), optimizers.Config(), (1.0, 1.0),
                                  5000)
        # sqrt(2 x 0.95 x 0.05 / 5000) = 0.0044 > 0.003
        self.assertIn("adam is within noise of plain SGD", " ".join(notes))
        self.assertIn("nadam does NOT beat plain SGD", " ".join(notes))
        notes = opt_report.notes(_table(0.97, 0.95, 0.96), optimizers.Config(), (1.0, 1.0), 5000)
        self.assertIn("adam does NOT beat plain SGD", " ".join(notes))
        self.assertIn("nadam does NOT beat plain SGD", " ".join(notes))
        self.assertIn("Seed 42, ranking by validation accuracy after 5 epoch(s): sgd 0.9700, "
                      "nadam 0.9600, adam 0.9500.", notes[0])


@pytest.mark.slow
class OptimizersExperimentTest(tf.test.TestCase):
    def test_quick_run_writes_everything_with_sane_numbers(self):
        out = self.get_temp_dir()
        results = optimizers.run(optimizers.Config(quick=True, out_dir=out))
        run_dir = results.run_dir
        self.assertEqual(Path(run_dir).parent, Path(out) / "optimizers")
        for name in ("config.json", "results.json", "report.md", "val_curves.png",
                     "train_loss.png", "val_loss_vs_time.png", "summary.png"):
            self.assertTrue((run_dir / name).is_file(), name)
        names = list(BOOK_OPTIMIZERS)
        for name in names:
            self.assertTrue((run_dir / f"history_{name}.csv").is_file(), name)

        table = results.table
        self.assertEqual(table["optimizer"].tolist(), names)
        self.assertEqual(table["keras_class"].tolist(),
                         ["SGD", "SGD", "SGD", "Adagrad", "RMSprop", "Adam", "Adamax", "Nadam",
                          "AdamW"])
        self.assertAllClose(table["learning_rate"], [1e-2] + [1e-3] * 8)
        for column in ("val_acc", "test_acc", "train_acc", "val_acc_epoch1"):
            self.assertTrue(np.all((table[column] >= 0) & (table[column] <= 1)), column)
        self.assertTrue(np.all(np.isfinite(table["s_per_epoch"])))
        # Quick mode: one hidden layer of 100 units, 784 inputs, 10 outputs.
        self.assertEqual(table["params"].tolist(), [784 * 100 + 100 + 100 * 10 + 10] * 9)
        self.assertEqual(table["epochs"].tolist(), [1] * 9)
        # One epoch on 2,000 images: Adam is far above chance.
        self.assertGreater(table.set_index("optimizer").loc["adam", "test_acc"], 0.5)

        saved = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(saved["seed"], 42)
        self.assertIn("adam_val_acc", saved["metrics"])
        report = (run_dir / "report.md").read_text()
        self.assertIn("| optimizer | keras_class |", report)
        self.assertIn("![Validation loss and accuracy", report)
        history = pd.read_csv(run_dir / "history_nadam.csv")
        self.assertEqual(list(history.columns[:1]), ["epoch"])
        self.assertIn("epoch_time", history.columns)


class OptimizersCliTest(tf.test.TestCase):
    def test_help_lists_every_option(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            optimizers.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(optimizers.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())

    def test_bad_values_fail_with_a_message(self):
        with self.assertRaisesRegex(ValueError, "epochs must be >= 1, got 0"):
            optimizers.Config(epochs=0)
        with self.assertRaisesRegex(ValueError, r"Unknown optimizer 'adamz'\. Valid: sgd, "):
            optimizers.Config(optimizers=("sgd", "adamz"))
        with self.assertRaisesRegex(ValueError, "must not repeat a name"):
            optimizers.Config(optimizers=("adam", "adam"))
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            optimizers.main(["--optimizers", "sgd", "adamz"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("invalid choice: 'adamz'", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(err):
            optimizers.main(["--learning-rate", "-0.1"])
        self.assertIn("learning_rate must be > 0, got -0.1", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            optimizers.main(["--activation", "relux"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("invalid choice: 'relux'", err.getvalue())
        for bad in (float("nan"), float("inf")):
            with self.assertRaisesRegex(ValueError, "learning_rate must be a finite number > 0"):
                optimizers.Config(learning_rate=bad)
