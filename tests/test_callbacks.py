"""recipes.callbacks: EpochTimer, GradientMonitor, ValidationMetrics, make_callbacks, boards."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from absl.testing import parameterized
from tensorflow.core.util import event_pb2

from recipes.callbacks import (
    EpochTimer,
    GradientMonitor,
    ValidationMetrics,
    class_key,
    make_callbacks,
    steps_per_execution,
    tensorboard_callbacks,
    tensorboard_level,
)
from recipes.checks import InputError
from recipes.diagnosis.measures import gradient_norms
from recipes.names import SCHEDULE_NAMES
from recipes.runs import write_history
from recipes.schedules import PowerSchedule, make_schedule

VALID = "constant, power, exponential, piecewise, performance, 1cycle, onecycle, cyclical, cosine"


def event_tags(log_dir):
    """Tag -> steps of every scalar in the event files under `log_dir`."""
    tags = {}
    for path in sorted(Path(log_dir).rglob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


def dead_relu_model(dead=6, units=10):
    """A ReLU layer whose first `dead` units have a bias of -100 (inputs in [0, 1))."""
    model = keras.Sequential([keras.Input((5,)),
                              keras.layers.Dense(units, activation="relu", name="hidden_0"),
                              keras.layers.Dense(3, activation="softmax", name="output")])
    kernel, bias = model.get_layer("hidden_0").get_weights()
    bias[:dead] = -100.0
    model.get_layer("hidden_0").set_weights([kernel, bias])
    return model


def linear_model(learning_rate=0.1):
    """y = w x, w = 0, full-batch SGD on x = [-1, 1] (mean x^2 = 1): w_k = 1 - 0.8^k."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
        1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")
    return model


class ImportOrderTest(tf.test.TestCase):
    def test_a_diagnosis_module_may_be_the_first_to_import_keras(self):
        # Importing keras imports recipes.callbacks (to register GradientMonitor); that
        # must work while the module that imported keras is still half-initialised.
        root = Path(__file__).resolve().parents[1]
        for module in ("recipes.diagnosis.probing", "recipes.diagnosis.measures"):
            proc = subprocess.run(
                [sys.executable, "-c", f"import {module}, keras; "
                 "print(keras.saving.get_registered_object('recipes>GradientMonitor'))"],
                capture_output=True, text=True, timeout=120, cwd=root,
                env={**os.environ, "PYTHONPATH": str(root)})
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn("recipes.callbacks.GradientMonitor", proc.stdout)


class EpochTimerTest(tf.test.TestCase):
    def test_epoch_time_in_the_history(self):
        keras.utils.set_random_seed(0)
        model = linear_model()
        x = np.array([[-1.0], [1.0]], "float32")
        history = model.fit(x, x, epochs=2, batch_size=2, verbose=0, callbacks=[EpochTimer()])
        self.assertLen(history.history["epoch_time"], 2)
        self.assertTrue(all(t > 0 for t in history.history["epoch_time"]))
        self.assertEqual(EpochTimer().get_config(), {})


