"""ch11.cnn_hparams in --quick mode on a slice of the real MNIST, and its CLI."""

import contextlib
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from ch11 import cnn_hparams


@pytest.mark.slow
class CnnHparamsExperimentTest(tf.test.TestCase):
    def test_quick_run_writes_everything_with_sane_numbers(self):
        out = self.get_temp_dir()
        results = cnn_hparams.run(cnn_hparams.Config(quick=True, out_dir=out))
        run_dir = results.run_dir
        self.assertEqual(Path(run_dir).parent, Path(out) / "cnn_hparams")
        for name in ("config.json", "results.json", "report.md", "loss_curves.png",
                     "val_accuracy_grid.png"):
            self.assertTrue((run_dir / name).is_file(), name)
        self.assertLen(list(run_dir.glob("history_*.csv")), 8)

        table = results.table
        self.assertLen(table, 8)  # quick: kernels 3, 5 x max, avg x sgd, rmsprop
        self.assertCountEqual(
            set(zip(table["kernel_size"], table["pooling"], table["optimizer"])),
            {(k, p, o) for k in (3, 5) for p in ("max", "avg") for o in ("sgd", "rmsprop")})
        for column in ("val_acc", "test_acc"):
            self.assertTrue(np.all((table[column] >= 0) & (table[column] <= 1)), column)
        self.assertTrue(np.all(np.isfinite(table[["val_loss", "s_per_epoch"]])))
        # conv 16 and 32 (k x k, bias), 7x7x32 flattened -> Dense 64 -> 10.
        params = dict(zip(table["kernel_size"], table["params"]))
        self.assertEqual(params[3], 160 + 4_640 + 100_416 + 650)
        self.assertEqual(params[5], 416 + 12_832 + 100_416 + 650)
        self.assertAllClose(table["learning_rate"],
                            [0.01 if o == "sgd" else 0.001 for o in table["optimizer"]])
        self.assertTrue(np.all(table["epochs_run"] == 1))
        # One epoch on 1,000 images beats chance by far with RMSprop.
        self.assertGreater(table[table["optimizer"] == "rmsprop"]["test_acc"].min(), 0.3)
        # The kept weights are the best epoch's: the evaluated validation accuracy is the
        # one the history recorded for that epoch.
        for row in table.itertuples():
            history = pd.read_csv(run_dir / f"history_k{row.kernel_size}_{row.pooling}_"
                                            f"{row.optimizer}.csv")
            self.assertAllClose(row.val_acc, history["val_accuracy"].iloc[row.best_epoch - 1],
                                atol=1e-6)

        saved = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(saved["seed"], 42)
        best = table.loc[table["val_acc"].idxmax()]
        self.assertEqual(saved["metrics"]["best_config"],
                         f"kernel {best['kernel_size']}, {best['pooling']} pooling, "
                         f"{best['optimizer']}")
        self.assertAllClose(saved["metrics"]["best_test_acc"], best["test_acc"])
        self.assertAllClose(saved["metrics"]["mean_val_acc_sgd"],
                            table[table["optimizer"] == "sgd"]["val_acc"].mean())
        report = (run_dir / "report.md").read_text()
        self.assertIn("| kernel_size | pooling | optimizer |", report)
        self.assertIn("](val_accuracy_grid.png)", report)
        self.assertIn("subset of 1,000 MNIST training images", report)


class CnnHparamsCliTest(tf.test.TestCase):
    def test_help_lists_every_option(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            cnn_hparams.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(cnn_hparams.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())

    def test_bad_values_fail_with_a_message(self):
        with self.assertRaisesRegex(ValueError, "patience must be >= 1, got 0"):
            cnn_hparams.Config(patience=0)
        with self.assertRaisesRegex(ValueError, r"kernel_sizes must be integers >= 1, got "
                                                r"\(3, 0\)"):
            cnn_hparams.Config(kernel_sizes=(3, 0))
        with self.assertRaisesRegex(ValueError, "Unknown optimizer 'adamz'. Valid: sgd, momentum"):
            cnn_hparams.Config(optimizers=("adamz",))
        with self.assertRaisesRegex(ValueError, r"poolings must name at least one of max, avg, "
                                                r"none; got \(\)"):
            cnn_hparams.Config(poolings=())
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            cnn_hparams.main(["--poolings", "max", "median"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("invalid choice: 'median'", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(err):
            cnn_hparams.main(["--train-size", "0"])
        self.assertIn("train_size must be >= 1, got 0", err.getvalue())
