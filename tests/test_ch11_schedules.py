"""ch11.schedules: the scaled schedules' values, the tracker, and a --quick run on real MNIST."""

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

from ch11 import schedules
from recipes.schedules import CyclicalLR, OneCycle, PowerSchedule


def _lr(schedule, step: int) -> float:
    return float(keras.ops.convert_to_numpy(schedule(step)))


class ScheduleForTest(tf.test.TestCase, parameterized.TestCase):
    """The book's 25-epoch time constants, scaled to 10 epochs of 100 steps."""

    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.parameters("constant", "performance")
    def test_constant_and_performance_are_floats(self, name):
        self.assertEqual(schedules.schedule_for(name, 0.1, 100, 10), 0.1)

    def test_power_halves_after_the_scaled_s(self):
        s = schedules.schedule_for("power", 0.1, 100, 10)
        self.assertIsInstance(s, PowerSchedule)
        self.assertEqual(s.s, 233.0)  # 10,000 / (25 * 1719) of 1,000 steps
        self.assertAllClose([_lr(s, 0), _lr(s, 233), _lr(s, 466)], [0.1, 0.05, 0.1 / 3])

    def test_exponential_drops_tenfold_at_80_percent(self):
        s = schedules.schedule_for("exponential", 0.1, 100, 10)
        self.assertAllClose([_lr(s, 0), _lr(s, 800), _lr(s, 400)],
                            [0.1, 0.01, 0.1 * 0.1 ** 0.5], rtol=1e-5)

    def test_piecewise_drops_after_20_and_60_percent(self):
        s = schedules.schedule_for("piecewise", 0.1, 100, 10)
        self.assertAllClose([_lr(s, t) for t in (0, 199, 200, 599, 600, 999)],
                            [0.1, 0.1, 0.05, 0.05, 0.01, 0.01])

    def test_1cycle_spans_the_run_and_cyclical_keeps_two_epochs(self):
        one = schedules.schedule_for("1cycle", 0.1, 100, 10)
        self.assertIsInstance(one, OneCycle)
        self.assertEqual(one.total_steps, 1000)
        self.assertAllClose([_lr(one, 0), _lr(one, 450), _lr(one, 900), _lr(one, 1000)],
                            [0.01, 0.1, 0.01, 1e-5])
        cyc = schedules.schedule_for("cyclical", 0.1, 100, 10)
        self.assertIsInstance(cyc, CyclicalLR)
        self.assertAllClose([_lr(cyc, 0), _lr(cyc, 200), _lr(cyc, 400)], [0.025, 0.1, 0.025])

    def test_unknown_name_lists_the_valid_ones(self):
        with self.assertRaisesRegex(ValueError, r"Unknown schedule 'step'\. Valid: constant"):
            schedules.schedule_for("step", 0.1, 100, 10)

    def test_tracker_logs_the_rate_and_the_true_test_accuracy(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(300, 4)).astype("float32")
        y = (x[:, 0] + x[:, 1] > 0).astype("int64")
        inputs = keras.Input((4,))
        model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
        model.compile(optimizer=keras.optimizers.SGD(OneCycle(20, max_lr=0.5)),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x[:200], y[:200], batch_size=20, epochs=2, verbose=0,
                            callbacks=[schedules._Track(x[200:], y[200:])])
        _, acc = model.evaluate(x[200:], y[200:], verbose=0)
        self.assertAllClose(history.history["test_accuracy"][-1], acc)
        self.assertAllClose(history.history["lr"], [0.05, 0.5 - 0.45 * 1 / 9])


