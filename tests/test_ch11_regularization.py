"""ch11.regularization: prediction statistics, the CLI, and a --quick run on real MNIST."""

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

from ch11 import regularization
from ch11.regularization import report as regularization_report
from recipes.builders import build_mlp
from recipes.specs import MLPSpec


class PredictionStatsTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_closed_form_values(self):
        mean = np.array([[0.7, 0.2, 0.1],    # predicts 0, true 0: correct
                         [0.1, 0.6, 0.3],    # predicts 1, true 1: correct
                         [0.5, 0.1, 0.4],    # predicts 0, true 2: wrong
                         [0.2, 0.2, 0.6]])   # predicts 2, true 1: wrong
        y = np.array([0, 1, 2, 1])
        std = np.array([[0.01, 0.0, 0.0], [0.0, 0.03, 0.0], [0.2, 0.0, 0.0], [0.0, 0.0, 0.1]])
        stats = regularization.prediction_stats(mean, y, std)
        self.assertAllClose(stats["acc"], 0.5)
        self.assertAllClose(stats["nll"], -np.log([0.7, 0.6, 0.4, 0.2]).mean())
        self.assertAllClose(stats["conf_correct"], (0.7 + 0.6) / 2)
        self.assertAllClose(stats["conf_wrong"], (0.5 + 0.6) / 2)
        self.assertAllClose(stats["std_correct"], (0.01 + 0.03) / 2)
        self.assertAllClose(stats["std_wrong"], (0.2 + 0.1) / 2)

    def test_empty_groups_and_no_std_give_nan(self):
        stats = regularization.prediction_stats(np.array([[0.9, 0.1], [0.2, 0.8]]),
                                                np.array([0, 1]))
        self.assertAllClose(stats["acc"], 1.0)
        self.assertTrue(np.isnan(stats["conf_wrong"]))
        self.assertTrue(np.isnan(stats["std_correct"]) and np.isnan(stats["std_wrong"]))

    def test_zero_probability_is_clipped(self):
        stats = regularization.prediction_stats(np.array([[1.0, 0.0]]), np.array([1]))
        self.assertAllClose(stats["nll"], -np.log(1e-12))

    def test_noise_level_and_verdicts(self):
        # twice the standard error of a difference of two accuracies of 0.95 on 5,000 images
        self.assertAllClose(regularization_report._noise(0.95, 5000),
                            2 * np.sqrt(2 * 0.95 * 0.05 / 5000))
        verdict = regularization_report._verdict
        self.assertEqual(verdict(0.01, 0.0087), "rises")
        self.assertEqual(verdict(-0.01, 0.0087), "falls")
        self.assertEqual(verdict(0.005, 0.0087), "is unchanged within noise")

    def test_hidden_kernels_norms_in_closed_form(self):
        model = build_mlp(MLPSpec(hidden_units=(3, 2)), (4,), 2)
        k0 = np.arange(12, dtype="float32").reshape(4, 3) / 10
        k1 = np.array([[3.0, 0.0], [4.0, 1.0], [0.0, 1.0]], dtype="float32")
        model.get_layer("hidden_0").kernel.assign(k0)
        model.get_layer("hidden_1").kernel.assign(k1)
        out = regularization._hidden_kernels(model)
        self.assertAllClose(out["kernel_norm"], np.sqrt((k0**2).sum() + (k1**2).sum()))
        self.assertAllClose(out["max_unit_norm"], 5.0)  # the unit with weights (3, 4, 0)
        self.assertEqual(list(out["arrays"]), [f"hidden_0 (norm {np.linalg.norm(k0):.3g})",
                                               "hidden_1 (norm 5.2)"])

    @parameterized.parameters(("none", "relu", 0.0, "standard"),
                              ("dropout", "relu", 0.2, "standard"),
                              ("alpha_dropout", "selu", 0.2, "alpha"), ("selu", "selu", 0.0,
                                                                        "standard"))
    def test_variant_specs(self, name, activation, rate, kind):
        spec = regularization._specs(regularization.Config())[name]
        self.assertEqual(spec.activation, activation)
        self.assertAllClose(spec.dropout_rate, rate)
        self.assertEqual(spec.dropout_kind, kind)
        self.assertEqual(spec.hidden_units, (100, 100))


