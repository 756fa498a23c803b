"""ch11.losses: the logit-gradient table in closed form, the CLI, and --quick on real MNIST."""

import contextlib
import dataclasses
import io
import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from absl.testing import parameterized

from ch11 import losses
from recipes.data import load_mnist


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


class LogitGradientsTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.parameters(0.0, 1.0, 3.0, 8.0)
    def test_matches_the_closed_form(self, margin):
        k = 10
        row = losses.logit_gradients([margin], num_classes=k).iloc[0]
        z = np.zeros(k)
        z[1] = margin
        p = _softmax(z)
        y = np.eye(k)[0]
        ce_grad = p - y  # cross-entropy on softmax logits
        jac = np.diag(p) - np.outer(p, p)
        mse_grad = jac.T @ (2.0 / k * (p - y))  # mean over k classes
        self.assertAllClose(row["p_wrong"], p[1])
        self.assertAllClose(row["ce_loss"], -np.log(p[0]), rtol=1e-5)
        self.assertAllClose(row["mse_loss"], np.mean((p - y) ** 2), rtol=1e-5)
        self.assertAllClose(row["ce_grad_norm"], np.linalg.norm(ce_grad), rtol=1e-5)
        self.assertAllClose(row["ce_grad_true"], ce_grad[0], rtol=1e-5)
        self.assertAllClose(row["mse_grad_norm"], np.linalg.norm(mse_grad), rtol=1e-4)
        self.assertAllClose(row["mse_grad_true"], mse_grad[0], rtol=1e-4)

    def test_mse_gradient_vanishes_while_cross_entropys_does_not(self):
        table = losses.logit_gradients([0.0, 4.0, 8.0, 12.0])
        self.assertAllClose(table["ce_grad_norm"].iloc[0], np.sqrt(0.9), rtol=1e-5)
        self.assertAllClose(table["ce_grad_norm"].iloc[-1], np.sqrt(2.0), rtol=1e-3)
        self.assertTrue(np.all(np.diff(table["mse_grad_norm"].iloc[1:]) < 0))
        self.assertLess(table["mse_grad_norm"].iloc[-1], 1e-4)
        self.assertGreater(table["ce_over_mse"].iloc[-1], 1e4)


@pytest.mark.slow
class LossesExperimentTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_quick_run_writes_everything_with_sane_numbers(self):
        results = losses.run(losses.Config(quick=True, seeds=(42, 43), out_dir=self.get_temp_dir()))
        run_dir = results.run_dir
        for name in ("config.json", "results.json", "report.md", "accuracy_curves.png",
                     "logit_gradients.png", "logit_gradients.csv",
                     "history_crossentropy.csv", "history_mse.csv",
                     "history_binary_crossentropy.csv"):
            self.assertTrue((run_dir / name).is_file(), name)
        table = results.table.set_index("loss")
        self.assertEqual(list(table.index), ["crossentropy", "mse", "binary_crossentropy"])
        for column in ("val_acc", "test_acc", "val_acc_epoch1"):
            self.assertTrue(np.all((table[column] >= 0) & (table[column] <= 1)), column)
        # The binary task's trivial baseline: the share of non-5s among the quick test slice.
        _, (_, y_test) = load_mnist(log=lambda _: None)
        self.assertAllClose(table.loc["binary_crossentropy", "majority_acc"],
                            1 - np.mean(y_test[:1000] == 5))
        auc = table.loc["binary_crossentropy", "test_auc"]
        self.assertTrue(0 <= auc <= 1)
        self.assertGreater(table.loc["crossentropy", "test_acc"], 0.2)
        grads = pd.read_csv(run_dir / "logit_gradients.csv")
        self.assertLen(grads, len(losses.Config().margins))
        report = (run_dir / "report.md").read_text()
        self.assertIn("## Gradient at a confidently wrong answer", report)
        self.assertIn("| margin | p_wrong |", report)
        saved = json.loads((run_dir / "results.json").read_text())
        self.assertGreater(saved["metrics"]["max_margin_ce_over_mse"], 1e4)


class LossesCliTest(tf.test.TestCase):
    def test_help_lists_every_option(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            losses.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(losses.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())

    def test_bad_values_fail_with_a_message(self):
        with self.assertRaisesRegex(ValueError,
                                    "positive_digit must be an MNIST digit 0-9, got 10"):
            losses.Config(positive_digit=10)
        with self.assertRaisesRegex(ValueError, r"margins must be >= 0, got -1.0"):
            losses.Config(margins=(0.0, -1.0))
        with self.assertRaisesRegex(ValueError, r"margins must be a finite number >= 0, got nan"):
            losses.Config(margins=(float("nan"),))
        with self.assertRaisesRegex(ValueError, "positive_digit must be an MNIST digit 0-9, got "
                                                "3.0"):
            losses.Config(positive_digit=3.0)
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            losses.main(["--positive-digit", "-1"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("positive_digit must be an MNIST digit 0-9, got -1", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(err):
            losses.main(["--optimizer", "adamz"])
        self.assertIn("invalid choice: 'adamz'", err.getvalue())
