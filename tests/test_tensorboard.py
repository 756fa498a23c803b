"""TensorBoard logs of every run: the experiments' variants and the tuner's trials.

The event files are read back with TensorBoard's own reader (`event_accumulator`), the
one ``tensorboard --logdir runs/`` uses, and their values are compared with the run's
own history CSVs and trials table.
"""

import contextlib
import io
import os
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from ch11 import _experiment as ex
from ch11 import losses
from recipes.callbacks import GradientMonitor
from recipes.runs import write_history
from tuning import search
from tuning.base import with_gradient_monitor


def read_run(run_dir):
    """TensorBoard's view of one run folder: tag -> [(step, value)], and the accumulator."""
    acc = event_accumulator.EventAccumulator(str(run_dir),
                                             size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    values = {tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]
              for tag in acc.Tags()["tensors"] if not tag.startswith("_hparams_")}
    return values, acc


def _tiny_data(n=96):
    rng = np.random.default_rng(0)
    x = rng.random((n, 28, 28)).astype("float32")
    y = (np.arange(n) % 10).astype("int64")
    return {"x_train": x, "y_train": y, "x_valid": x[:32], "y_valid": y[:32],
            "x_test": x[:32], "y_test": y[:32]}


def _build():
    return keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                             keras.layers.Dense(8, name="hidden_0"),
                             keras.layers.Activation("relu", name="act_0"),
                             keras.layers.Dropout(0.2),
                             keras.layers.Dense(10, activation="softmax", name="output")])


class PlumbingTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session(free_memory=False)
        self._saved = os.environ.pop("RECIPES_TENSORBOARD", None)

    def tearDown(self):
        if self._saved is not None:
            os.environ["RECIPES_TENSORBOARD"] = self._saved
        super().tearDown()

    def test_tensorboard_dir_is_named_like_the_history_csv(self):
        run_dir = Path(self.get_temp_dir())
        for variant in ("relu_he_normal", "B on A, seed 3", "mlp_lr0.05_bn_before"):
            csv = write_history(run_dir, variant, {"loss": [1.0]})
            board = ex.tensorboard_dir(run_dir, variant)
            self.assertEqual(board.parent, run_dir / "tb")
            self.assertEqual(f"history_{board.name}.csv", csv.name)

    def test_train_variant_logs_and_trains_the_same(self):
        data = _tiny_data()
        compile_kwargs = lambda: ex.classifier_compile("sgd", 0.05)  # noqa: E731
        _, plain = ex.train_variant(_build, compile_kwargs(), data, seed=1, epochs=2,
                                    verbose=0)
        log_dir = ex.tensorboard_dir(self.get_temp_dir(), "tiny")
        model, logged = ex.train_variant(_build, compile_kwargs(), data, seed=1, epochs=2,
                                         verbose=0, log_dir=log_dir)
        self.assertAllEqual(logged.history["loss"], plain.history["loss"])
        self.assertAllEqual(logged.history["val_accuracy"], plain.history["val_accuracy"])
        self.assertEqual(sorted(logged.history), sorted(plain.history))  # no extra columns
        train, _ = read_run(log_dir / "train")
        self.assertAllClose([v for _, v in train["epoch_loss"]], logged.history["loss"])
        self.assertEqual([s for s, _ in train["epoch_learning_rate"]], [0, 1])
        validation, _ = read_run(log_dir / "validation")
        self.assertAllClose([v for _, v in validation["epoch_accuracy"]],
                            logged.history["val_accuracy"])
        gradients, _ = read_run(log_dir / "gradients")
        self.assertEqual([s for s, _ in gradients["gradient_norm/hidden_0"]], [0])
        self.assertBetween(gradients["dead_fraction/act_0"][0][1], 0.0, 1.0)

    def test_off_writes_nothing(self):
        os.environ["RECIPES_TENSORBOARD"] = "off"
        log_dir = Path(self.get_temp_dir()) / "off"
        ex.train_variant(_build, ex.classifier_compile("sgd"), _tiny_data(), seed=1, epochs=1,
                         verbose=0, log_dir=log_dir)
        self.assertFalse(log_dir.exists())

    def test_trial_callbacks_get_a_monitor_beside_their_tensorboard(self):
        x, y = _tiny_data()["x_train"], np.sort(_tiny_data()["y_train"])  # sorted by class
        stop = keras.callbacks.EarlyStopping()
        board = keras.callbacks.TensorBoard("tb/3/execution0")
        self.assertEqual(with_gradient_monitor([stop], x, y), [stop])
        callbacks = with_gradient_monitor([stop, board], x, y, size=16)
        self.assertEqual([type(c).__name__ for c in callbacks],
                         ["EarlyStopping", "GradientMonitor", "TensorBoard"])
        monitor = callbacks[1]
        self.assertIsInstance(monitor, GradientMonitor)
        self.assertEqual(monitor.log_dir, os.path.join("tb/3/execution0", "gradients"))
        self.assertEqual((len(monitor.x), monitor.to_logs, monitor.max_overhead),
                         (16, False, 0.05))
        self.assertGreater(len(set(monitor.y.tolist())), 5)  # drawn from all of x, not its head


