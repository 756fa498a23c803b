"""recipes.diagnosis.doctor (+ findings, checks, lr_probe): each failure is found, with numbers."""

import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from absl.testing import parameterized

from recipes.diagnosis.checks import check_overfitting, check_probe
from recipes.diagnosis.doctor import Finding, Thresholds, diagnose, examine
from recipes.diagnosis.findings import KINDS, REMEDIES
from recipes.diagnosis.lr_probe import clone_optimizer, probe_learning_rate
from recipes.runs import to_jsonable


def toy_data(n=300, seed=0):
    """Inputs in [0, 1) whose largest of the first 3 features is the label."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 6)).astype("float32")
    return x, x[:, :3].argmax(axis=1)


def small_mlp(activation="relu", depth=1, units=16, init="he_normal"):
    layers = [keras.Input((6,))]
    layers += [keras.layers.Dense(units, activation=activation, kernel_initializer=init,
                                  name=f"hidden_{i}") for i in range(depth)]
    layers.append(keras.layers.Dense(3, activation="softmax", name="output"))
    return keras.Sequential(layers, name="mlp")


class DoctorTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_deep_sigmoid_with_unit_normal_weights_vanishes(self):
        inputs = keras.Input((784,))
        x = inputs
        for i in range(30):
            init = keras.initializers.RandomNormal(stddev=1.0)
            x = keras.layers.Dense(50, activation="sigmoid", kernel_initializer=init,
                                   name=f"hidden_{i}")(x)
        model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
        pixels = np.random.default_rng(0).random((256, 784)).astype("float32")
        findings = {f.kind: f for f in diagnose(model, pixels, np.arange(256) % 10)}
        self.assertIn("vanishing", findings)
        evidence = findings["vanishing"].evidence
        self.assertGreater(evidence["factor"], 100)
        self.assertEqual(evidence["first_layers"][0], "hidden_0")
        self.assertLess(evidence["first_relative_gradient"],
                        1e-2 * evidence["output_relative_gradient"])
        self.assertIn("He initialization", findings["vanishing"].remedy)
        self.assertIn("saturated", findings)
        self.assertNotIn("exploding", findings)

    @parameterized.parameters(0.6, 0.8)
    def test_relu_with_large_negative_bias_is_dead(self, fraction):
        model = small_mlp(units=10)
        kernel, bias = model.get_layer("hidden_0").get_weights()
        bias[: int(fraction * 10)] = -100.0
        model.get_layer("hidden_0").set_weights([kernel, bias])
        x, y = toy_data()
        findings = diagnose(model, x, y)
        self.assertEqual([f.kind for f in findings], ["dead"])
        evidence = findings[0].evidence
        self.assertAllClose(evidence["dead_fraction"], {"hidden_0": fraction})
        self.assertEqual(evidence["units"], {"hidden_0": 10})
        self.assertEqual(evidence["examples"], 300)
        self.assertIn(f"{fraction:.0%} of the 10 units of hidden_0 (relu)", findings[0].message)

    def test_nan_weight_is_an_error_and_stops_other_checks(self):
        model = small_mlp()
        kernel, bias = model.get_layer("hidden_0").get_weights()
        kernel[2, 3] = np.nan
        model.get_layer("hidden_0").set_weights([kernel, bias])
        x, y = toy_data()
        findings = diagnose(model, x, y)
        self.assertEqual([(f.kind, f.severity) for f in findings], [("non_finite", "error")])
        evidence = findings[0].evidence
        kernel_path = model.get_layer("hidden_0").kernel.path
        self.assertEqual(evidence["weights_nonfinite"], {kernel_path: 1})
        self.assertAllClose(evidence["activations_nonfinite"]["hidden_0"], 1 / 16)  # one unit
        self.assertIn("clip", findings[0].remedy)

    def test_exploding_gradients(self):
        model = small_mlp(depth=10, units=100, init=keras.initializers.RandomNormal(stddev=0.5))
        x, y = toy_data()
        findings = {f.kind: f for f in diagnose(model, x * 10, y)}
        self.assertIn("exploding", findings)
        self.assertGreater(findings["exploding"].evidence["max_relative_gradient"], 10)

    def test_class_with_noise_predictions_lags(self):
        rng = np.random.default_rng(0)

        def data(n):
            y = rng.integers(0, 4, n)
            x = 3.0 * np.eye(4)[y] + rng.normal(size=(n, 4))
            x[:, 3] = 3.0 * rng.normal(size=n)  # class 3's score knows nothing of the label
            return x.astype("float32"), y

        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, "sigmoid")])
        model.set_weights([np.eye(4, dtype="float32"), np.zeros(4, "float32")])
        (x, y), (x_val, y_val) = data(800), data(800)
        names = ["bass", "trout", "shrimp", "mullet"]
        findings = diagnose(model, x, y, x_val, y_val, class_names=names)
        self.assertEqual([f.kind for f in findings], ["lagging_class"])
        evidence = findings[0].evidence
        self.assertEqual(evidence["class"], "mullet")
        self.assertAllClose(evidence["auc"], 0.5, atol=0.06)
        self.assertGreater(evidence["median_auc_others"], 0.95)
        self.assertEqual(evidence["class_counts"], dict(zip(names, np.bincount(y).tolist())))
        self.assertEqual(evidence["training_count"], int(np.sum(y == 3)))
        self.assertEqual(evidence["examples_evaluated"], int(np.sum(y_val == 3)))
        self.assertIn("focal loss", findings[0].remedy)
        given = diagnose(model, x, y, x_val, y_val, class_names=names,
                         class_counts={"bass": 500, "trout": 400, "shrimp": 300, "mullet": 12})
        self.assertEqual(given[0].evidence["training_count"], 12)

    def test_overfitting_from_history_and_from_evaluation(self):
        model = small_mlp()
        x, y = toy_data()
        history = {"loss": [0.5, 0.1], "val_loss": [0.9, 1.2],
                   "accuracy": [0.9, 0.98], "val_accuracy": [0.7, 0.62]}
        findings = diagnose(model, x, y, history=history)
        self.assertEqual([f.kind for f in findings], ["overfitting"])
        self.assertAllClose(findings[0].evidence["history_gap"], 0.36)
        self.assertIn("accuracy 0.980 vs val_accuracy 0.620", findings[0].message)
        t = Thresholds()
        scores = {"train_accuracy": 0.95, "val_accuracy": 0.80}
        found = check_overfitting(None, scores, t)
        self.assertAllClose(found[0].evidence["evaluated_gap"], 0.15)
        self.assertEqual(check_overfitting(None, {"train_accuracy": 0.95, "val_accuracy": 0.9},
                                           t), [])
        rising = pd.DataFrame({"loss": [1.0, 0.5, 0.3, 0.2, 0.1],
                               "val_loss": [1.0, 0.6, 0.7, 0.8, 0.9]})
        found = check_overfitting(rising, {}, t)
        self.assertEqual(found[0].evidence["best_val_loss_epoch"], 2)
        self.assertAllClose(found[0].evidence["val_loss_rise"], 0.5)

    def test_healthy_toy_model_has_no_finding(self):
        model = small_mlp()
        model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
        x, y = toy_data(600)
        model.fit(x[:300], y[:300], epochs=20, verbose=0)
        exam = examine(model, x[:300], y[:300], x[300:], y[300:], probe_steps=5)
        self.assertEqual(exam.findings, [])
        self.assertGreater(exam.scores["val_accuracy"], 0.8)
        self.assertEqual(list(exam.classes["class"]), ["0", "1", "2"])
        self.assertEqual(exam.confusion.to_numpy().sum(), 300)

    def test_finding_text_and_json(self):
        finding = Finding("dead", "warning", "half dead", {"dead_fraction": {"h": 0.5123},
                                                          "examples": 10}, REMEDIES["dead"])
        text = str(finding)
        self.assertIn("[WARNING] dead: half dead", text)
        self.assertIn("dead_fraction: {h: 0.512}", text)
        self.assertIn("remedy: Use leaky ReLU", text)
        self.assertEqual(json.loads(json.dumps(to_jsonable([finding])))[0]["kind"], "dead")
        self.assertEqual(set(KINDS), {"non_finite", "vanishing", "exploding", "dead", "saturated",
                                      "lagging_class", "overfitting", "lr_too_high",
                                      "lr_too_low"})

    def test_bad_inputs(self):
        model = small_mlp()
        x, y = toy_data(20)
        with self.assertRaisesRegex(ValueError, "training data: labels run from 0 to 7, but model "
                                                r"'mlp' has 3 output unit\(s\), i.e. 3 classes"):
            diagnose(model, x, np.r_[y[:-1], 7])
        with self.assertRaisesRegex(ValueError, "validation data: 20 examples but 19 labels"):
            diagnose(model, x, y, x, y[:-1])
        with self.assertRaisesRegex(ValueError, r"Data of shape \(20, 5\) does not fit"):
            diagnose(model, x[:, :5], y)


class LearningRateProbeTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.parameters(
        (keras.optimizers.SGD, 200.0, ["lr_too_high"]),
        (keras.optimizers.SGD, 1e-6, ["lr_too_low"]),
        (keras.optimizers.Adam, 1e-2, []),
    )
    def test_probe_findings(self, optimizer, rate, kinds):
        model = small_mlp()
        model.compile(optimizer(rate), "sparse_categorical_crossentropy")
        x, y = toy_data(600)
        weights = [w.copy() for w in model.get_weights()]
        probe = probe_learning_rate(model, x, y, steps=10)
        runs = [f"order{k}_loss{s}" for s in ("", "_x10", "_x100") for k in (1, 2, 3)]
        self.assertEqual(list(probe.columns), ["step", "loss", "loss_x10", "loss_x100", *runs])
        self.assertLen(probe, 11)
        self.assertAllClose(probe.iloc[0, 1:], [probe["loss"][0]] * 12)  # same start
        for s in ("", "_x10", "_x100"):  # the columns of a rate: the median of its orders
            orders = probe[[f"order{k}_loss{s}" for k in (1, 2, 3)]].to_numpy()
            median = np.median(np.where(np.isfinite(orders), orders, np.inf), axis=1)
            self.assertAllEqual(probe[f"loss{s}"].to_numpy(),
                                np.where(np.isfinite(median), median, np.nan))
        self.assertEqual(probe.attrs["orders"], 3)
        self.assertEqual(probe.attrs["evaluated_on"], "training")
        self.assertAllClose(probe.attrs["learning_rate"], rate)
        self.assertEqual(probe.attrs["optimizer"], optimizer.__name__)
        self.assertEqual([f.kind for f in check_probe(probe, Thresholds())], kinds)
        for old, new in zip(weights, model.get_weights()):  # the model itself never moves
            self.assertAllClose(old, new)

    def test_clone_optimizer_copies_config_and_state(self):
        model = small_mlp()
        model.compile(keras.optimizers.Adam(0.003, beta_1=0.8), "sparse_categorical_crossentropy")
        x, y = toy_data(64)
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        clone = keras.models.clone_model(model)
        new = clone_optimizer(model, clone)
        self.assertAllClose(new.beta_1, 0.8)
        self.assertAllClose(new.learning_rate, 0.003)
        self.assertEqual(int(new.iterations), 4)
        for a, b in zip(model.optimizer.variables, new.variables):
            self.assertAllClose(a, b)
        self.assertAllClose(clone_optimizer(model, clone, 10.0).learning_rate, 0.03)
        scheduled = small_mlp()
        scheduled.compile(keras.optimizers.SGD(
            keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)), "mse")
        self.assertIsNone(clone_optimizer(scheduled, scheduled, 10.0))
        fresh = clone_optimizer(small_mlp(), small_mlp())  # never compiled: Adam
        self.assertIsInstance(fresh, keras.optimizers.Adam)

    def test_bad_steps(self):
        with self.assertRaisesRegex(ValueError, "steps must be >= 1, got 0"):
            probe_learning_rate(small_mlp(), *toy_data(10), steps=0)
        with self.assertRaisesRegex(ValueError, "orders must be >= 1, got 0"):
            probe_learning_rate(small_mlp(), *toy_data(10), steps=1, orders=0)

    def test_validation_data_is_where_the_loss_is_measured(self):
        model = small_mlp()
        model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        x, y = toy_data(600)
        x_val, y_val = toy_data(100, seed=1)
        probe = probe_learning_rate(model, x, y, steps=2, factors=(), validation=(x_val, y_val))
        self.assertEqual(probe.attrs["evaluated_on"], "validation")
        start = float(np.mean(keras.losses.sparse_categorical_crossentropy(y_val, model(x_val))))
        self.assertAllClose(probe["loss"][0], start, rtol=1e-5)  # all 100 (< eval_size)


def synthetic_probe(levels, jitter, steps=20, start=0.1, seed=0):
    """A probe table: per order, the loss moves from `start` to `start * level` with
    multiplicative noise of size `jitter` (None: NaN from the middle on)."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"step": np.arange(steps + 1)})
    for k, level in enumerate(levels, start=1):
        if level is None:
            table[f"order{k}_loss"] = [start] * (steps // 2) + [np.nan] * (steps + 1 - steps // 2)
            continue
        trend = np.r_[1.0, np.full(steps, level)]
        noise = np.r_[1.0, np.exp(jitter * rng.standard_normal(steps))]
        table[f"order{k}_loss"] = start * trend * noise
    runs = table.filter(like="order").to_numpy()
    table.insert(1, "loss", np.median(np.where(np.isfinite(runs), runs, np.inf), axis=1))
    table.attrs.update(optimizer="RMSprop", learning_rate=1e-3, orders=len(levels))
    return table


class CheckProbeTest(tf.test.TestCase, parameterized.TestCase):
    """check_probe's rule on synthetic tables: every order must rise beyond the noise."""

    @parameterized.named_parameters(
        ("clear_rise_in_every_order", (3.0, 2.5, 4.0), 0.05, True),
        ("rise_within_the_noise", (1.6, 1.5, 1.7), 0.4, False),
        ("rise_in_two_orders_of_three", (3.0, 1.0, 3.0), 0.05, False),
        ("rise_below_lr_rise", (1.15, 1.15, 1.15), 0.0, False),
        ("flat", (1.0, 1.0, 1.0), 0.1, False),
        ("one_order_diverges", (1.0, None, 1.0), 0.1, True),
    )
    def test_rule(self, levels, jitter, found):
        probe = synthetic_probe(levels, jitter)
        findings = check_probe(probe, Thresholds())
        self.assertEqual([f.kind for f in findings], ["lr_too_high"] if found else [])
        if found and None not in levels:
            evidence = findings[0].evidence
            self.assertEqual(evidence["window"], [10, 20])
            self.assertLen(evidence["level_per_order"], 3)
            self.assertAllClose(evidence["rise"], min(evidence["level_per_order"]) / 0.1)
            self.assertAllClose(evidence["spread"], jitter, rtol=0.5)
            self.assertIn("in all 3 mini-batch orders", findings[0].message)
        elif found:
            self.assertEqual(findings[0].evidence["orders_non_finite"], 1)
            self.assertIn("NaN/Inf within 20 steps in 1 of 3 mini-batch orders",
                          findings[0].message)

    def test_noise_band_is_a_threshold(self):
        # The same rise (2x in every order) is a finding with a quiet loss and none when
        # the loss jitters by more than half the rise (lr_noise = 2 spreads).
        quiet, noisy = synthetic_probe((2.0,) * 3, 0.1), synthetic_probe((2.0,) * 3, 0.6)
        self.assertLen(check_probe(quiet, Thresholds()), 1)
        self.assertEqual(check_probe(noisy, Thresholds()), [])
        self.assertLen(check_probe(noisy, Thresholds(lr_noise=0.5)), 1)

    def test_single_order_table_still_works(self):
        table = pd.DataFrame({"step": range(6), "loss": [1.0, 2, 4, 8, 16, 32]})
        self.assertEqual([f.kind for f in check_probe(table, Thresholds())], ["lr_too_high"])


@pytest.mark.slow
class HealthyMnistTest(tf.test.TestCase):
    def test_small_cnn_after_one_epoch_has_no_finding(self):
        from recipes.builders import build_cnn
        from recipes.data import load_mnist
        from recipes.specs import CNNSpec

        keras.utils.set_random_seed(0)
        (x_train, y_train), (x_test, y_test) = load_mnist()
        x_train, x_test = x_train[:3000] / 255.0, x_test[:1000] / 255.0
        model = build_cnn(CNNSpec(filters=(16, 32), dense_units=(64,)), (28, 28), 10)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x_train, y_train[:3000], epochs=1, verbose=0,
                            validation_data=(x_test, y_test[:1000]))
        exam = examine(model, x_train[:1000], y_train[:1000], x_test, y_test[:1000],
                       history=history, probe_steps=10)
        self.assertEqual([str(f) for f in exam.findings], [])
        self.assertGreater(exam.scores["val_accuracy"], 0.8)
        self.assertGreater(exam.classes["auc"].min(), 0.95)
        self.assertEqual(list(exam.gradients["layer"]),
                         ["conv_0_0", "conv_1_0", "hidden_0", "output"])


