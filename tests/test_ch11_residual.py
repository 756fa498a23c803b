"""ch11.residual: per-layer gradient norms in closed form, the CLI, and --quick on MNIST."""

import contextlib
import dataclasses
import io

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from absl.testing import parameterized

from ch11 import residual
from recipes.builders import build_mlp
from recipes.specs import MLPSpec


class HiddenGradientNormsTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_linear_net_matches_the_chain_rule(self):
        # x -> W0 -> W1 -> W2 -> softmax, no activation: every gradient in closed form.
        model = build_mlp(MLPSpec(hidden_units=(3, 3), activation="linear"), (4,), 5)
        rng = np.random.default_rng(0)
        weights = [rng.normal(size=w.shape).astype("float32") * 0.5 for w in model.weights]
        model.set_weights(weights)
        w0, b0, w1, b1, w2, b2 = (w.astype("float64") for w in weights)
        x = rng.normal(size=(6, 4)).astype("float32")
        y = np.array([0, 1, 2, 3, 4, 0])
        h0 = x @ w0 + b0
        h1 = h0 @ w1 + b1
        z = h1 @ w2 + b2
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        delta = (p - np.eye(5)[y]) / len(x)  # d mean-CE / d logits
        d1 = delta @ w2.T
        d0 = d1 @ w1.T
        expected = [np.linalg.norm(x.T @ d0), np.linalg.norm(h0.T @ d1)]
        norms, loss = residual.hidden_gradient_norms(model, x, y)
        self.assertAllClose(norms, expected, rtol=1e-4)
        self.assertAllClose(loss, -np.mean(np.log(p[np.arange(6), y])), rtol=1e-5)

    def test_batch_norm_statistics_are_left_alone(self):
        model = build_mlp(MLPSpec(hidden_units=(8, 8), batch_norm="before"), (4,), 3)
        before = [v.numpy() for v in model.non_trainable_variables]
        x = np.random.default_rng(1).normal(3.0, 2.0, size=(16, 4)).astype("float32")
        norms, _ = residual.hidden_gradient_norms(model, x, np.zeros(16, "int64"))
        self.assertLen(norms, 2)
        for a, b in zip(before, model.non_trainable_variables):
            self.assertAllEqual(a, b.numpy())

    def test_skip_connections_keep_the_input_side_gradient_alive(self):
        # 30 sigmoid layers: the plain net's first gradient is orders below the residual's.
        x = np.random.default_rng(2).uniform(size=(64, 20)).astype("float32")
        y = np.arange(64) % 10
        first = {}
        for flag in (False, True):
            keras.utils.set_random_seed(0)
            model = build_mlp(MLPSpec.deep(30, 20, activation="sigmoid", residual=flag),
                              (20,), 10)
            first[flag] = residual.hidden_gradient_norms(model, x, y)[0][0]
        self.assertGreater(first[True], 1000 * first[False])


@pytest.mark.slow
class ResidualExperimentTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_quick_run_writes_everything_with_sane_numbers(self):
        config = residual.Config(quick=True, out_dir=self.get_temp_dir())
        results = residual.run(config)
        run_dir = results.run_dir
        for name in ("config.json", "results.json", "report.md", "layer_gradients.csv",
                     "gradients_sigmoid.png", "gradients_relu.png"):
            self.assertTrue((run_dir / name).is_file(), name)
        self.assertLen(list(run_dir.glob("history_*.csv")), 8)
        table = results.table
        self.assertLen(table, 8)  # 2 activations x plain/residual x no BN/BN
        layers = pd.read_csv(run_dir / "layer_gradients.csv")
        self.assertLen(layers, 8 * 2 * 6)  # quick mode: 6 hidden layers, 2 measurements
        init = layers[layers["when"] == "initialization"]
        self.assertTrue(np.all(np.isfinite(init["grad_norm"]) & (init["grad_norm"] >= 0)))
        # 6 x 100 hidden, 784 inputs, 10 outputs; the Add layers have no weights.
        t = table.set_index("variant")
        for act in ("sigmoid", "relu"):
            for kind in ("plain", "residual"):
                self.assertEqual(t.loc[f"{act} {kind}", "trainable"], 130_010)
                self.assertEqual(t.loc[f"{act} {kind} + BN before", "trainable"],
                                 130_010 - 600 + 1_200)
                self.assertEqual(t.loc[f"{act} {kind} + BN before", "non_trainable"], 1_200)
        for column in ("test_acc",):
            self.assertTrue(np.all((table[column] >= 0) & (table[column] <= 1)), column)
        self.assertTrue(np.all(table["init_loss"] > 0))
        self.assertAllClose(t["grad_first_init"] / t["grad_last_init"],
                            t["first_over_last_init"])
        report = (run_dir / "report.md").read_text()
        self.assertIn("| variant | activation | residual |", report)
        self.assertIn("![sigmoid: gradient norm", report)


class ResidualCliTest(tf.test.TestCase):
    def test_help_lists_every_option(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            residual.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(residual.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())

    def test_bad_values_fail_with_a_message(self):
        with self.assertRaisesRegex(ValueError, "depth must be >= 1, got 0"):
            residual.Config(depth=0)
        with self.assertRaisesRegex(ValueError, "Unknown batch_norm 'middle'. Valid: none, "
                                                "before, after."):
            residual.Config(batch_norms=("middle",))
        with self.assertRaisesRegex(ValueError, "activations must name at least one of relu, "):
            residual.Config(activations=())
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            residual.main(["--activations", "relu6x"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("invalid choice: 'relu6x'", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(err):
            residual.main(["--learning-rate", "-1"])
        self.assertIn("learning_rate must be > 0, got -1.0", err.getvalue())
