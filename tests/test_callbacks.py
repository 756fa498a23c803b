"""Tests for recipes.callbacks: make_schedule / make_callbacks by name."""

import math

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from recipes.callbacks import SCHEDULE_NAMES, make_callbacks, make_schedule
from recipes.schedules import CyclicalLR, OneCycle, PowerSchedule

VALID = "constant, power, exponential, piecewise, performance, 1cycle, onecycle, cyclical, cosine"


def values(schedule, steps):
    return np.array([float(schedule(t)) for t in steps])


class CallbacksTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session()

    def test_names(self):
        self.assertEqual(", ".join(SCHEDULE_NAMES), VALID)

    @parameterized.parameters(("constant",), ("performance",), ("Constant",))
    def test_constant_and_performance_are_floats(self, name):
        lr = make_schedule(name, learning_rate=3e-3, steps_per_epoch=10, epochs=2)
        self.assertIsInstance(lr, float)
        self.assertEqual(lr, 3e-3)

    def test_power_book_defaults(self):
        sched = make_schedule("power", learning_rate=0.01)
        self.assertIsInstance(sched, PowerSchedule)
        steps = [0, 1000, 10_000, 30_000]
        self.assertAllClose(values(sched, steps), [0.01 / (1 + t / 10_000) for t in steps])
        sched = make_schedule("power", learning_rate=0.01, s=50, c=2.0)
        self.assertAllClose(float(sched(100)), 0.01 / 9)

    def test_exponential_is_lr0_times_point1_to_t_over_s(self):
        spe = 30
        sched = make_schedule("exponential", learning_rate=0.01, steps_per_epoch=spe)
        self.assertIsInstance(sched, keras.optimizers.schedules.ExponentialDecay)
        s = 20 * spe
        steps = [0, 7, s, 2 * s + 3, 5 * s]
        self.assertAllClose(values(sched, steps), [0.01 * 0.1 ** (t / s) for t in steps],
                            rtol=1e-6)
        sched = make_schedule("exponential", learning_rate=0.01, s=100)
        self.assertAllClose(float(sched(50)), 0.01 * 0.1**0.5, rtol=1e-6)

    def test_piecewise_matches_the_books_epoch_function(self):
        def book(epoch):
            return 0.01 if epoch < 5 else 0.005 if epoch < 15 else 0.001

        spe = 10
        sched = make_schedule("piecewise", learning_rate=0.01, steps_per_epoch=spe)
        steps = [0, 49, 50, 149, 150, 151, 1000]
        self.assertAllClose(values(sched, steps), [book(t // spe) for t in steps])
        sched = make_schedule("piecewise", learning_rate=1.0, boundaries=[3], values=[1.0, 0.2])
        self.assertAllClose(values(sched, [3, 4]), [1.0, 0.2])

    @parameterized.parameters(("1cycle",), ("onecycle",))
    def test_one_cycle(self, name):
        sched = make_schedule(name, learning_rate=0.1, steps_per_epoch=10, epochs=5)
        self.assertIsInstance(sched, OneCycle)
        self.assertEqual((sched.total_steps, sched.max_lr, sched.start_lr), (50, 0.1, 0.01))
        self.assertAllClose(float(sched(sched.half_steps)), 0.1)
        sched = make_schedule(name, learning_rate=0.1, total_steps=20, shape="cosine",
                              start_lr=0.05)
        self.assertEqual((sched.total_steps, sched.shape, sched.start_lr), (20, "cosine", 0.05))

    def test_cyclical_defaults(self):
        sched = make_schedule("cyclical", learning_rate=0.008, steps_per_epoch=25)
        self.assertIsInstance(sched, CyclicalLR)
        self.assertEqual(sched.get_config(), {"base_lr": 0.002, "max_lr": 0.008,
                                              "step_size": 50.0, "mode": "triangular",
                                              "gamma": 1.0})
        self.assertAllClose(values(sched, [0, 25, 50, 100]), [0.002, 0.005, 0.008, 0.002])

    def test_cosine_with_warmup(self):
        spe, epochs, lr = 10, 5, 0.02
        sched = make_schedule("cosine", learning_rate=lr, steps_per_epoch=spe, epochs=epochs)
        self.assertIsInstance(sched, keras.optimizers.schedules.CosineDecay)
        total, warmup = spe * epochs, 5
        decay = total - warmup

        def ref(t):
            if t < warmup:
                return lr * t / warmup
            return lr * 0.5 * (1 + math.cos(math.pi * min(t - warmup, decay) / decay))

        steps = [0, 2, 5, 10, 27, 49, 50, 60]
        self.assertAllClose(values(sched, steps), [ref(t) for t in steps], atol=1e-7)
        self.assertAllClose(float(sched(warmup)), lr)
        sched = make_schedule("cosine", learning_rate=lr, total_steps=10, warmup_steps=0)
        self.assertAllClose(float(sched(0)), lr)

    def test_schedule_object_passes_through(self):
        sched = PowerSchedule(0.1, 10)
        self.assertIs(make_schedule(sched), sched)
        with self.assertRaisesRegex(ValueError, "schedule object and also arguments"):
            make_schedule(sched, learning_rate=0.1)

    def test_unknown_schedule_lists_valid_names(self):
        with self.assertRaisesRegex(ValueError, f"^Unknown schedule 'step'\\. Valid: {VALID}\\.$"):
            make_schedule("step", learning_rate=0.1)
        with self.assertRaisesRegex(ValueError, f"^Unknown schedule 'step'\\. Valid: {VALID}\\.$"):
            make_callbacks("step")

    @parameterized.parameters(
        ("power", {}, r"Schedule 'power' needs learning_rate\."),
        ("exponential", {"learning_rate": 0.1},
         r"Schedule 'exponential' needs steps_per_epoch \(or s=<steps>\)\."),
        ("piecewise", {"learning_rate": 0.1},
         r"Schedule 'piecewise' needs steps_per_epoch \(or boundaries=<steps>\)\."),
        ("1cycle", {"learning_rate": 0.1, "steps_per_epoch": 10},
         r"Schedule '1cycle' needs steps_per_epoch and epochs \(or total_steps\)\."),
        ("cosine", {"learning_rate": 0.1, "epochs": 3},
         r"Schedule 'cosine' needs steps_per_epoch and epochs \(or total_steps\)\."),
        ("1cycle", {"learning_rate": 0.1, "steps_per_epoch": 0, "epochs": 3},
         r"steps_per_epoch must be an integer > 0, got 0\."),
        ("constant", {"learning_rate": -0.1}, r"learning_rate must be a number > 0, got -0\.1\."),
        ("power", {"learning_rate": 0.1, "decay": 1e-4},
         r"Unknown argument\(s\) \['decay'\] for schedule 'power'\. Valid: c, s\."),
        ("performance", {"learning_rate": 0.1, "patience": 3},
         r"Valid: none\. Its callback takes them: make_callbacks\('performance', \.\.\.\)\."),
        ("piecewise", {"learning_rate": 0.1, "boundaries": [5, 10], "values": [1.0, 0.5]},
         r"len\(values\) == len\(boundaries\) \+ 1, got 2 values for 2 boundaries\."),
        ("cosine", {"learning_rate": 0.1, "total_steps": 10, "warmup_steps": 10},
         r"warmup_steps must be in \[0, total_steps=10\), got 10\."),
        ("1cycle", {"learning_rate": 0.1, "total_steps": 100, "start_lr": 0.5},
         r"max_lr must be > start_lr"),
    )
    def test_bad_arguments(self, name, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            make_schedule(name, **kwargs)

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
