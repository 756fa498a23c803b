"""Tests for recipes.schedules: closed forms, training, saving, errors, make_schedule."""

import math
import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from recipes.names import SCHEDULE_NAMES
from recipes.schedules import CyclicalLR, OneCycle, PowerSchedule, make_schedule


def one_cycle_ref(t, total, max_lr, start, last, half):
    """The notebook's OneCycleScheduler interpolation, written independently."""
    t = min(t, total)

    def interp(i1, i2, lr1, lr2):
        return (lr2 - lr1) * (t - i1) / (i2 - i1) + lr1

    if t < half:
        return interp(0, half, start, max_lr)
    if t < 2 * half:
        return interp(half, 2 * half, max_lr, start)
    return interp(2 * half, total, start, last)


def one_cycle_cos_ref(t, total, max_lr, start, last, half):
    """fastai's cosine annealing: start + (1 + cos(pi * pct)) * (end - start) / 2."""
    t = min(t, total)

    def cos_anneal(a, b, pct):
        return b + (a - b) / 2 * (1 + math.cos(math.pi * pct))

    if t < half:
        return cos_anneal(start, max_lr, t / half)
    return cos_anneal(max_lr, last, (t - half) / (total - half))


def clr_ref(t, base, max_lr, s, mode, gamma=1.0):
    """Leslie Smith's reference CLR code."""
    cycle = np.floor(1 + t / (2 * s))
    x = np.abs(t / s - 2 * cycle + 1)
    scale = {"triangular": 1.0, "triangular2": 1 / 2 ** (cycle - 1), "exp_range": gamma**t}[mode]
    return base + (max_lr - base) * max(0.0, 1 - x) * scale


def values(schedule, steps):
    """The schedule at many steps in one vectorized call (checked against scalars below)."""
    return keras.ops.convert_to_numpy(schedule(np.asarray(list(steps), "float32"))).astype(float)


SCHEDULES = [
    ("power", lambda: PowerSchedule(0.05, s=3.0, c=2.0)),
    ("onecycle", lambda: OneCycle(12, max_lr=0.2, start_lr=0.05, last_lr=1e-4)),
    ("onecycle_cosine", lambda: OneCycle(12, max_lr=0.2, shape="cosine", last_fraction=0.25)),
    ("cyclical", lambda: CyclicalLR(0.01, 0.2, step_size=3, mode="triangular2")),
    ("exp_range", lambda: CyclicalLR(0.01, 0.2, step_size=3, mode="exp_range", gamma=0.9)),
]


class SchedulesTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.parameters((1.0,), (2.0,), (0.5,))
    def test_power_formula(self, c):
        steps = [0, 1, 10, 100, 1000, 12345]
        expected = [0.01 / (1 + t / 100) ** c for t in steps]
        self.assertAllClose(values(PowerSchedule(0.01, 100, c), steps), expected, rtol=1e-6)
        self.assertAllClose(float(PowerSchedule(0.01, 100, c)(100)), 0.01 / 2**c, rtol=1e-6)

    def test_power_c1_is_inverse_time_decay(self):
        keras_schedule = keras.optimizers.schedules.InverseTimeDecay(0.01, 100, 1.0)
        steps = [0, 5, 50, 500]
        self.assertAllClose(values(PowerSchedule(0.01, 100), steps), values(keras_schedule, steps))

    @parameterized.parameters((100,), (101,), (57,), (10,))
    def test_one_cycle_linear_formula(self, total):
        sched = OneCycle(total, max_lr=0.1)
        self.assertAllClose([sched.start_lr, sched.last_lr], [0.01, 1e-5])
        half = sched.half_steps
        self.assertEqual(half, math.floor(round(total * 0.9, 6) / 2))
        steps = np.arange(total + 5)
        expected = [one_cycle_ref(t, total, 0.1, 0.01, 1e-5, half) for t in steps]
        got = values(sched, steps)
        self.assertAllClose(got, expected, rtol=1e-5, atol=1e-8)
        self.assertEqual(int(np.argmax(got)), half)  # peaks at the middle of the cycle
        self.assertAllClose(got.max(), 0.1)
        self.assertLessEqual(got[total], sched.start_lr / 10)  # ends >= 10x below lr0
        self.assertAllClose(got[total:], [1e-5] * 5)  # and stays there
        last_phase = got[2 * half : total + 1]
        self.assertAllClose(np.diff(last_phase), [(1e-5 - 0.01) / (total - 2 * half)] *
                            (len(last_phase) - 1), atol=1e-8)  # linear
        self.assertAllClose(np.diff(got[: half + 1]), [(0.1 - 0.01) / half] * half, atol=1e-8)

    def test_one_cycle_book_values(self):
        # 100 steps: rise over 45 steps, fall over 45, last 10 steps to start/1000
        sched = OneCycle(100, max_lr=0.1)
        self.assertEqual(sched.half_steps, 45)
        self.assertAllClose(values(sched, [0, 45, 90, 95, 100]),
                            [0.01, 0.1, 0.01, 0.01 - 0.5 * (0.01 - 1e-5), 1e-5], rtol=1e-5)

    @parameterized.parameters((100, 0.1), (40, 0.5), (33, 0.2))
    def test_one_cycle_cosine_formula(self, total, last_fraction):
        sched = OneCycle(total, max_lr=0.3, start_lr=0.02, last_lr=2e-5,
                         last_fraction=last_fraction, shape="cosine")
        half = sched.half_steps
        steps = np.arange(total + 3)
        expected = [one_cycle_cos_ref(t, total, 0.3, 0.02, 2e-5, half) for t in steps]
        got = values(sched, steps)
        self.assertAllClose(got, expected, rtol=1e-5, atol=1e-8)
        self.assertEqual(int(np.argmax(got)), half)
        self.assertAllClose(got[0], 0.02)
        self.assertAllClose(got[total], 2e-5, rtol=1e-4)
        self.assertTrue(np.all(np.diff(got[half : total + 1]) < 0))

    @parameterized.parameters(("triangular",), ("triangular2",), ("exp_range",))
    def test_cyclical_formula(self, mode):
        sched = CyclicalLR(0.001, 0.006, step_size=4, mode=mode, gamma=0.97)
        steps = np.arange(0, 40)
        expected = [clr_ref(t, 0.001, 0.006, 4, mode, 0.97) for t in steps]
        self.assertAllClose(values(sched, steps), expected, rtol=1e-5)

    def test_triangular_shape_and_triangular2_halving(self):
        tri = CyclicalLR(0.001, 0.006, step_size=5)
        self.assertAllClose(values(tri, [0, 5, 10, 15, 20, 2.5]),
                            [0.001, 0.006, 0.001, 0.006, 0.001, 0.0035])
        tri2 = CyclicalLR(0.001, 0.006, step_size=5, mode="triangular2")
        peaks = values(tri2, [5, 15, 25, 35]) - 0.001
        self.assertAllClose(peaks, 0.005 * np.array([1, 0.5, 0.25, 0.125]), rtol=1e-5)
        self.assertAllClose(values(tri2, [0, 10, 20, 30]), [0.001] * 4)

    def test_exp_range_decays_with_gamma_to_the_step(self):
        sched = CyclicalLR(0.001, 0.006, step_size=5, mode="exp_range", gamma=0.9)
        self.assertAllClose(values(sched, [5, 15, 25]) - 0.001,
                            0.005 * 0.9 ** np.array([5.0, 15.0, 25.0]), rtol=1e-5)

    @parameterized.named_parameters(*SCHEDULES)
    def test_scalar_steps_match_vectorized(self, make):
        sched = make()
        scalars = [float(sched(tf.constant(t, tf.int64))) for t in (0, 1, 4, 7, 13)]
        self.assertAllClose(scalars, values(sched, (0, 1, 4, 7, 13)))

    @parameterized.named_parameters(*SCHEDULES)
    def test_config_round_trip(self, make):
        sched = make()
        clone = type(sched).from_config(sched.get_config())
        self.assertEqual(clone.get_config(), sched.get_config())
        steps = np.arange(0, 20)
        self.assertAllClose(values(clone, steps), values(sched, steps))
        revived = keras.optimizers.schedules.deserialize(
            keras.optimizers.schedules.serialize(sched)
        )
        self.assertIs(type(revived), type(sched))

    @parameterized.named_parameters(*SCHEDULES)
    def test_fit_uses_the_schedule_each_step(self, make):
        # w' = w - lr_t * 2w for loss (w*1 - 0)^2: w_N = w_0 * prod(1 - 2 lr_t)
        sched = make()
        model = keras.Sequential([keras.Input((1,)),
                                  keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=sched), loss="mse")
        n = 9
        model.fit(np.ones((n, 1)), np.zeros((n, 1)), batch_size=1, epochs=1, shuffle=False,
                  verbose=0)
        lrs = values(sched, range(n))
        self.assertEqual(int(model.optimizer.iterations), n)
        self.assertAllClose(float(model.optimizer.learning_rate), float(sched(n)))
        self.assertAllClose(model.get_weights()[0].ravel(), [np.prod(1 - 2 * lrs)], rtol=1e-5)

    @parameterized.named_parameters(*SCHEDULES)
    def test_save_and_reload(self, make):
        sched = make()
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(4)(inputs)))
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=sched, momentum=0.9),
                      loss="mse")
        x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
        model.fit(x, np.zeros((8, 2)), batch_size=4, epochs=1, verbose=0)
        path = os.path.join(self.get_temp_dir(), "model.keras")
        model.save(path)
        reloaded = keras.models.load_model(path)
        restored = reloaded.optimizer._learning_rate
        self.assertIs(type(restored), type(sched))
        self.assertEqual(restored.get_config(), sched.get_config())
        self.assertAllClose(values(restored, range(15)), values(sched, range(15)))
        self.assertEqual(int(reloaded.optimizer.iterations), 2)
        self.assertAllClose(float(reloaded.optimizer.learning_rate), float(sched(2)))
        self.assertAllClose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))

    def test_sgd_momentum_is_frozen_once_traced(self):
        # Why OneCycle does not cycle momentum: changing SGD.momentum between fits has no
        # effect, because the traced train step captured the float as a constant.
        def train(change_to):
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
                1, use_bias=False, kernel_initializer="ones")])
            opt = keras.optimizers.SGD(0.1, momentum=0.9)
            model.compile(optimizer=opt, loss="mse")
            x, y = np.ones((4, 1)), np.zeros((4, 1))
            model.fit(x, y, batch_size=4, epochs=1, verbose=0)
            if change_to is not None:
                opt.momentum = change_to
            model.fit(x, y, batch_size=4, epochs=1, verbose=0)
            return float(model.get_weights()[0][0, 0])

        # step 1: w = 1 - 0.1*2 = 0.8, v = -0.2; step 2 with momentum 0.9: v = -0.34
        self.assertAllClose(train(None), 0.46)
        self.assertAllClose(train(0.0), 0.46)  # not 0.8 - 0.16 = 0.64

    @parameterized.parameters(
        (lambda: OneCycle(100, max_lr=0.01, start_lr=0.1),
         r"max_lr must be > start_lr, got max_lr=0\.01, start_lr=0\.1\."),
        (lambda: OneCycle(0, max_lr=0.1), r"total_steps must be >= 3, got 0\."),
        (lambda: OneCycle(-5, max_lr=0.1), r"total_steps must be >= 3, got -5\."),
        (lambda: OneCycle(2, max_lr=0.1), r"total_steps must be >= 3, got 2\."),
        (lambda: OneCycle(10.5, max_lr=0.1),
         r"total_steps must be an integer >= 3, got 10\.5\."),
        (lambda: OneCycle(100, max_lr=0.0), r"max_lr must be > 0, got 0\.0\."),
        (lambda: OneCycle(100, max_lr=float("nan")),
         r"max_lr must be a finite number > 0, got nan\."),
        (lambda: OneCycle(100, max_lr=float("inf")),
         r"max_lr must be a finite number > 0, got inf\."),
        (lambda: OneCycle(100, max_lr=0.1, last_lr=0.5),
         r"last_lr must be <= start_lr, got last_lr=0\.5, start_lr=0\.01\."),
        (lambda: OneCycle(100, max_lr=0.1, last_fraction=1.0),
         r"last_fraction must be in \[0, 1\), got 1\.0\."),
        (lambda: OneCycle(100, max_lr=0.1, shape="sine"),
         r"Unknown shape 'sine'\. Valid: linear, cosine\."),
        (lambda: CyclicalLR(0.1, 0.1, 10), r"max_lr must be > base_lr, got max_lr=0\.1"),
        (lambda: CyclicalLR(0.01, 0.1, 0), r"step_size must be > 0, got 0\."),
        (lambda: CyclicalLR(0.01, 0.1, 10, mode="saw"),
         r"Unknown mode 'saw'\. Valid: triangular, triangular2, exp_range\."),
        (lambda: CyclicalLR(0.01, 0.1, 10, mode="exp_range", gamma=1.5),
         r"gamma must be in \(0, 1\], got 1\.5\."),
        (lambda: CyclicalLR(0.01, 0.1, 10, mode="exp_range", gamma=float("nan")),
         r"gamma must be a finite number in \(0, 1\], got nan\."),
        (lambda: PowerSchedule(0.01, s=0), r"s must be > 0, got 0\."),
        (lambda: PowerSchedule(-0.01, s=10), r"lr0 must be > 0, got -0\.01\."),
        (lambda: PowerSchedule(0.01, s=float("inf")), r"s must be a finite number > 0, got inf\."),
        (lambda: OneCycle(100, max_lr=0.1, last_fraction=float("nan")),
         r"last_fraction must be a finite number in \[0, 1\), got nan\."),
    )
    def test_bad_arguments(self, make, message):
        with self.assertRaisesRegex(ValueError, message):
            make()


