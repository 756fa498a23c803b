"""ch11.initialization: the matched/mismatched table, the CLI, and a --quick run on MNIST."""

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

from ch11 import initialization
from ch11.initialization.config import DEFAULT_VARIANTS


class MatchingTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.named_parameters(
        ("glorot", "glorot_uniform", "glorot"), ("glorot_alias", "glorot", "glorot"),
        ("he", "he_normal", "he"), ("he_fan_avg", "he_avg_uniform", "he"),
        ("vs_fan_avg", "variance_scaling_fan_avg", "he"), ("lecun", "lecun_uniform", "lecun"),
        ("random", "random_normal", "random"))
    def test_initializer_family(self, name, family):
        self.assertEqual(initialization.initializer_family(name), family)

    @parameterized.named_parameters(
        ("tanh_glorot", "tanh", "glorot_uniform", True),
        ("relu_glorot", "relu", "glorot_uniform", False),
        ("relu_he", "relu", "he_normal", True),
        ("relu_he_avg", "relu", "he_avg_uniform", True),
        ("elu_he", "elu", "he_uniform", True),
        ("tanh_he", "tanh", "he_normal", False),
        ("selu_lecun", "selu", "lecun_normal", True),
        ("selu_he_avg", "selu", "he_avg_uniform", False),
        ("relu_lecun", "relu", "lecun_normal", False),
        ("sigmoid_random", "sigmoid", "random_normal", False))
    def test_is_matched(self, activation, initializer, expected):
        self.assertEqual(initialization.is_matched(activation, initializer), expected)

    def test_default_variants_pair_each_initializer_with_a_match_and_a_mismatch(self):
        pairs = [v.split(":") for v in DEFAULT_VARIANTS]
        by_init = {}
        for activation, init in pairs:
            by_init.setdefault(init, []).append(initialization.is_matched(activation, init))
        self.assertEqual(set(by_init), {"glorot_uniform", "he_normal", "lecun_normal",
                                        "he_avg_uniform"})
        for flags in by_init.values():
            self.assertEqual(sorted(flags), [False, True])


@pytest.mark.slow
class InitializationExperimentTest(tf.test.TestCase):
    def test_quick_run_writes_everything_with_sane_numbers(self):
        out = self.get_temp_dir()
        results = initialization.run(initialization.Config(quick=True, out_dir=out))
        run_dir = results.run_dir
        self.assertEqual(Path(run_dir).parent, Path(out) / "initialization")
        for name in ("config.json", "results.json", "report.md", "learning_curves_tanh.png",
                     "learning_curves_relu.png", "learning_curves_selu.png",
                     "activation_std_init.png"):
            self.assertTrue((run_dir / name).is_file(), name)
        self.assertLen(list(run_dir.glob("history_*.csv")), 8)

        table = results.table.set_index("variant")
        self.assertEqual(list(table.index), list(DEFAULT_VARIANTS))
        self.assertEqual(list(table["matched"]), [True, False] * 4)
        for column in ("val_acc", "test_acc", "val_acc_epoch1"):
            self.assertTrue(np.all((table[column] >= 0) & (table[column] <= 1)), column)
        self.assertTrue(np.all(np.isfinite(table["init_std_last_layer"])))
        # Glorot (and LeCun) halve a ReLU signal's variance per layer, He keeps it: after
        # 5 layers the std is about (1/2)^(5/2) ~ 0.18 of He's.
        std = table["init_std_last_layer"]
        self.assertLess(std["relu:glorot_uniform"], 0.5 * std["relu:he_normal"])
        self.assertLess(std["relu:lecun_normal"], 0.5 * std["relu:he_normal"])
        self.assertGreater(table["test_acc"].max(), 0.3)

        saved = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(saved["seed"], 42)
        self.assertIn("relu_he_normal_val_acc", saved["metrics"])
        report = (run_dir / "report.md").read_text()
        self.assertIn("| variant | activation | initializer | matched |", report)
        self.assertIn("![relu: learning curves per initializer", report)
        self.assertIn("relu, validation accuracy after epoch 1:", report)
        history = pd.read_csv(run_dir / "history_selu_lecun_normal.csv")
        self.assertEqual(list(history.columns[:1]), ["epoch"])
        self.assertLen(history, 1)


class InitializationCliTest(tf.test.TestCase):
    def test_help_lists_every_option(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            initialization.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(initialization.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())

    def test_bad_values_fail_with_a_message(self):
        with self.assertRaisesRegex(ValueError, "epochs must be >= 1, got 0"):
            initialization.Config(epochs=0)
        with self.assertRaisesRegex(ValueError, "Unknown activation 'relu6' in variant"):
            initialization.Config(variants=("relu6:he_normal",))
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            initialization.main(["--optimizer", "adamz"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("invalid choice: 'adamz'", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(err):
            initialization.main(["--learning-rate", "0"])
        self.assertIn("learning_rate must be > 0, got 0.0", err.getvalue())