@pytest.mark.slow
class RegularizationExperimentTest(tf.test.TestCase):
    def test_quick_run_writes_everything_with_sane_numbers(self):
        out = self.get_temp_dir()
        results = regularization.run(regularization.Config(quick=True, out_dir=out))
        run_dir = results.run_dir
        self.assertEqual(Path(run_dir).parent, Path(out) / "regularization")
        for name in ("config.json", "results.json", "report.md", "accuracy_curves.png",
                     "loss_curves.png", "train_val_gap.png", "mc_dropout_uncertainty.png",
                     "weight_histograms.png", "mc_dropout_error_detection.png"):
            self.assertTrue((run_dir / name).is_file(), name)
        for name in regularization.VARIANTS:
            self.assertTrue((run_dir / f"history_{name}.csv").is_file(), name)

        table = results.table.set_index("variant")
        self.assertEqual(list(table.index), ["none", "l2", "dropout", "mc_dropout", "max_norm",
                                             "selu", "alpha_dropout"])
        for column in ("train_acc", "val_acc", "test_acc", "conf_correct", "conf_wrong"):
            self.assertTrue(np.all((table[column] >= 0) & (table[column] <= 1)), column)
        self.assertAllClose(table["train_val_gap"], table["train_acc"] - table["val_acc"])
        self.assertTrue(np.all(table["test_nll"] > 0))
        # 2 x 100 hidden units, 784 inputs, 10 outputs; regularizers add no weights.
        params = 784 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10
        self.assertEqual(table.loc[["none", "l2", "dropout", "max_norm", "selu"], "params"]
                         .tolist(), [params] * 5)
        # MC dropout: a spread only where it is measured.
        self.assertGreater(table.loc["mc_dropout", "mc_std_correct"], 0)
        self.assertTrue(np.isnan(table.loc["dropout", "mc_std_correct"]))
        self.assertGreater(table["test_acc"].min(), 0.2)
        # Weights: finite norms; MaxNorm(1) caps every unit; l2 shrinks the kernels.
        for column in ("kernel_norm", "max_unit_norm"):
            self.assertTrue(np.all(np.isfinite(table[column]) & (table[column] > 0)), column)
        self.assertLessEqual(table.loc["max_norm", "max_unit_norm"], 1.0 + 1e-5)
        self.assertGreater(table.loc["none", "max_unit_norm"], 1.0)
        self.assertLess(table.loc["l2", "kernel_norm"], table.loc["none", "kernel_norm"])
        self.assertEqual(table.loc["mc_dropout", "kernel_norm"],
                         table.loc["dropout", "kernel_norm"])

        saved = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(saved["seed"], 42)
        self.assertIn("mc_dropout_test_acc", saved["metrics"])
        for key in ("mc_std_error_auc", "mc_confidence_error_auc",
                    "one_pass_confidence_error_auc"):
            self.assertTrue(0.0 <= saved["metrics"][key] <= 1.0, key)
        config = json.loads((run_dir / "config.json").read_text())
        self.assertEqual(config["train_size"], 2000)
        self.assertEqual(config["mc_samples"], 10)
        report = (run_dir / "report.md").read_text()
        self.assertIn("| variant | regularization |", report)
        self.assertIn("SUBSET of 2,000 MNIST training images", report)
        self.assertIn("## Diagnostics", report)
        self.assertRegex(report, r"\[weight_histograms.png\]\(weight_histograms.png\): the "
                                 r"hidden kernels' L2 norm after training: none [\d.]+, l2 "
                                 r"[\d.]+ \(-\d+% vs none\)")
        self.assertRegex(report, r"AUC MC dropout: std of the predicted class 0\.\d{3}")
        history = pd.read_csv(run_dir / "history_l2.csv")
        self.assertEqual(list(history.columns[:1]), ["epoch"])


class RegularizationCliTest(tf.test.TestCase):
    def test_help_lists_every_option(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            regularization.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(regularization.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())

    def test_bad_values_fail_with_a_message(self):
        with self.assertRaisesRegex(ValueError, "train_size must be >= 1, got 0"):
            regularization.Config(train_size=0)
        with self.assertRaisesRegex(ValueError, r"dropout_rate must be in \(0, 1\), got 1.0"):
            regularization.Config(dropout_rate=1.0)
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            regularization.main(["--optimizer", "adamz"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("invalid choice: 'adamz'", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(err):
            regularization.main(["--max-norm", "0"])
        self.assertIn("max_norm must be > 0, got 0.0", err.getvalue())
