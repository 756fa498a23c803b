"""ch11.transfer: the task split, the seed summary, the CLI, and a --quick run on MNIST."""

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

from ch11 import transfer
from ch11.transfer import report as transfer_report


def _fake_mnist():
    y_train = np.array([0, 4, 9, 1, 9, 4, 7, 2, 4, 3, 5, 6, 8])
    y = {"train": y_train, "valid": np.array([4, 9, 0, 1]), "test": np.array([9, 9, 8])}
    data = {}
    for part, labels in y.items():
        data[f"x_{part}"] = labels[:, None, None] * np.ones((len(labels), 2, 2), "float32")
        data[f"y_{part}"] = labels
    return data


class SplitTasksTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_task_a_relabels_the_other_eight_digits(self):
        data_a, _ = transfer.split_tasks(_fake_mnist(), (4, 9), 3)
        # digits 0,1,2,3,5,6,7,8 become 0..7
        self.assertAllEqual(data_a["y_train"], [0, 1, 6, 2, 3, 4, 5, 7])
        self.assertAllEqual(data_a["x_train"][:, 0, 0], [0, 1, 7, 2, 3, 5, 6, 8])
        self.assertAllEqual(data_a["y_valid"], [0, 1])
        self.assertAllEqual(data_a["y_test"], [7])

    @parameterized.parameters((1,), (3,), (5,))
    def test_task_b_is_binary_and_truncated(self, n):
        _, data_b = transfer.split_tasks(_fake_mnist(), (4, 9), n)
        # training digits of B in order: 4, 9, 9, 4, 4 -> label 1 for the second digit (9)
        self.assertAllEqual(data_b["y_train"], [0, 1, 1, 0, 0][:n])
        self.assertEqual(data_b["y_train"].dtype, np.float32)
        self.assertAllEqual(data_b["x_train"][:, 0, 0], [4, 9, 9, 4, 4][:n])
        self.assertAllEqual(data_b["y_valid"], [0, 1])
        self.assertAllEqual(data_b["y_test"], [1, 1])

    def test_too_few_b_images_raise(self):
        with self.assertRaisesRegex(ValueError, "Task B has only 5 training images, fewer than "
                                                "n_train_b=6"):
            transfer.split_tasks(_fake_mnist(), (4, 9), 6)

    def test_summary_mean_spread_and_wins(self):
        seeds = pd.DataFrame({"seed": [1, 2, 3], "scratch": [0.10, 0.20, 0.30],
                              "frozen": [0.12, 0.18, 0.33], "fine_tuned": [0.05, 0.25, 0.10]})
        table = transfer._summary(seeds, transfer.Config()).set_index("variant")
        self.assertAllClose(table.loc["scratch", "mean_error"], 0.2)
        self.assertAllClose(table.loc["scratch", "std_error"], 0.1)
        self.assertAllClose(table.loc["fine_tuned", "mean_error"], 0.4 / 3)
        self.assertAllClose(table.loc["fine_tuned", "std_error"],
                            np.std([0.05, 0.25, 0.10], ddof=1))
        self.assertAllClose(table.loc["frozen", "min_error"], 0.12)
        self.assertAllClose(table.loc["frozen", "max_error"], 0.33)
        self.assertEqual(table.loc["frozen", "beats_scratch"], "1/3")
        self.assertEqual(table.loc["fine_tuned", "beats_scratch"], "2/3")
        self.assertEqual(table["epochs"].tolist(), [20, 4, 20])
        notes = " ".join(transfer_report.notes(seeds, transfer.Config()))
        self.assertIn("seed 3 shows a 67% error reduction (0.3000 -> 0.1000)", notes)
        self.assertIn("seed 2, shows a 25% error increase (0.2000 -> 0.2500)", notes)
        self.assertIn("B on A wins on 2 of 3 seeds", notes)

    def test_test_error_callback(self):
        model = keras.Sequential([keras.Input((1,)),
                                  keras.layers.Dense(1, activation="sigmoid")])
        model.set_weights([np.array([[1.0]], "float32"), np.array([0.0], "float32")])
        x = np.array([[-2.0], [-1.0], [1.0], [3.0]], "float32")  # p > 0.5 iff x > 0
        callback = transfer._TestError(x, np.array([0, 1, 1, 0], "float32"))
        callback.set_model(model)
        logs = {}
        callback.on_epoch_end(0, logs)
        self.assertAllClose(logs["test_error"], 0.5)


@pytest.mark.slow
class TransferExperimentTest(tf.test.TestCase):
    def test_quick_run_writes_everything_with_sane_numbers(self):
        out = self.get_temp_dir()
        results = transfer.run(transfer.Config(quick=True, seeds=(42, 43), out_dir=out))
        run_dir = results.run_dir
        self.assertEqual(Path(run_dir).parent, Path(out) / "transfer")
        for name in ("config.json", "results.json", "report.md", "error_per_seed.png",
                     "b_learning_curves.png", "a_learning_curves.png", "history_A.csv",
                     "history_B_scratch_s42.csv", "history_B_on_A_s43.csv"):
            self.assertTrue((run_dir / name).is_file(), name)

        table = results.table
        self.assertEqual(table["variant"].tolist(), ["scratch", "frozen", "fine_tuned"])
        self.assertEqual(table["seeds"].tolist(), [2, 2, 2])
        for column in ("mean_error", "min_error", "max_error"):
            self.assertTrue(np.all((table[column] >= 0) & (table[column] <= 1)), column)
        self.assertTrue(np.all(table["min_error"] <= table["mean_error"]))
        self.assertTrue(np.all(table["mean_error"] <= table["max_error"]))

        saved = json.loads((run_dir / "results.json").read_text())
        metrics = saved["metrics"]
        self.assertLen(metrics["per_seed"], 2)
        self.assertEqual([r["seed"] for r in metrics["per_seed"]], [42, 43])
        # Quick mode: 2 x 100 hidden; A has 8 outputs, B one sigmoid unit.
        self.assertEqual(metrics["model_A_params"], 784 * 100 + 100 + 100 * 100 + 100 + 808)
        self.assertEqual(metrics["model_B_on_A_params"],
                         784 * 100 + 100 + 100 * 100 + 100 + 101)
        self.assertBetween(metrics["model_A_test_acc"], 0.0, 1.0)
        history = pd.read_csv(run_dir / "history_B_on_A_s42.csv")
        self.assertLen(history, 2)  # 1 frozen + 1 fine-tuning epoch
        self.assertIn("test_error", history.columns)
        self.assertAllClose(history["test_error"].iloc[-1], metrics["per_seed"][0]["fine_tuned"])
        report = (run_dir / "report.md").read_text()
        self.assertIn("| variant | epochs | seeds | mean_error |", report)
        self.assertIn("## Test error per seed", report)


class TransferCliTest(tf.test.TestCase):
    def test_help_lists_every_option(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            transfer.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(transfer.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())

    def test_bad_values_fail_with_a_message(self):
        with self.assertRaisesRegex(ValueError, r"classes_b must be two different digits 0-9, "
                                                r"got \(4, 4\)"):
            transfer.Config(classes_b=(4, 4))
        with self.assertRaisesRegex(ValueError, r"seeds must list at least one seed, got \(\)"):
            transfer.Config(seeds=())
        with self.assertRaisesRegex(ValueError, r"seeds must not repeat a seed, got \(1, 1\)"):
            transfer.Config(seeds=(1, 1))
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            transfer.main(["--classes-b", "4", "12"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("classes_b must be two different digits 0-9, got (4, 12)", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            transfer.main(["--optimizer", "adamz"])
        self.assertIn("invalid choice: 'adamz'", err.getvalue())
