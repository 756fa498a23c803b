"""ch11.batch_norm in --quick mode on a slice of the real MNIST."""

import contextlib
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from ch11 import batch_norm


@pytest.mark.slow
class BatchNormExperimentTest(tf.test.TestCase):
    def test_quick_run_writes_everything_with_sane_numbers(self):
        out = self.get_temp_dir()
        results = batch_norm.run(batch_norm.Config(quick=True, out_dir=out))
        run_dir = results.run_dir
        self.assertEqual(Path(run_dir).parent, Path(out) / "batch_norm")
        for name in ("config.json", "results.json", "report.md",
                     "mlp_learning_curves_lr0.01.png", "mlp_learning_curves_lr0.05.png",
                     "cnn_learning_curves.png", "mlp_activation_std.png",
                     "mlp_gradient_flow_lr0.01.png", "mlp_gradient_flow_lr0.05.png",
                     "mlp_activation_stats.csv"):
            self.assertTrue((run_dir / name).is_file(), name)
        self.assertLen(list(run_dir.glob("history_*.csv")), 11)

        table = results.table
        self.assertLen(table, 11)  # 2 rates x 3 MLPs, 3 CNNs, 2 small-batch
        for column in ("val_acc", "test_acc", "train_acc", "val_acc_epoch1"):
            self.assertTrue(np.all((table[column] >= 0) & (table[column] <= 1)), column)
        self.assertTrue(np.all(np.isfinite(table["s_per_epoch"])))
        # 5 x 100 hidden (quick mode), 784 inputs, 10 outputs: exact parameter counts.
        mlp = table[(table["model"] == "mlp") & (table["learning_rate"] == 0.01)]
        mlp = mlp.set_index("batch_norm")
        self.assertEqual(mlp.loc["none", "trainable"], 119_910)
        self.assertEqual(mlp.loc["none", "non_trainable"], 0)
        self.assertEqual(mlp.loc["after", "trainable"], 119_910 + 1_000)
        self.assertEqual(mlp.loc["before", "trainable"], 119_910 - 500 + 1_000)
        self.assertEqual(mlp.loc["before", "non_trainable"], 1_000)
        # The diagnostics on 512 validation images: for the 6 MLP rows only.
        is_mlp = (table["model"] == "mlp").to_numpy()
        for column in ("act_std_last", "grad_first_over_last"):
            values = table[column].to_numpy()
            self.assertTrue(np.all(np.isfinite(values[is_mlp]) & (values[is_mlp] > 0)), column)
            self.assertTrue(np.all(np.isnan(values[~is_mlp])), column)
        stats = pd.read_csv(run_dir / "mlp_activation_stats.csv")
        self.assertLen(stats, 6 * 5)  # 6 MLPs x 5 hidden layers
        self.assertTrue(np.all(stats["dead_fraction"].between(0, 1)))
        self.assertTrue(np.all(stats["frac_zero"].between(0, 1)))
        last = stats[stats["layer"] == "act_4"]["std"].to_numpy()
        self.assertAllClose(last, table.loc[is_mlp, "act_std_last"].to_numpy())
        # Even one epoch on 2,000 images beats chance by far.
        self.assertGreater(table["test_acc"].iloc[:9].min(), 0.2)

        saved = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(saved["seed"], 42)
        self.assertIn("keras", saved["versions"])
        report = (run_dir / "report.md").read_text()
        self.assertIn("| model | batch_norm |", report)
        self.assertIn("![Deep MLP at learning rate 0.05", report)
        self.assertIn("## Diagnostics", report)
        self.assertRegex(report, r"\[mlp_gradient_flow_lr0.05.png\]\(mlp_gradient_flow_lr0.05.png\)"
                                 r": after 1 epoch\(s\) at 0.05, hidden_0's gradient norm")
        self.assertIn("first -> last hidden layer: BN none, lr 0.01 ", report)
        self.assertEqual(results.figures[-2:], ["mlp_gradient_flow_lr0.01.png",
                                                "mlp_gradient_flow_lr0.05.png"])
        history = pd.read_csv(run_dir / "history_mlp_lr0.01_bn_before.csv")
        self.assertEqual(list(history.columns[:1]), ["epoch"])
        self.assertIn("epoch_time", history.columns)



class BatchNormCliTest(tf.test.TestCase):
    def test_help_lists_every_option(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            batch_norm.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(batch_norm.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())

    def test_bad_values_fail_with_a_message(self):
        with self.assertRaisesRegex(ValueError, "mlp_depth must be >= 1, got 0"):
            batch_norm.Config(mlp_depth=0)
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            batch_norm.main(["--optimizer", "adamz"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("invalid choice: 'adamz'", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(err):
            batch_norm.main(["--learning-rates", "0.1", "-1"])
        self.assertIn("learning_rates must be > 0", err.getvalue())
