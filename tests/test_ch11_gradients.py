"""ch11.gradients: the verdict and saturation helpers, the CLI, and a --quick run on MNIST."""

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

from ch11 import gradients
from ch11.gradients.config import DEFAULT_VARIANTS


class GradientHelpersTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.named_parameters(
        ("level", [1.0, 3.0, 9.0], "stay within an order of magnitude"),
        ("exactly_ten", [0.5, 5.0, 1.0], "stay within an order of magnitude"),
        ("vanish", [1e-4, 1e-3, 1e-2, 0.1, 1.0, 1.0], "vanish toward the first layers"),
        ("underflow", [0.0, 0.0, 1e-9, 1e-3, 0.5, 0.5], "vanish toward the first layers"),
        ("explode", [50.0, 40.0, 3.0, 1.0, 1.0, 1.0], "explode toward the first layers"),
    )
    def test_gradient_verdict(self, norms, expected):
        self.assertEqual(gradients.gradient_verdict(norms), expected)

    def test_gradient_verdict_factor(self):
        self.assertEqual(gradients.gradient_verdict([1.0, 3.0], factor=2.0),
                         "vanish toward the first layers")
        self.assertEqual(gradients.gradient_verdict([1.0, 3.0], factor=3.0),
                         "stay within an order of magnitude")

    @parameterized.named_parameters(
        ("empty", []), ("negative", [1.0, -1.0]), ("nan", [1.0, float("nan")]))
    def test_gradient_verdict_rejects_bad_norms(self, norms):
        with self.assertRaisesRegex(ValueError, "norms must be finite and >= 0"):
            gradients.gradient_verdict(norms)

    def test_saturation_counts_the_flat_tails_of_sigmoid_outputs(self):
        # s (1 - s) < 0.025 <=> s < 0.0257 or s > 0.9743.
        outputs = {"act_0": np.array([[0.01, 0.5], [0.99, 0.97]]),
                   "act_1": np.array([[0.02, 0.98], [0.999, 0.001]])}
        self.assertAllClose(gradients._saturation(outputs, "sigmoid"), [0.5, 1.0])
        self.assertTrue(np.all(np.isnan(gradients._saturation(outputs, "relu"))))


@pytest.mark.slow
class GradientsExperimentTest(tf.test.TestCase):
    def test_quick_run_writes_everything_with_sane_numbers(self):
        out = self.get_temp_dir()
        results = gradients.run(gradients.Config(quick=True, seeds=(42, 43), out_dir=out))
        run_dir = results.run_dir
        self.assertEqual(Path(run_dir).parent, Path(out) / "gradients")
        for name in ("config.json", "results.json", "report.md", "activation_std.png",
                     "gradient_norm.png", "saturation_histograms.png", "layer_profiles.csv"):
            self.assertTrue((run_dir / name).is_file(), name)
        self.assertLen(list(run_dir.glob("history_*.csv")), 4)

        table = results.table
        self.assertEqual(list(table["variant"]), list(DEFAULT_VARIANTS))
        for column in ("val_acc", "test_acc"):
            self.assertTrue(np.all((table[column] >= 0) & (table[column] <= 1)), column)
        # 5 x 100 hidden (quick mode), 784 inputs, 10 outputs.
        self.assertTrue(np.all(table["trainable"] == 119_910))
        for column in ("grad_first", "grad_last", "act_std_first", "act_std_last"):
            self.assertTrue(np.all(np.isfinite(table[column]) & (table[column] >= 0)), column)
        self.assertTrue(set(table["gradients"]) <= {
            "stay within an order of magnitude", "vanish toward the first layers",
            "explode toward the first layers"})
        sigmoid = table["activation"] == "sigmoid"
        self.assertTrue(np.all(np.isnan(table.loc[~sigmoid, "saturated"])))
        self.assertTrue(np.all(table.loc[sigmoid, "saturated"].between(0, 1)))
        # RandomNormal(1) saturates far more sigmoids than Glorot does.
        sat = table.set_index("variant")["saturated"]
        self.assertGreater(sat["sigmoid:random_normal"], 10 * sat["sigmoid:glorot_uniform"])
        self.assertGreater(table.set_index("variant").loc["relu:he_normal", "test_acc"], 0.2)

        layers = pd.read_csv(run_dir / "layer_profiles.csv")
        self.assertLen(layers, 4 * 5)
        self.assertEqual(list(layers["depth"].iloc[:5]), [0, 1, 2, 3, 4])
        first = layers[layers["depth"] == 0].set_index("variant")["grad_norm"]
        self.assertAllClose(first.to_numpy(), table["grad_first"].to_numpy())

        saved = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(saved["seed"], 42)
        self.assertLen(saved["table"], 4)
        report = (run_dir / "report.md").read_text()
        self.assertIn("| variant | activation | initializer |", report)
        self.assertIn("![Gradient flow at initialization", report)
        self.assertIn("## Diagnostics", report)
        self.assertRegex(report, r"\[saturation_histograms.png\]\(saturation_histograms.png\): "
                                 r"with RandomNormal\(1\) weights .* \d+% of act_0's outputs")
        self.assertEqual(results.figures, ["activation_std.png", "gradient_norm.png",
                                           "saturation_histograms.png", "seeds_spread.png"])
        # The output layer's gradient, drawn by the gradient flow, is finite and positive.
        for variant in DEFAULT_VARIANTS:
            value = saved["metrics"][f"{variant.replace(':', '_')}_grad_output"]
            self.assertTrue(np.isfinite(value) and value > 0, variant)
        self.assertIn("The chapter's claim that the relu:he_normal gradients", report)
        history = pd.read_csv(run_dir / "history_relu_he_normal.csv")
        self.assertIn("epoch_time", history.columns)
        self.assertLen(history, 1)


class GradientsCliTest(tf.test.TestCase):
    def test_help_lists_every_option(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            gradients.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(gradients.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())

    def test_bad_values_fail_with_a_message(self):
        with self.assertRaisesRegex(ValueError, "depth must be >= 1, got 0"):
            gradients.Config(depth=0)
        with self.assertRaisesRegex(ValueError, "learning_rate must be > 0, got -0.1"):
            gradients.Config(learning_rate=-0.1)
        with self.assertRaisesRegex(ValueError, "variants must name at least one"):
            gradients.Config(variants=())
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            gradients.main(["--variants", "relu:bogus"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("Unknown initializer 'bogus' in variant 'relu:bogus'", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(err):
            gradients.main(["--input-norm", "zscore"])
        self.assertIn("invalid choice: 'zscore'", err.getvalue())