@pytest.mark.slow
class RunLogsTest(tf.test.TestCase):
    """What ``tensorboard --logdir runs/`` shows for a quick experiment and a quick search."""

    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)
        saved = os.environ.pop("RECIPES_TENSORBOARD", None)  # the default level: on
        if saved is not None:
            self.addCleanup(os.environ.__setitem__, "RECIPES_TENSORBOARD", saved)

    def test_experiment_variants(self):
        with contextlib.redirect_stdout(io.StringIO()):
            results = losses.run(losses.Config(quick=True, out_dir=self.get_temp_dir()))
        board = results.run_dir / "tb"
        self.assertEqual(sorted(p.name for p in board.iterdir()),
                         ["binary_crossentropy", "crossentropy", "mse"])
        for variant in ("crossentropy", "mse", "binary_crossentropy"):
            history = pd.read_csv(results.run_dir / f"history_{variant}.csv")
            train, _ = read_run(board / variant / "train")
            self.assertAllClose([v for _, v in train["epoch_loss"]], history["loss"])
            self.assertAllClose([v for _, v in train["epoch_learning_rate"]],
                                [losses.Config().learning_rate] * len(history))
            self.assertIn("epoch_epoch_time", train)
            validation, _ = read_run(board / variant / "validation")
            self.assertAllClose([v for _, v in validation["epoch_accuracy"]],
                                history["val_accuracy"])
            gradients, _ = read_run(board / variant / "gradients")
            for layer in ("hidden_0", "hidden_1", "output"):
                (step, norm), = gradients[f"gradient_norm/{layer}"]
                self.assertEqual(step, 0)
                self.assertGreater(norm, 0.0)
            for layer in ("act_0", "act_1"):
                self.assertBetween(gradients[f"dead_fraction/{layer}"][0][1], 0.0, 1.0)

    def test_search_trials_with_their_hyperparameters(self):
        directory = self.get_temp_dir()
        with contextlib.redirect_stdout(io.StringIO()):
            code = search.main(["--quick", "--max-trials", "2", "--directory", directory,
                                "--project-name", "tb"])
        self.assertEqual(code, 0)
        project = Path(directory) / "tb"
        trials = pd.read_csv(project / "trials.csv", dtype={"trial_id": str})
        self.assertLen(trials, 2)
        for row in trials.itertuples():
            run = project / "tb" / row.trial_id / "execution0"
            _, acc = read_run(run)
            content = acc.PluginTagToContent("hparams")
            start = plugin_data_pb2.HParamsPluginData.FromString(
                content["_hparams_/session_start_info"]).session_start_info
            self.assertEqual(start.hparams["optimizer"].string_value, row.optimizer)
            self.assertAllClose(start.hparams["learning_rate"].number_value, row.learning_rate)
            self.assertEqual(int(start.hparams["batch_size"].number_value), row.batch_size)
            self.assertIn("_hparams_/session_end_info", content)
            train, _ = read_run(run / "train")
            self.assertEqual([s for s, _ in train["epoch_loss"]], [0])
            self.assertIn("epoch_learning_rate", train)
            validation, _ = read_run(run / "validation")
            self.assertAllClose(validation["epoch_accuracy"][0][1], row.best_objective,
                                atol=1e-6)  # one epoch: its score is the trial's
            gradients, _ = read_run(run / "gradients")
            self.assertIn("gradient_norm/output", gradients)
