"""ch11.clipping: the gradient monitor's numbers, the CLI, and a --quick run on real MNIST."""

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

from ch11 import clipping
from ch11.clipping import report as clipping_report


class GradientMonitorTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def _softmax_regression(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(6, 4)).astype("float32")
        y = np.array([0, 1, 2, 1, 0, 2])
        w = rng.normal(size=(4, 3)).astype("float32")
        b = np.array([0.1, -0.2, 0.3], dtype="float32")
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        model.set_weights([w, b])
        return model, x, y, w, b

    def test_loss_and_global_norm_match_the_closed_form(self):
        model, x, y, w, b = self._softmax_regression()
        monitor = clipping._GradientMonitor(x, y)
        monitor.set_model(model)
        loss, norm = monitor.measure()
        logits = x @ w + b
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        onehot = np.eye(3)[y]
        expected_loss = -np.log(p[np.arange(6), y]).mean()
        grad_w = x.T @ (p - onehot) / 6  # d mean CE / dW for softmax regression
        grad_b = (p - onehot).mean(axis=0)
        expected_norm = np.sqrt((grad_w**2).sum() + (grad_b**2).sum())
        self.assertAllClose(loss, expected_loss, rtol=1e-5)
        self.assertAllClose(norm, expected_norm, rtol=1e-5)

    @parameterized.parameters((1, [1, 2, 3, 4, 5]), (2, [2, 4]), (5, [5]))
    def test_measures_every_n_steps(self, every, steps):
        model, x, y, *_ = self._softmax_regression()
        monitor = clipping._GradientMonitor(x, y, every=every)
        monitor.set_model(model)
        monitor.on_train_begin()
        for batch in range(5):
            monitor.on_train_batch_end(batch)
        self.assertEqual(monitor.steps, [0, *steps])  # step 0: the initial weights
        self.assertLen(monitor.grad_norms, len(steps) + 1)
        self.assertAllClose(monitor.grad_norms, [monitor.measure()[1]] * (len(steps) + 1))

    def test_first_nonfinite_step(self):
        first = clipping_report.first_nonfinite
        self.assertEqual(first([1, 2, 3, 4], [0.5, 2.0, np.nan, np.inf]), 3)
        self.assertEqual(first([5, 10], [1.0, np.inf]), 10)
        self.assertIsNone(first([1, 2], [0.1, 0.2]))


@pytest.mark.slow
class ClippingExperimentTest(tf.test.TestCase):
    def test_quick_run_writes_everything_with_sane_numbers(self):
        out = self.get_temp_dir()
        results = clipping.run(clipping.Config(quick=True, seeds=(42, 43), out_dir=out))
        run_dir = results.run_dir
        self.assertEqual(Path(run_dir).parent, Path(out) / "clipping")
        for name in ("config.json", "results.json", "report.md", "steps.csv", "grad_norm.png",
                     "loss_per_step.png", "learning_curves.png"):
            self.assertTrue((run_dir / name).is_file(), name)
        for clip in clipping.CLIPS:
            self.assertTrue((run_dir / f"history_{clip}.csv").is_file(), clip)

        table = results.table
        self.assertEqual(table["clipping"].tolist(), list(clipping.CLIPS))
        for column in ("val_acc", "test_acc"):
            self.assertTrue(np.all((table[column] >= 0) & (table[column] <= 1)), column)
        # 2,000 quick images / batch 32 = 63 steps, measured after each one.
        self.assertEqual(table["steps"].tolist(), [63] * 4)
        self.assertTrue(np.all(table["grad_norm_median"] > 0))
        self.assertTrue(np.all(table["grad_norm_max"] >= table["grad_norm_p99"]))
        self.assertTrue(np.all(table["grad_norm_p99"] >= table["grad_norm_median"]))
        # Quick mode: 5 x 100 hidden, 784 inputs, 10 outputs.
        self.assertEqual(table["params"].tolist(), [119_910] * 4)
        self.assertAllClose(table["threshold"].iloc[1:], [1.0, 1.0, 1.0])
        # Every variant starts from the same weights: same gradient norm at step 0.
        self.assertAllClose(table["grad_norm_init"], [table["grad_norm_init"].iloc[0]] * 4,
                            rtol=1e-5)

        steps = pd.read_csv(run_dir / "steps.csv")
        self.assertEqual(list(steps.columns), ["variant", "step", "grad_norm", "loss"])
        self.assertLen(steps, 4 * 64)  # steps 0..63
        self.assertEqual(steps["step"].iloc[:2].tolist(), [0, 1])
        saved = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(saved["seed"], 42)
        self.assertIn("none_grad_norm_max", saved["metrics"])
        report = (run_dir / "report.md").read_text()
        self.assertIn("| clipping | threshold |", report)
        self.assertIn("![Global gradient norm", report)


class ClippingCliTest(tf.test.TestCase):
    def test_help_lists_every_option(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            clipping.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(clipping.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())

    def test_bad_values_fail_with_a_message(self):
        with self.assertRaisesRegex(ValueError, "depth must be >= 1, got 0"):
            clipping.Config(depth=0)
        with self.assertRaisesRegex(ValueError, r"clipnorm must be > 0, got -1.0"):
            clipping.Config(clipnorm=-1.0)
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            clipping.main(["--optimizer", "adamz"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("invalid choice: 'adamz'", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(err):
            clipping.main(["--global-clipnorm", "0"])
        self.assertIn("global_clipnorm must be > 0, got 0.0", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            clipping.main(["--activation", "relux"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("invalid choice: 'relux'", err.getvalue())
