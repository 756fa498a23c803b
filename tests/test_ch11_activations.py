"""ch11.activations: the dead-unit count, the CLI, and a --quick run on MNIST."""

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

from ch11 import activations
from ch11.activations.config import DEFAULT_ACTIVATIONS
from recipes.builders import build_mlp
from recipes.specs import MLPSpec


class DeadUnitFractionTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def _model(self, activation="relu"):
        # Two hidden layers of 4 units on 3 positive inputs; weights set by hand.
        model = build_mlp(MLPSpec.deep(2, 4, activation=activation), (3,), 2)
        sign = np.array([-1.0, -1.0, 1.0, 1.0], dtype="float32")   # units 0, 1 always < 0
        model.get_layer("hidden_0").set_weights([np.ones((3, 4), "float32") * sign, sign])
        # Layer 2 sees [0, 0, a, a] with a > 0: unit 0 gets -a - 1 < 0, the others > 0.
        kernel = np.ones((4, 4), "float32")
        kernel[:, 0] = -1.0
        model.get_layer("hidden_1").set_weights([kernel, np.array([-1, 1, 1, 1], "float32")])
        return model

    def test_counts_units_that_are_zero_on_every_example(self):
        x = np.random.default_rng(0).uniform(0.1, 1.0, size=(20, 3)).astype("float32")
        self.assertAllClose(activations.dead_unit_fraction(self._model(), x), 3 / 8)

    def test_per_layer_fractions_come_from_activation_stats(self):
        x = np.random.default_rng(0).uniform(0.1, 1.0, size=(20, 3)).astype("float32")
        stats = activations._dead_per_layer(self._model(), x)
        self.assertEqual(list(stats["layer"]), ["act_0", "act_1"])
        self.assertAllClose(stats["dead_fraction"], [2 / 4, 1 / 4])
        diverged = activations._dead_per_layer(self._model(), np.full((2, 3), np.nan, "float32"))
        self.assertTrue(np.all(np.isnan(diverged["dead_fraction"])))

    def test_a_unit_alive_on_one_example_is_not_dead(self):
        x = np.random.default_rng(0).uniform(0.1, 1.0, size=(20, 3)).astype("float32")
        x[0] = [-5.0, -5.0, -5.0]  # wakes units 0 and 1 of layer 1 on this one example
        self.assertAllClose(activations.dead_unit_fraction(self._model(), x), 1 / 8)

    @parameterized.parameters("leaky_relu", "elu")
    def test_units_with_a_negative_side_never_die(self, activation):
        x = np.random.default_rng(0).uniform(0.1, 1.0, size=(20, 3)).astype("float32")
        self.assertEqual(activations.dead_unit_fraction(self._model(activation), x), 0.0)

    def test_diverged_net_gives_nan(self):
        model = self._model()
        x = np.full((2, 3), np.nan, dtype="float32")
        self.assertTrue(np.isnan(activations.dead_unit_fraction(model, x)))

    def test_model_without_act_layers_is_rejected(self):
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
        with self.assertRaisesRegex(ValueError, "found no 'act_\\*' layer"):
            activations.dead_unit_fraction(model, np.zeros((1, 3), "float32"))


