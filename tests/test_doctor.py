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
        keras.backend.clear_session()

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
        keras.backend.clear_session()

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
        self.assertEqual(list(probe.columns), ["step", "loss", "loss_x10", "loss_x100"])
        self.assertLen(probe, 11)
        self.assertAllClose(probe.iloc[0, 1:], [probe["loss"][0]] * 3)  # same start
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
