"""Tests for recipes.optimizers: classes, hyperparameters, clipping, errors."""

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from recipes.optimizers import DEFAULT_LEARNING_RATES, OPTIMIZER_NAMES, make_optimizer
from recipes.schedules import PowerSchedule

EXPECTED = {
    "sgd": (keras.optimizers.SGD, {"momentum": 0.0, "nesterov": False}),
    "momentum": (keras.optimizers.SGD, {"momentum": 0.9, "nesterov": False}),
    "nesterov": (keras.optimizers.SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (keras.optimizers.Adagrad, {"initial_accumulator_value": 0.1}),
    "rmsprop": (keras.optimizers.RMSprop, {"rho": 0.9, "momentum": 0.0}),
    "adam": (keras.optimizers.Adam, {"beta_1": 0.9, "beta_2": 0.999}),
    "adamax": (keras.optimizers.Adamax, {"beta_1": 0.9, "beta_2": 0.999}),
    "nadam": (keras.optimizers.Nadam, {"beta_1": 0.9, "beta_2": 0.999}),
    "adamw": (keras.optimizers.AdamW, {"beta_1": 0.9, "beta_2": 0.999, "weight_decay": 1e-5}),
    "lion": (keras.optimizers.Lion, {"beta_1": 0.9, "beta_2": 0.99}),
}
BOOK_RATES = {"sgd": 1e-2, "momentum": 1e-3, "nesterov": 1e-3, "adagrad": 1e-3,
              "rmsprop": 1e-3, "adam": 1e-3, "adamax": 1e-3, "nadam": 1e-3,
              "adamw": 1e-3, "lion": 1e-4}
NAMES = [(n,) for n in OPTIMIZER_NAMES]


def _step(opt, grads, values):
    """Apply one update to fresh variables; return the new values."""
    variables = [keras.Variable(np.array(v, dtype="float32")) for v in values]
    opt.apply_gradients(zip([tf.constant(g, tf.float32) for g in grads], variables))
    return [v.numpy() for v in variables]


class OptimizersTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_names_and_default_rates(self):
        self.assertEqual(OPTIMIZER_NAMES, tuple(EXPECTED))
        self.assertEqual(DEFAULT_LEARNING_RATES, BOOK_RATES)

    @parameterized.parameters(*NAMES)
    def test_class_and_hyperparameters(self, name):
        cls, expected = EXPECTED[name]
        opt = make_optimizer(name)
        self.assertIs(type(opt), cls)
        config = opt.get_config()
        for key, value in expected.items():
            self.assertAllClose(config[key], value, msg=f"{name}.{key}")
        self.assertAllClose(float(opt.learning_rate), BOOK_RATES[name])
        self.assertIsNone(config["clipnorm"])

    @parameterized.parameters(*NAMES)
    def test_each_optimizer_descends_a_quadratic(self, name):
        opt = make_optimizer(name, learning_rate=0.05)
        w = keras.Variable(np.array([1.0, -2.0], "float32"))
        target = np.array([3.0, 3.0], "float32")
        losses = []
        for _ in range(10):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum((w - target) ** 2)
            losses.append(float(loss))
            opt.apply_gradients([(tape.gradient(loss, w), w)])
        self.assertLess(float(tf.reduce_sum((w - target) ** 2)), 0.9 * losses[0])

    def test_momentum_and_nesterov_updates_match_formulas(self):
        lr, m, g = 0.1, 0.9, 2.0
        # momentum: v1 = -lr g, w1 = v1; v2 = m v1 - lr g, w2 = w1 + v2
        opt = make_optimizer("momentum", learning_rate=lr)
        w = keras.Variable(np.zeros(1, "float32"))
        for _ in range(2):
            opt.apply_gradients([(tf.constant([g]), w)])
        self.assertAllClose(w.numpy(), [-lr * g + (m * -lr * g - lr * g)])
        # nesterov: w += m v - lr g, with v updated first
        opt = make_optimizer("nesterov", learning_rate=lr)
        w = keras.Variable(np.zeros(1, "float32"))
        v1 = -lr * g
        w1 = m * v1 - lr * g
        v2 = m * v1 - lr * g
        w2 = w1 + m * v2 - lr * g
        for _ in range(2):
            opt.apply_gradients([(tf.constant([g]), w)])
        self.assertAllClose(w.numpy(), [w2])

    def test_schedule_and_int_learning_rates(self):
        schedule = PowerSchedule(0.1, s=10.0, c=2.0)
        opt = make_optimizer("adam", learning_rate=schedule)
        self.assertIs(opt._learning_rate, schedule)
        self.assertAllClose(float(opt.learning_rate), 0.1)
        opt.iterations.assign(10)
        self.assertAllClose(float(opt.learning_rate), 0.1 / 4)
        self.assertAllClose(float(make_optimizer("sgd", learning_rate=1).learning_rate), 1.0)
        self.assertAllClose(
            float(make_optimizer("sgd", learning_rate=np.float32(0.5)).learning_rate), 0.5
        )

    def test_clipnorm_bounds_the_step(self):
        lr = 0.1
        grad = np.array([1e6, -2e6, 3e6], "float32")
        (new,) = _step(make_optimizer("sgd", learning_rate=lr, clipnorm=1.0), [grad], [[0, 0, 0]])
        self.assertLessEqual(np.linalg.norm(new), lr * (1 + 1e-6))
        self.assertAllClose(new, -lr * grad / np.linalg.norm(grad))
        # a small gradient is left alone
        opt = make_optimizer("sgd", learning_rate=lr, clipnorm=1.0)
        (new,) = _step(opt, [[0.3, 0.4]], [[1, 1]])
        self.assertAllClose(new, [1 - lr * 0.3, 1 - lr * 0.4])

    def test_clipvalue_caps_each_component(self):
        lr = 0.1
        grad = [5.0, -0.3, -7.0, 0.99]
        (new,) = _step(make_optimizer("sgd", learning_rate=lr, clipvalue=1.0), [grad], [[0] * 4])
        self.assertAllClose(new, [-lr * 1.0, lr * 0.3, lr * 1.0, -lr * 0.99])

    def test_global_clipnorm_scales_all_variables_together(self):
        lr, c = 0.1, 1.0
        g1, g2 = np.array([3.0, 0.0, 0.0], "float32"), np.array([0.0, 4.0], "float32")
        opt = make_optimizer("sgd", learning_rate=lr, global_clipnorm=c)
        new1, new2 = _step(opt, [g1, g2], [[0, 0, 0], [0, 0]])
        global_norm = np.sqrt(np.sum(g1**2) + np.sum(g2**2))  # 5
        self.assertAllClose(new1, -lr * g1 * c / global_norm)
        self.assertAllClose(new2, -lr * g2 * c / global_norm)
        self.assertAllClose(np.sqrt(np.sum(new1**2) + np.sum(new2**2)), lr * c)
        # per-variable clipnorm clips each to norm c instead: a different update
        opt = make_optimizer("sgd", learning_rate=lr, clipnorm=c)
        new1, new2 = _step(opt, [g1, g2], [[0, 0, 0], [0, 0]])
        self.assertAllClose(new1, [-lr, 0, 0])
        self.assertAllClose(new2, [0, -lr])

    def test_kwargs_override_and_case(self):
        opt = make_optimizer("Momentum", momentum=0.95, weight_decay=1e-4)
        self.assertAllClose(opt.momentum, 0.95)
        self.assertAllClose(opt.weight_decay, 1e-4)

    def test_object_is_returned(self):
        opt = keras.optimizers.Adam(3e-4)
        self.assertIs(make_optimizer(opt), opt)
        with self.assertRaisesRegex(ValueError, r"optimizer object and also clipnorm, "
                                                r"learning_rate: configure the object"):
            make_optimizer(opt, learning_rate=0.1, clipnorm=1.0)

    def test_unknown_name_lists_valid_names(self):
        with self.assertRaisesRegex(
            ValueError,
            r"^Unknown optimizer 'adamx'\. Valid: sgd, momentum, nesterov, adagrad, rmsprop, "
            r"adam, adamax, nadam, adamw, lion\.$",
        ):
            make_optimizer("adamx")
        with self.assertRaisesRegex(ValueError, "Unknown optimizer 3"):
            make_optimizer(3)

    @parameterized.parameters(
        ({"learning_rate": 0.0}, r"learning_rate must be > 0, got 0\.0\."),
        ({"learning_rate": -1e-3}, r"learning_rate must be > 0, got -0\.001\."),
        ({"learning_rate": "fast"}, r"learning_rate must be a float or a LearningRateSchedule"),
        ({"learning_rate": float("inf")}, r"learning_rate must be a finite number > 0, got inf"),
        ({"clipnorm": 0.0}, r"clipnorm must be > 0, got 0\.0\."),
        ({"clipvalue": -1.0}, r"clipvalue must be > 0, got -1\.0\."),
        ({"global_clipnorm": float("nan")}, r"global_clipnorm must be a finite number > 0"),
        ({"clipnorm": 1.0, "global_clipnorm": 1.0},
         r"Only one of clipnorm, clipvalue and global_clipnorm may be set, got clipnorm, "
         r"global_clipnorm\."),
    )
    def test_bad_arguments(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            make_optimizer("sgd", **kwargs)