@pytest.mark.slow
class ActivationsExperimentTest(tf.test.TestCase):
    def test_quick_run_writes_everything_with_sane_numbers(self):
        out = self.get_temp_dir()
        results = activations.run(activations.Config(quick=True, out_dir=out))
        run_dir = results.run_dir
        self.assertEqual(Path(run_dir).parent, Path(out) / "activations")
        for name in ("config.json", "results.json", "report.md", "learning_curves.png",
                     "accuracy_vs_time.png", "dying_relu.png", "dead_units_per_layer.png",
                     "dying_relu_histograms.png", "dead_units_per_layer.csv"):
            self.assertTrue((run_dir / name).is_file(), name)
        self.assertLen(list(run_dir.glob("history_*.csv")), 12)

        table = results.table
        compare = table[table["part"] == "compare"].set_index("activation")
        demo = table[table["part"] == "dying_relu"].set_index("activation")
        self.assertEqual(list(compare.index), list(DEFAULT_ACTIVATIONS))
        self.assertEqual(list(demo.index), ["relu", "leaky_relu", "elu"])
        for column in ("val_acc", "test_acc", "best_val_acc"):
            self.assertTrue(np.all((table[column] >= 0) & (table[column] <= 1)), column)
        self.assertTrue(np.all(np.isfinite(table["s_per_epoch"])))
        for column in ("dead_init", "dead_final", "dead_max_layer"):
            self.assertTrue(np.all(table[column].between(0, 1)), column)
        # The worst layer has at least the net's overall share of dead units.
        self.assertTrue(np.all(table["dead_max_layer"] >= table["dead_final"]))
        layers = pd.read_csv(run_dir / "dead_units_per_layer.csv")
        self.assertLen(layers, 12 * 5)  # 12 nets x 5 hidden layers (quick mode)
        self.assertTrue(np.all(layers["units"] == 100))
        self.assertTrue(np.all(layers["dead_fraction"] <= layers["frac_zero"]))
        per_net = layers.groupby(["part", "activation"], sort=False)["dead_fraction"].mean()
        self.assertAllClose(per_net.to_numpy(), table["dead_final"].to_numpy())
        self.assertAllClose(layers.groupby(["part", "activation"], sort=False)[
            "dead_fraction"].max().to_numpy(), table["dead_max_layer"].to_numpy())
        # Only ReLU can output exactly 0 for a whole validation batch.
        for name in ("leaky_relu", "prelu", "rrelu", "elu", "selu"):
            self.assertEqual(compare.loc[name, "dead_final"], 0.0, name)
        self.assertEqual(demo.loc["leaky_relu", "dead_final"], 0.0)
        # 5 x 100 hidden (quick mode), 784 inputs, 10 outputs; PReLU adds 100 slopes a layer.
        self.assertEqual(compare.loc["relu", "trainable"], 119_910)
        self.assertEqual(compare.loc["prelu", "trainable"], 119_910 + 500)
        self.assertEqual(demo.loc["relu", "epochs"], 2)
        self.assertEqual(demo.loc["relu", "learning_rate"], 0.01)
        self.assertGreater(compare["test_acc"].max(), 0.3)

        saved = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(saved["seed"], 42)
        self.assertIn("dying_relu_relu_dead_final", saved["metrics"])
        report = (run_dir / "report.md").read_text()
        self.assertIn("| part | activation | optimizer |", report)
        self.assertIn("Dying ReLUs (adam at 0.01, 2 epochs on 1000 images)", report)
        self.assertIn("## Diagnostics", report)
        self.assertIn("[dead_units_per_layer.png](dead_units_per_layer.png): the dead "
                      "fraction per layer after 2 epochs at adam 0.01", report)
        self.assertIn("leaky_relu: no dead unit in any layer", report)
        self.assertRegex(report, r"Share of exact zeros in the last hidden layer: relu \d+%")
        history = pd.read_csv(run_dir / "history_dying_relu_relu.csv")
        self.assertLen(history, 2)
        self.assertAllClose(history["dead_fraction"].iloc[-1], demo.loc["relu", "dead_final"])


class ActivationsCliTest(tf.test.TestCase):
    def test_help_lists_every_option(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            activations.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(activations.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())

    def test_bad_values_fail_with_a_message(self):
        with self.assertRaisesRegex(ValueError, "demo_epochs must be >= 1, got 0"):
            activations.Config(demo_epochs=0)
        with self.assertRaisesRegex(ValueError, "activations must name at least one"):
            activations.Config(activations=())
        with self.assertRaisesRegex(ValueError, "Unknown activation\\(s\\) \\['relu6'\\] in "
                                                "demo_activations. Valid: relu, "):
            activations.Config(demo_activations=("relu6",))
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            activations.main(["--activations", "relu", "swishy"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("invalid choice: 'swishy'", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(err):
            activations.main(["--demo-learning-rate", "-1"])
        self.assertIn("demo_learning_rate must be > 0, got -1.0", err.getvalue())