@pytest.mark.slow
class SchedulesExperimentTest(tf.test.TestCase):
    def test_quick_run_writes_everything_with_sane_numbers(self):
        out = self.get_temp_dir()
        results = schedules.run(schedules.Config(quick=True, out_dir=out))
        run_dir = results.run_dir
        self.assertEqual(Path(run_dir).parent, Path(out) / "schedules")
        figures = ("lr_finder_mlp.png", "lr_finder_cnn.png", "schedule_curves.png",
                   "mlp_learning_curves.png", "cnn_learning_curves.png", "cnn_test_accuracy.png")
        for name in ("config.json", "results.json", "report.md", *figures):
            self.assertTrue((run_dir / name).is_file(), name)
        self.assertLen(list(run_dir.glob("history_*.csv")), 9)

        table = results.table.set_index(["model", "schedule"])
        self.assertLen(table, 9)  # 7 schedules on the MLP, 1cycle and constant on the CNN
        for column in ("val_acc", "test_acc", "best_test_acc"):
            self.assertTrue(np.all((table[column] >= 0) & (table[column] <= 1)), column)
        self.assertTrue(np.all(np.isfinite(table[["train_loss", "s_per_epoch"]])))
        # MLP 784-300-100-10; CNN conv 32 (bias) -> conv 64 (no bias) + BN -> Dense 128
        # (no bias) + BN -> 10.
        self.assertEqual(table.loc[("mlp", "constant"), "params"], 266_610)
        self.assertEqual(table.loc[("cnn", "1cycle"), "params"], 422_218)
        # Closed-form rates after one quick epoch (2,000 images, batch 128: 16 steps).
        mlp = table.loc["mlp"]
        lr = mlp.loc["constant", "learning_rate"]
        self.assertAllClose(mlp["learning_rate"], [lr] * 7)
        self.assertAllClose(mlp.loc["constant", "final_lr"], lr)
        self.assertAllClose(mlp.loc["power", "final_lr"], lr / (1 + 16 / 4), rtol=1e-5)
        self.assertAllClose(mlp.loc["piecewise", "final_lr"], lr / 10, rtol=1e-5)
        self.assertAllClose(mlp.loc["1cycle", "final_lr"], lr / 10 / 1000, rtol=1e-4)

        saved = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(saved["seed"], 42)
        metrics = saved["metrics"]
        self.assertAllClose(metrics["mlp_learning_rate"], metrics["mlp_finder_suggestion"])
        self.assertAllClose(metrics["cnn_learning_rate"], metrics["cnn_finder_suggestion"])
        self.assertAllClose(lr, metrics["mlp_finder_suggestion"])
        self.assertIsInstance(metrics["claim_1cycle_reaches_target"], bool)
        report = (run_dir / "report.md").read_text()
        self.assertIn("| model | schedule | params |", report)
        self.assertIn("![LR range test on the MLP](lr_finder_mlp.png)", report)
        history = pd.read_csv(run_dir / "history_mlp_1cycle.csv")
        for column in ("epoch_time", "lr", "test_accuracy", "val_accuracy"):
            self.assertIn(column, history.columns)
        self.assertAllClose(history["lr"].iloc[0], lr / 10)  # 1cycle starts at a tenth


class SchedulesCliTest(tf.test.TestCase):
    def test_help_lists_every_option(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            schedules.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(schedules.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())

    def test_bad_values_fail_with_a_message(self):
        with self.assertRaisesRegex(ValueError, "cnn_epochs must be >= 1, got 0"):
            schedules.Config(cnn_epochs=0)
        with self.assertRaisesRegex(ValueError, r"schedules must name distinct schedules among "
                                                r"constant, .*; got \('bogus',\)"):
            schedules.Config(schedules=("bogus",))
        with self.assertRaisesRegex(ValueError, r"cnn_schedules must name distinct schedules"):
            schedules.Config(cnn_schedules=("1cycle", "1cycle"))
        with self.assertRaisesRegex(ValueError, r"target_accuracy must be in \(0, 1\], got 1.5"):
            schedules.Config(target_accuracy=1.5)
        for bad in (float("nan"), float("inf")):
            with self.assertRaisesRegex(ValueError, r"^cnn_max_lr must be > 0 or None, got "):
                schedules.Config(cnn_max_lr=bad)
            with self.assertRaisesRegex(ValueError, "target_accuracy must be a finite number"):
                schedules.Config(target_accuracy=bad)
        self.assertIsNone(schedules.Config(learning_rate=None).learning_rate)
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            schedules.main(["--schedules", "constant", "steps"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("invalid choice: 'steps'", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(err):
            schedules.main(["--learning-rate", "-0.1"])
        self.assertIn("learning_rate must be > 0 or None, got -0.1", err.getvalue())