class _StepTrace(keras.callbacks.Callback):
    """Counts its calls: one per step only with steps_per_execution=1."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def on_train_batch_end(self, batch, logs=None):
        self.calls += 1


class StepsPerExecutionTest(tf.test.TestCase):
    def test_many_steps_unless_a_callback_acts_on_every_step(self):
        self.assertEqual(steps_per_execution(), 64)
        self.assertEqual(steps_per_execution([EpochTimer(), keras.callbacks.TerminateOnNaN(),
                                              keras.callbacks.EarlyStopping()]), 64)
        self.assertEqual(steps_per_execution([EpochTimer()], fast=8), 8)
        self.assertEqual(steps_per_execution([EpochTimer(), _StepTrace()]), 1)
        lam = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: None)
        self.assertEqual(steps_per_execution([lam]), 1)
        self.assertEqual(steps_per_execution(
            [keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: None)]), 64)
        with self.assertRaisesRegex(ValueError, "fast must be >= 1, got 0"):
            steps_per_execution(fast=0)

    def test_the_same_weights_as_one_step_per_call(self):
        # 70 samples at batch 4 = 18 steps an epoch: 64 per call ends mid-call, 5 per
        # call has a short last call; every count must give step 1's weights bit for bit.
        rng = np.random.default_rng(0)
        x = rng.normal(size=(70, 6)).astype("float32")
        y = rng.integers(0, 3, 70)
        results = {}
        for count in (1, 5, 64):
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                                      keras.layers.Dense(3, activation="softmax")])
            model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                          steps_per_execution=count)
            trace = _StepTrace()
            history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0,
                                callbacks=[trace], validation_data=(x[:10], y[:10]))
            results[count] = (model.get_weights(), history.history, trace.calls)
        weights, history, calls = results[1]
        self.assertEqual(calls, 36)
        for count in (5, 64):
            for a, b in zip(weights, results[count][0]):
                self.assertAllEqual(a, b)
            self.assertEqual(history, results[count][1])
        self.assertEqual(results[5][2], 8)  # 4 calls an epoch: the trace sees 8 of 36 steps
        self.assertEqual(results[64][2], 2)


def fixed_output_model(k):
    """softmax(log p) = p: the model outputs its input rows (given as log-probabilities)."""
    return keras.Sequential([keras.Input((k,)), keras.layers.Softmax()])


class ValidationMetricsTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def _measure(self, proba, y, names=None, **kwargs):
        proba = np.asarray(proba, dtype="float32")
        callback = ValidationMetrics(np.log(proba), y, names, **kwargs)
        callback.set_model(fixed_output_model(proba.shape[1]))
        return callback.measure()

    def test_per_class_auc_macro_auc_and_rare_recall(self):
        # Class "b": positives score 0.35 and 0.8, negatives 0.1 and 0.4: 3 of 4 pairs.
        p1 = np.array([0.1, 0.4, 0.35, 0.8])
        values = self._measure(np.stack([1 - p1, p1], axis=1), [0, 0, 1, 1],
                               ["Fish a", "fish-B"], rare_class=1)
        self.assertEqual(sorted(values), ["val_auc_fish_a", "val_auc_fish_b", "val_macro_auc",
                                          "val_rare_recall"])
        self.assertAllClose([values["val_auc_fish_a"], values["val_auc_fish_b"],
                             values["val_macro_auc"]], [0.75, 0.75, 0.75])
        self.assertAllClose(values["val_rare_recall"], 0.5)  # 0.35 -> "a", 0.8 -> "b"

    def test_absent_class_duplicate_keys_and_a_diverged_model(self):
        y = np.array([0, 0, 1, 1])
        proba = np.eye(3)[y] * 0.8 + 0.1  # perfect on a and b; class 2 never appears
        values = self._measure(proba, y, ["x y", "x-y", "z"], rare_class=2, prefix="v_")
        self.assertEqual(list(values), ["v_auc_x_y", "v_auc_x_y_2", "v_auc_z", "v_macro_auc",
                                        "v_rare_recall"])
        self.assertAllClose([values["v_auc_x_y"], values["v_auc_x_y_2"]], [1.0, 1.0])
        self.assertTrue(np.isnan(values["v_auc_z"]))
        self.assertAllClose(values["v_macro_auc"], 1.0)  # the mean over classes present
        self.assertTrue(np.isnan(values["v_rare_recall"]))  # no example of class 2
        diverged = ValidationMetrics(np.zeros((4, 2), "float32"), [0, 1, 0, 1])
        diverged.set_model(keras.Sequential([keras.Input((2,)),
                                             keras.layers.Lambda(lambda t: t / 0.0)]))
        self.assertAllClose(diverged.measure(), {"val_auc_0": 0.5, "val_auc_1": 0.5,
                                                 "val_macro_auc": 0.5})

    def test_values_reach_early_stopping_and_history(self):
        x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
        y = (x[:, 0] > 0).astype("int64")
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
        stop = keras.callbacks.EarlyStopping(monitor="val_macro_auc", mode="max", patience=1)
        history = model.fit(x, y, epochs=5, verbose=0, callbacks=[
            ValidationMetrics(x, y, ["neg", "pos"], rare_class=1), stop])
        # A learning rate of 0 changes nothing: no improvement, so patience 1 stops at 2.
        self.assertLen(history.history["val_macro_auc"], 2)
        self.assertEqual(history.history["val_macro_auc"][0], history.history["val_macro_auc"][1])
        proba = model.predict(x, verbose=0)
        self.assertAllClose(history.history["val_rare_recall"][0],
                            np.mean(proba[y == 1].argmax(1) == 1))

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, r"x has 3 examples but y has 2\."):
            ValidationMetrics(np.zeros((3, 2)), [0, 1])
        with self.assertRaisesRegex(ValueError, r"rare_class must be a class index in \[0, 1\], "
                                                r"got 5\."):
            ValidationMetrics(np.zeros((2, 2)), [0, 1], ["a", "b"], rare_class=5)
        self.assertEqual(class_key("  Fish sea_food: Red-Mullet "), "fish_sea_food_red_mullet")
        self.assertEqual(class_key("!!"), "class")


class GradientMonitorTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_records_reach_history_csv_and_tensorboard(self):
        model = dead_relu_model(dead=3)
        model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        x = np.random.default_rng(0).random((64, 5)).astype("float32")
        y = np.arange(64) % 3
        log_dir = Path(self.get_temp_dir()) / "tb"
        monitor = GradientMonitor(x[:32], y[:32], log_dir=str(log_dir))
        history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[monitor])
        h = history.history
        for key in ("grad_norm/hidden_0", "grad_norm/output", "dead/hidden_0", "dead/output"):
            self.assertLen(h[key], 2)
        self.assertAllClose(h["dead/hidden_0"], [0.3, 0.3])  # biases of -100 stay dead
        # The last epoch's values are the measurements on the final weights.
        now = gradient_norms(model, x[:32], y[:32]).set_index("layer")["grad_norm"]
        self.assertAllClose(h["grad_norm/hidden_0"][-1], now["hidden_0"], rtol=1e-5)
        self.assertAllClose(h["grad_norm/output"][-1], now["output"], rtol=1e-5)
        csv = pd.read_csv(write_history(self.get_temp_dir(), "monitored", history))
        self.assertIn("grad_norm/hidden_0", csv.columns)
        self.assertAllClose(csv["dead/hidden_0"], [0.3, 0.3])
        tags = event_tags(log_dir)
        self.assertEqual(tags["gradient_norm/hidden_0"], [0, 1])
        self.assertEqual(tags["dead_fraction/hidden_0"], [0, 1])

    def test_config_round_trip(self):
        x, y = np.ones((2, 5), "float32"), np.array([0, 1])
        monitor = GradientMonitor(x, y, loss="mse", log_dir="tb", dead_units=False)
        config = monitor.get_config()
        self.assertEqual(set(config), {"x", "y", "loss", "log_dir", "dead_units", "to_logs",
                                       "max_overhead"})
        again = GradientMonitor.from_config(config)
        self.assertAllClose(again.x, x)
        self.assertEqual((again.loss, again.log_dir, again.dead_units), ("mse", "tb", False))
        self.assertEqual((again.to_logs, again.max_overhead), (True, None))
        config = GradientMonitor(x, y, to_logs=False, max_overhead=0.05).get_config()
        again = GradientMonitor.from_config(config)
        self.assertEqual((again.to_logs, again.max_overhead), (False, 0.05))
        restored = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(monitor))
        self.assertIsInstance(restored, GradientMonitor)
        self.assertAllClose(restored.x, x)
        self.assertAllEqual(restored.y, y)

    def test_to_logs_false_writes_tensorboard_only(self):
        model = dead_relu_model(dead=3)
        model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        x = np.random.default_rng(0).random((64, 5)).astype("float32")
        y = np.arange(64) % 3
        log_dir = Path(self.get_temp_dir()) / "quiet"
        monitor = GradientMonitor(x[:32], y[:32], log_dir=str(log_dir), to_logs=False)
        history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[monitor])
        self.assertEqual(sorted(history.history), ["loss"])
        self.assertEqual(event_tags(log_dir)["dead_fraction/hidden_0"], [0, 1])

    def test_max_overhead_skips_epochs_once_the_budget_is_spent(self):
        # A budget of a billionth of the training time: only the first epoch is measured;
        # later epochs get NaN in the logs (one value per epoch) and nothing in TensorBoard.
        model = dead_relu_model(dead=3)
        model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        x = np.random.default_rng(0).random((64, 5)).astype("float32")
        y = np.arange(64) % 3
        log_dir = Path(self.get_temp_dir()) / "budget"
        monitor = GradientMonitor(x[:32], y[:32], log_dir=str(log_dir), max_overhead=1e-9)
        history = model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[monitor])
        dead = history.history["dead/hidden_0"]
        self.assertAllClose(dead[0], 0.3)
        self.assertTrue(np.isnan(dead[1]) and np.isnan(dead[2]))
        self.assertEqual(event_tags(log_dir)["gradient_norm/hidden_0"], [0])
        # An ample budget measures every epoch.
        monitor = GradientMonitor(x[:32], y[:32], max_overhead=1e9)
        history = model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[monitor])
        self.assertFalse(np.any(np.isnan(history.history["grad_norm/output"])))

    def test_bad_max_overhead(self):
        x, y = np.ones((2, 5), "float32"), np.array([0, 1])
        with self.assertRaisesRegex(ValueError, r"max_overhead must be > 0, got 0\."):
            GradientMonitor(x, y, max_overhead=0)

    def test_without_dead_units(self):
        model = dead_relu_model()
        model.compile("sgd", "sparse_categorical_crossentropy")
        x, y = np.random.rand(8, 5).astype("float32"), np.arange(8) % 3
        monitor = GradientMonitor(x, y, dead_units=False)
        monitor.set_model(model)
        self.assertEqual(sorted(monitor.measure()), ["grad_norm/hidden_0", "grad_norm/output"])


class MakeCallbacksTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_unknown_schedule_lists_valid_names(self):
        with self.assertRaisesRegex(ValueError, f"^Unknown schedule 'step'\\. Valid: {VALID}\\.$"):
            make_callbacks("step")

    def test_make_callbacks(self):
        (callback,) = make_callbacks("performance")
        self.assertIsInstance(callback, keras.callbacks.ReduceLROnPlateau)
        self.assertEqual((callback.factor, callback.patience, callback.monitor),
                         (0.5, 5, "val_loss"))
        (callback,) = make_callbacks("performance", patience=2, monitor="loss")
        self.assertEqual((callback.factor, callback.patience, callback.monitor), (0.5, 2, "loss"))
        for name in SCHEDULE_NAMES:
            if name != "performance":
                self.assertEqual(make_callbacks(name), [])
        self.assertEqual(make_callbacks(PowerSchedule(0.1, 10)), [])
        with self.assertRaisesRegex(ValueError, r"Schedule '1cycle' needs no callback, so it "
                                                r"takes no arguments; got patience\."):
            make_callbacks("1cycle", patience=3)

    def test_options_in_order(self):
        x, y = np.ones((2, 5), "float32"), np.array([0, 1])
        callbacks = make_callbacks("performance", early_stopping=3, monitor="val_accuracy",
                                   tensorboard=Path(self.get_temp_dir()) / "tb",
                                   epoch_timer=True, gradient_batch=(x, y))
        self.assertEqual([type(c).__name__ for c in callbacks],
                         ["EpochTimer", "GradientMonitor", "ReduceLROnPlateau", "EarlyStopping",
                          "TensorBoard"])
        monitor, plateau, stopper, board = callbacks[1:]
        self.assertIsNone(monitor.log_dir)  # Keras's TensorBoard logs its values
        self.assertEqual(plateau.monitor, "val_accuracy")
        self.assertEqual((stopper.monitor, stopper.patience, stopper.restore_best_weights),
                         ("val_accuracy", 3, True))
        self.assertEqual(board.log_dir, str(Path(self.get_temp_dir()) / "tb"))
        self.assertEqual(make_callbacks(), [])
        (stopper,) = make_callbacks("1cycle", early_stopping=0)
        self.assertEqual((stopper.monitor, stopper.patience), ("val_loss", 0))

    @parameterized.parameters(
        (-1, r"early_stopping must be >= 0, got -1\."),
        (2.5, r"early_stopping must be an integer >= 0, got 2\.5\."),
        (float("nan"), r"early_stopping must be an integer >= 0, got nan\."),
        (True, r"early_stopping must be an integer >= 0, got True\."),
    )
    def test_bad_patience(self, patience, message):
        with self.assertRaisesRegex(ValueError, message):
            make_callbacks(early_stopping=patience)

    @parameterized.parameters((0.5, 3, 5), (-1.0, 1, 3), (1.0, 10, 10))
    def test_early_stopping_stops_at_the_right_epoch(self, target, best_epoch, stopped_after):
        # Full-batch SGD from w = 0 on y = x gives w_k = 1 - 0.8^k after epoch k; the
        # validation targets y = target * x give val_loss_k = (w_k - target)^2, smallest at
        # w_3 = 0.488 for target 0.5 (then patience 2 stops after epoch 5), at w_1 for
        # target -1 (stops after epoch 3), never rising for target 1 (all 10 epochs run).
        model = linear_model()
        x = np.array([[-1.0], [1.0]], "float32")
        history = model.fit(x, x, validation_data=(x, target * x), epochs=10, batch_size=2,
                            shuffle=False, verbose=0,
                            callbacks=make_callbacks(early_stopping=2))
        w = 1 - 0.8 ** np.arange(1, len(history.epoch) + 1)
        self.assertEqual(history.epoch, list(range(stopped_after)))
        self.assertAllClose(history.history["val_loss"], (w - target) ** 2, rtol=1e-5)
        self.assertEqual(int(np.argmin(history.history["val_loss"])) + 1, best_epoch)
        self.assertAllClose(model.get_weights()[0].ravel(), [1 - 0.8**best_epoch], rtol=1e-5)

    def test_tensorboard_writes_event_files(self):
        log_dir = Path(self.get_temp_dir()) / "tensorboard"
        model = linear_model()
        x = np.array([[-1.0], [1.0]], "float32")
        callbacks = make_callbacks(tensorboard=log_dir, epoch_timer=True)
        model.fit(x, x, validation_data=(x, x), epochs=3, batch_size=2, verbose=0,
                  callbacks=callbacks)
        self.assertNotEmpty(list((log_dir / "train").glob("events.out.tfevents.*")))
        self.assertNotEmpty(list((log_dir / "validation").glob("events.out.tfevents.*")))
        tags = event_tags(log_dir)
        self.assertEqual(tags["epoch_loss"], [0, 1, 2, 0, 1, 2])  # train, then validation
        self.assertEqual(tags["epoch_epoch_time"], [0, 1, 2])

    def _model(self, learning_rate):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss="mse")
        return model

    def test_performance_scheduling_halves_the_rate(self):
        # min_delta so large that no epoch after the first counts as an improvement:
        # with patience 1 the rate halves after epochs 2 and 3.
        lr = make_schedule("performance", learning_rate=0.01)
        model = self._model(lr)
        x = np.random.default_rng(0).normal(size=(16, 2))
        callbacks = make_callbacks("performance", patience=1, monitor="loss", min_delta=1e9)
        history = model.fit(x, x[:, :1], epochs=3, batch_size=16, verbose=0, callbacks=callbacks)
        self.assertAllClose(history.history["learning_rate"], [0.01, 0.01, 0.005])
        self.assertAllClose(float(model.optimizer.learning_rate), 0.0025)

    def test_keras_refuses_plateau_callback_with_a_schedule(self):
        # Why make_schedule("performance") returns a float: Keras raises TypeError otherwise.
        model = self._model(PowerSchedule(0.01, 10))
        x = np.random.default_rng(0).normal(size=(16, 2))
        callbacks = make_callbacks("performance", patience=1, monitor="loss", min_delta=1e9)
        with self.assertRaisesRegex(TypeError, "learning rate is not settable"):
            model.fit(x, x[:, :1], epochs=3, batch_size=16, verbose=0, callbacks=callbacks)


class TensorBoardCallbacksTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)
        self._saved = os.environ.pop("RECIPES_TENSORBOARD", None)

    def tearDown(self):
        os.environ.pop("RECIPES_TENSORBOARD", None)
        if self._saved is not None:
            os.environ["RECIPES_TENSORBOARD"] = self._saved
        super().tearDown()

    def test_level_from_the_argument_or_the_environment(self):
        self.assertEqual(tensorboard_level(), "on")
        self.assertEqual(tensorboard_level("FULL"), "full")
        os.environ["RECIPES_TENSORBOARD"] = "off"
        self.assertEqual(tensorboard_level(), "off")
        self.assertEqual(tensorboard_level("on"), "on")  # the argument wins
        os.environ["RECIPES_TENSORBOARD"] = "yes"
        with self.assertRaisesRegex(InputError, r"^Unknown RECIPES_TENSORBOARD 'yes'\. "
                                                r"Valid: off, on, full\.$"):
            tensorboard_level()
        with self.assertRaisesRegex(InputError, r"^Unknown level 'all'\. Valid: off, on, "):
            tensorboard_level("all")

    def test_callbacks_per_level(self):
        log_dir = Path(self.get_temp_dir()) / "run"
        batch = (np.ones((2, 5), "float32"), np.array([0, 1]))
        self.assertEqual(tensorboard_callbacks(log_dir, batch, level="off"), [])
        monitor, board = tensorboard_callbacks(log_dir, batch, level="on")
        self.assertEqual(monitor.log_dir, str(log_dir / "gradients"))
        self.assertEqual((monitor.to_logs, monitor.max_overhead), (False, 0.05))
        self.assertIsInstance(board, keras.callbacks.TensorBoard)
        self.assertEqual((board.log_dir, board.histogram_freq, board.write_graph),
                         (str(log_dir), 0, False))
        _, board = tensorboard_callbacks(log_dir, batch, level="full")
        self.assertEqual((board.histogram_freq, board.write_graph), (1, True))
        (board,) = tensorboard_callbacks(log_dir)  # no batch: no gradients
        self.assertIsInstance(board, keras.callbacks.TensorBoard)
        os.environ["RECIPES_TENSORBOARD"] = "off"
        self.assertEqual(tensorboard_callbacks(log_dir, batch), [])

    def _train(self, callbacks):
        keras.backend.clear_session(free_memory=False)
        keras.utils.set_random_seed(3)
        model = keras.Sequential([
            keras.Input((5,)), keras.layers.Dense(16, name="hidden_0"),
            keras.layers.BatchNormalization(), keras.layers.Activation("relu", name="act_0"),
            keras.layers.Dropout(0.5), keras.layers.Dense(3, activation="softmax",
                                                          name="output")])
        model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        x = np.random.default_rng(0).random((96, 5)).astype("float32")
        y = np.arange(96) % 3
        history = model.fit(x, y, validation_data=(x[:32], y[:32]), epochs=3, batch_size=16,
                            verbose=0, callbacks=[EpochTimer(), *callbacks(x, y)])
        return model, history

    def test_logs_everything_and_changes_nothing(self):
        # BN's batch statistics and dropout's random state are used by the measurements in
        # training mode and restored: the training is the same with or without the logs.
        plain, plain_history = self._train(lambda x, y: [])
        log_dir = Path(self.get_temp_dir()) / "variant"
        logged, history = self._train(
            lambda x, y: tensorboard_callbacks(log_dir, (x[:32], y[:32]), max_overhead=1e9))
        for a, b in zip(plain.get_weights(), logged.get_weights()):
            self.assertAllEqual(a, b)
        self.assertEqual(sorted(history.history), sorted(plain_history.history))
        self.assertAllEqual(history.history["val_loss"], plain_history.history["val_loss"])
        tags = event_tags(log_dir / "train")
        for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate", "epoch_epoch_time"):
            self.assertEqual(tags[tag], [0, 1, 2], tag)
        self.assertEqual(event_tags(log_dir / "validation")["epoch_loss"], [0, 1, 2])
        tags = event_tags(log_dir / "gradients")
        for tag in ("gradient_norm/hidden_0", "gradient_norm/output", "dead_fraction/act_0"):
            self.assertEqual(tags[tag], [0, 1, 2], tag)

    def test_full_level_adds_weight_histograms(self):
        log_dir = Path(self.get_temp_dir()) / "full"
        self._train(lambda x, y: tensorboard_callbacks(log_dir, level="full"))
        tags = event_tags(log_dir / "train")  # "<model name>/<layer>/<weight>/histogram"
        (kernel,) = (t for t in tags if t.endswith("/hidden_0/kernel/histogram"))
        self.assertEqual(tags[kernel], [0, 1, 2])
        self.assertIn("keras", tags)  # the graph