VALID = "constant, power, exponential, piecewise, performance, 1cycle, onecycle, cyclical, cosine"


def scalar_values(schedule, steps):
    return np.array([float(schedule(t)) for t in steps])


class MakeScheduleTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

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
        self.assertAllClose(scalar_values(sched, steps), [0.01 / (1 + t / 10_000) for t in steps])
        sched = make_schedule("power", learning_rate=0.01, s=50, c=2.0)
        self.assertAllClose(float(sched(100)), 0.01 / 9)

    def test_exponential_is_lr0_times_point1_to_t_over_s(self):
        spe = 30
        sched = make_schedule("exponential", learning_rate=0.01, steps_per_epoch=spe)
        self.assertIsInstance(sched, keras.optimizers.schedules.ExponentialDecay)
        s = 20 * spe
        steps = [0, 7, s, 2 * s + 3, 5 * s]
        self.assertAllClose(scalar_values(sched, steps), [0.01 * 0.1 ** (t / s) for t in steps],
                            rtol=1e-6)
        sched = make_schedule("exponential", learning_rate=0.01, s=100)
        self.assertAllClose(float(sched(50)), 0.01 * 0.1**0.5, rtol=1e-6)

    def test_piecewise_matches_the_books_epoch_function(self):
        def book(epoch):
            return 0.01 if epoch < 5 else 0.005 if epoch < 15 else 0.001

        spe = 10
        sched = make_schedule("piecewise", learning_rate=0.01, steps_per_epoch=spe)
        steps = [0, 49, 50, 149, 150, 151, 1000]
        self.assertAllClose(scalar_values(sched, steps), [book(t // spe) for t in steps])
        sched = make_schedule("piecewise", learning_rate=1.0, boundaries=[3], values=[1.0, 0.2])
        self.assertAllClose(scalar_values(sched, [3, 4]), [1.0, 0.2])

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
        self.assertAllClose(scalar_values(sched, [0, 25, 50, 100]), [0.002, 0.005, 0.008, 0.002])

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
        self.assertAllClose(scalar_values(sched, steps), [ref(t) for t in steps], atol=1e-7)
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
         r"steps_per_epoch must be >= 1, got 0\."),
        ("cosine", {"learning_rate": 0.1, "steps_per_epoch": 2.5, "epochs": 3},
         r"steps_per_epoch must be an integer >= 1, got 2\.5\."),
        ("constant", {"learning_rate": -0.1}, r"learning_rate must be > 0, got -0\.1\."),
        ("constant", {"learning_rate": float("nan")},
         r"learning_rate must be a finite number > 0, got nan\."),
        ("exponential", {"learning_rate": 0.1, "s": float("inf")},
         r"s must be a finite number > 0, got inf\."),
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