def _mnist_slices(train=2000, valid=500):
    from recipes.data import load_mnist

    (x_train, y_train), (x_test, y_test) = load_mnist()
    return ((x_train[:train] / 255.0).astype("float32"), y_train[:train].astype("int64"),
            (x_test[:valid] / 255.0).astype("float32"), y_test[:valid].astype("int64"))


# Healthy: each architecture with each optimizer at its usual rate, trained a few epochs on
# 2,000 MNIST images (the CNN with RMSprop 1e-3 is issue 16's false alarm: a converged model
# whose loss jitters and, on the examples it memorized, drifts up as it trains on others).
HEALTHY = [("mlp", "sgd", 0.05, 3), ("mlp", "adam", 1e-3, 3), ("mlp", "rmsprop", 1e-3, 3),
           ("cnn", "sgd", 0.05, 2), ("cnn", "adam", 1e-3, 2), ("cnn", "rmsprop", 1e-3, 4)]


@pytest.mark.slow
class ProbeOnMnistTest(tf.test.TestCase):
    """The learning-rate probe on real MNIST models: quiet when healthy, loud when not."""

    @classmethod
    def setUpClass(cls):
        from recipes.builders import build_cnn, build_mlp
        from recipes.specs import CNNSpec, MLPSpec

        super().setUpClass()
        cls.data = x, y, x_val, y_val = _mnist_slices()
        optimizers = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam,
                      "rmsprop": keras.optimizers.RMSprop}
        cls.models = {}
        for arch, name, rate, epochs in HEALTHY:
            keras.backend.clear_session(free_memory=False)
            keras.utils.set_random_seed(0)
            model = (build_mlp(MLPSpec(hidden_units=(100,)), (28, 28), 10) if arch == "mlp"
                     else build_cnn(CNNSpec(filters=(16, 32), dense_units=(64,)), (28, 28), 10))
            model.compile(optimizers[name](rate), "sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            model.fit(x, y, epochs=epochs, verbose=0)
            cls.models[arch, name] = model

    def examine(self, model, steps=20, validation=True):
        x, y, x_val, y_val = self.data
        keras.utils.set_random_seed(0)
        if not validation:
            return examine(model, x[:1000], y[:1000], probe_steps=steps)
        return examine(model, x[:1000], y[:1000], x_val, y_val, probe_steps=steps)

    def test_healthy_models_get_no_finding(self):
        for arch, name, rate, _ in HEALTHY:
            model = self.models[arch, name]
            with self.subTest(model=f"{arch} {name} {rate:g}"):
                exam = self.examine(model)
                self.assertEqual([str(f) for f in exam.findings], [])
                self.assertGreater(exam.scores["val_accuracy"], 0.8)
                self.assertEqual(exam.probe.attrs["evaluated_on"], "validation")
        # Without validation data the probe measures held-out training examples, which the
        # converged CNN memorized (their loss rises toward the held-out loss): still quiet.
        exam = self.examine(self.models["cnn", "rmsprop"], validation=False)
        self.assertEqual(exam.probe.attrs["evaluated_on"], "training")
        self.assertEqual([str(f) for f in exam.findings], [])

    def test_too_high_rates_are_found(self):
        for arch, name, factor in (("mlp", "sgd", 100), ("mlp", "rmsprop", 30),
                                   ("cnn", "rmsprop", 30)):
            model = self.models[arch, name]
            rate = float(model.optimizer.learning_rate)
            model.optimizer.learning_rate = rate * factor
            try:
                with self.subTest(model=f"{arch} {name} x{factor}"):
                    findings = self.examine(model).findings
                    self.assertEqual([(f.kind, f.severity) for f in findings],
                                     [("lr_too_high", "error")])
                    evidence = findings[0].evidence
                    self.assertAllClose(evidence["learning_rate"], rate * factor)
                    if "rise" in evidence:
                        self.assertGreater(evidence["rise"], 1.2)
                        self.assertGreater(np.log(evidence["rise"]), 2 * evidence["spread"])
            finally:
                model.optimizer.learning_rate = rate

    def test_too_low_rate_is_found(self):
        model = self.models["mlp", "sgd"]
        model.optimizer.learning_rate = 5e-5
        try:
            findings = self.examine(model).findings
        finally:
            model.optimizer.learning_rate = 0.05
        self.assertEqual([(f.kind, f.severity) for f in findings], [("lr_too_low", "warning")])
        self.assertLess(abs(findings[0].evidence["relative_drop"]), 0.01)
