"""recipes.diagnosis: measures, probing and saliency on tiny hand-built models."""

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from recipes.diagnosis.measures import (
    activation_stats,
    gradient_norms,
    layer_outputs,
    saliency_map,
    weight_stats,
)
from recipes.diagnosis.probing import activation_kind, check_input_shape, kernels, resolve_loss


def deep_sigmoid(depth=30, units=50, stddev=1.0):
    """The chapter's opening: sigmoid layers with N(0, 1) weights (seeded by the test)."""
    inputs = keras.Input((20,))
    x = inputs
    for i in range(depth):
        init = keras.initializers.RandomNormal(stddev=stddev)  # one per layer
        x = keras.layers.Dense(units, activation="sigmoid", kernel_initializer=init,
                               name=f"hidden_{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="output")(x))


def dead_relu_model(dead=6, units=10, inline=True):
    """ReLU layer whose first `dead` units have a bias of -100 (inputs in [0, 1))."""
    layers = [keras.Input((5,)), keras.layers.Dense(units, activation="relu" if inline else None,
                                                    name="hidden_0")]
    if not inline:
        layers.append(keras.layers.ReLU(name="act_0"))
    layers.append(keras.layers.Dense(3, activation="softmax", name="output"))
    model = keras.Sequential(layers)
    kernel, bias = model.get_layer("hidden_0").get_weights()
    bias[:dead] = -100.0
    model.get_layer("hidden_0").set_weights([kernel, bias])
    return model


class ProbingTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.parameters(
        (keras.layers.Dense(2, activation="relu"), "relu"),
        (keras.layers.Dense(2), None),
        (keras.layers.Conv2D(2, 3, activation="tanh"), "tanh"),
        (keras.layers.Activation("sigmoid"), "sigmoid"),
        (keras.layers.LeakyReLU(), "leaky_relu"),
        (keras.layers.ReLU(), "relu"),
        (keras.layers.ELU(), "elu"),
        (keras.layers.Softmax(), "softmax"),
        (keras.layers.Flatten(), None),
    )
    def test_activation_kind(self, layer, kind):
        self.assertEqual(activation_kind(layer), kind)

    def test_kernels_skip_biases_and_flatten_nested_models(self):
        base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="inner")],
                                name="base")
        inputs = keras.Input((4,))
        outputs = keras.layers.Dense(2, name="head")(keras.layers.BatchNormalization()(
            base(inputs)))
        found = kernels(keras.Model(inputs, outputs))
        self.assertEqual([name for name, _ in found], ["base/inner", "head"])
        self.assertEqual([tuple(v.shape) for _, v in found], [(4, 3), (3, 2)])

    def test_resolve_loss(self):
        softmax = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, "softmax")])
        logits = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
        sigmoid = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, "sigmoid")])
        y = np.array([0, 3])
        self.assertIsInstance(resolve_loss(softmax, y), keras.losses.SparseCategoricalCrossentropy)
        self.assertFalse(resolve_loss(softmax, y).get_config()["from_logits"])
        self.assertTrue(resolve_loss(logits, y).get_config()["from_logits"])
        self.assertIsInstance(resolve_loss(softmax, np.eye(4)[y]),
                              keras.losses.CategoricalCrossentropy)
        self.assertIsInstance(resolve_loss(sigmoid, y), keras.losses.BinaryCrossentropy)
        softmax.compile("sgd", "mse")
        self.assertIs(resolve_loss(softmax, y), keras.losses.get("mse"))
        with self.assertRaisesRegex(ValueError, "one loss for one output; got a dict"):
            resolve_loss(softmax, y, {"a": "mse"})

    def test_check_input_shape_messages(self):
        model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(2)], name="net")
        self.assertEqual(check_input_shape(model, np.zeros((2, 28, 28, 1))).dtype, np.float32)
        with self.assertRaisesRegex(ValueError, r"Data of shape \(2, 32, 32, 3\) does not fit "
                                                r"model 'net', which expects inputs of shape "
                                                r"\(None, 28, 28, 1\)\."):
            check_input_shape(model, np.zeros((2, 32, 32, 3)))
        with self.assertRaisesRegex(ValueError, r"a single example\? pass a batch: x\[None\]"):
            check_input_shape(model, np.zeros((28, 28, 1)))
        unbuilt = keras.Sequential([keras.layers.Dense(2)], name="lazy")
        with self.assertRaisesRegex(ValueError, "Model 'lazy' is not built: give it a "
                                                "keras.Input first or call it on a batch."):
            check_input_shape(unbuilt, np.zeros((2, 3)))


class GradientNormsTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_closed_form_linear_regression(self):
        # Loss mean((x w + b - y)^2): d/dw = 2/N x^T (x w + b - y).
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, name="linear")])
        w, b = np.array([[0.5], [-1.0], [2.0]], "float32"), np.array([0.3], "float32")
        model.set_weights([w, b])
        x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
        y = np.random.default_rng(1).normal(size=(16, 1)).astype("float32")
        frame = gradient_norms(model, x, y, loss="mse")
        grad = 2 / 16 * x.T @ (x @ w + b - y)
        self.assertEqual(list(frame["layer"]), ["linear"])
        self.assertAllClose(frame["grad_norm"], [np.linalg.norm(grad)], rtol=1e-5)
        self.assertAllClose(frame["weight_norm"], [np.linalg.norm(w)])
        self.assertAllClose(frame["ratio"], [np.linalg.norm(grad) / np.linalg.norm(w)], rtol=1e-5)
        self.assertAllClose(frame.attrs["loss"], np.mean((x @ w + b - y) ** 2), rtol=1e-5)

    def test_deep_sigmoid_gradients_vanish_toward_the_input(self):
        model = deep_sigmoid()
        x = np.random.default_rng(0).random((64, 20)).astype("float32")
        frame = gradient_norms(model, x, np.arange(64) % 3)
        self.assertLen(frame, 31)
        self.assertEqual(list(frame["depth"]), list(range(31)))
        self.assertEqual(frame["layer"].iloc[0], "hidden_0")
        self.assertEqual(frame["layer"].iloc[-1], "output")
        # Orders of magnitude between the first layer and the output layer.
        self.assertLess(frame["grad_norm"].iloc[0], 1e-3 * frame["grad_norm"].iloc[-1])

    def test_regularization_is_included(self):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
            1, kernel_regularizer=keras.regularizers.L2(0.5), use_bias=False, name="d")])
        model.set_weights([np.array([[1.0], [2.0]], "float32")])
        x, y = np.zeros((4, 2), "float32"), np.zeros((4, 1), "float32")
        frame = gradient_norms(model, x, y, loss="mse")  # only the penalty 0.5 |w|^2 moves
        self.assertAllClose(frame["grad_norm"], [np.linalg.norm([1.0, 2.0])])
        self.assertAllClose(frame.attrs["loss"], 0.5 * 5.0)

    def test_batch_norm_statistics_are_restored(self):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="d"),
                                  keras.layers.BatchNormalization(name="bn"),
                                  keras.layers.Dense(2, activation="softmax", name="out")])
        before = [v.numpy().copy() for v in model.non_trainable_variables]
        gradient_norms(model, np.random.rand(32, 4) * 5 + 3, np.arange(32) % 2)
        for old, new in zip(before, model.non_trainable_variables):
            self.assertAllClose(old, new.numpy())

    def test_sequential_and_functional_agree(self):
        seq = dead_relu_model(dead=0)
        inputs = keras.Input((5,))
        x = keras.layers.Dense(10, activation="relu", name="hidden_0")(inputs)
        func = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="output")(x))
        func.set_weights(seq.get_weights())
        x = np.random.rand(20, 5).astype("float32")
        a, b = gradient_norms(seq, x, np.arange(20) % 3), gradient_norms(func, x, np.arange(20) % 3)
        self.assertEqual(list(a["layer"]), list(b["layer"]))
        self.assertAllClose(a["grad_norm"], b["grad_norm"])

    def test_layers_pattern_matches_hand_backprop_of_the_hidden_kernels(self):
        # Two linear hidden layers and a softmax output: backprop by hand in NumPy.
        inputs = keras.Input((3,))
        h = keras.layers.Dense(2, name="hidden_0")(inputs)
        h = keras.layers.Dense(2, name="hidden_1")(h)
        model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax",
                                                       name="output")(h))
        rng = np.random.default_rng(0)
        x = rng.normal(size=(5, 3)).astype("float32")
        y = np.array([0, 1, 2, 1, 0])
        w1, b1 = (v.numpy() for v in model.get_layer("hidden_0").weights)
        w2, b2 = (v.numpy() for v in model.get_layer("hidden_1").weights)
        wo, bo = (v.numpy() for v in model.get_layer("output").weights)
        h1 = x @ w1 + b1
        z = (h1 @ w2 + b2) @ wo + bo
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        dh2 = (p - np.eye(3)[y]) / len(x) @ wo.T
        expected = [np.linalg.norm(x.T @ (dh2 @ w2.T)), np.linalg.norm(h1.T @ dh2)]
        frame = gradient_norms(model, x, y, layers=r"hidden_\d+")
        self.assertEqual(list(frame["layer"]), ["hidden_0", "hidden_1"])
        self.assertAllClose(frame["grad_norm"], expected, rtol=1e-4)

    def test_layers_pattern_keeps_the_rows_and_depths_of_the_full_table(self):
        model = deep_sigmoid(4, 6)
        x = np.random.default_rng(1).random((8, 20)).astype("float32")
        y = np.arange(8) % 3
        full = gradient_norms(model, x, y)
        hidden = gradient_norms(model, x, y, layers=r"hidden_\d+")
        self.assertEqual(list(hidden["layer"]), ["hidden_0", "hidden_1", "hidden_2", "hidden_3"])
        self.assertEqual(list(hidden["depth"]), [0, 1, 2, 3])
        self.assertAllClose(hidden["grad_norm"], full["grad_norm"].iloc[:4])
        self.assertAllClose(hidden.attrs["loss"], full.attrs["loss"])
        output = gradient_norms(model, x, y, layers="out.*")
        self.assertEqual(list(output["layer"]), ["output"])
        self.assertEqual(list(output["depth"]), [4])
        self.assertAllClose(output["grad_norm"], full["grad_norm"].iloc[4:])
        with self.assertRaisesRegex(ValueError, "No kernel"):  # the whole name must match
            gradient_norms(model, x, y, layers="hidden")

    def test_layers_pattern_that_matches_nothing_names_the_layers(self):
        model = deep_sigmoid(2, 4)
        with self.assertRaisesRegex(ValueError, r"No kernel of model '.*' is in a layer "
                                                r"matching 'act_\\\\d\+'\. Layers with "
                                                r"kernels: hidden_0, hidden_1, output\."):
            gradient_norms(model, np.zeros((2, 20), "float32"), np.zeros(2), layers=r"act_\d+")

    def test_errors(self):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Flatten()], name="flat")
        with self.assertRaisesRegex(ValueError, "Model 'flat' has no trainable kernel"):
            gradient_norms(model, np.zeros((2, 3)), np.zeros(2))
        with self.assertRaisesRegex(ValueError, "does not fit model"):
            gradient_norms(deep_sigmoid(2), np.zeros((2, 7)), np.zeros(2))


class ActivationStatsTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.parameters((True, "hidden_0"), (False, "act_0"))
    def test_dead_relu_fraction(self, inline, layer):
        model = dead_relu_model(dead=6, inline=inline)
        x = np.random.default_rng(0).random((100, 5)).astype("float32")
        stats = activation_stats(model, x, batch_size=32).set_index("layer")
        self.assertEqual(list(stats.index), [layer, "output"])
        self.assertAllClose(stats.loc[layer, "dead_fraction"], 0.6)
        self.assertEqual(stats.loc[layer, "units"], 10)
        self.assertEqual(stats.loc[layer, "kind"], "relu")
        self.assertGreaterEqual(stats.loc[layer, "frac_zero"], 0.6)
        self.assertTrue(stats.loc["output", "is_output"])
        self.assertFalse(stats.loc[layer, "is_output"])

    def test_numbers_equal_numpy_on_the_outputs(self):
        model = deep_sigmoid(depth=3, units=16, stddev=2.0)
        x = np.random.default_rng(0).random((50, 20)).astype("float32")
        outs = layer_outputs(model, x)
        stats = activation_stats(model, x, batch_size=7).set_index("layer")
        for name, values in outs.items():
            v = values.astype("float64")
            self.assertAllClose(stats.loc[name, "mean"], v.mean(), rtol=1e-6)
            self.assertAllClose(stats.loc[name, "std"], v.std(), rtol=1e-5)
            self.assertAllClose(stats.loc[name, "frac_zero"], np.mean(v == 0))
        for i in range(3):
            v = outs[f"hidden_{i}"]
            self.assertAllClose(stats.loc[f"hidden_{i}", "saturated_fraction"],
                                np.mean((v < 0.01) | (v > 0.99)))
        self.assertTrue(np.isnan(stats.loc["output", "saturated_fraction"]))

    def test_tanh_saturation_and_conv_channels(self):
        inputs = keras.Input((6, 6, 1))
        x = keras.layers.Conv2D(4, 3, activation="relu", name="conv_0_0")(inputs)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(8, activation="tanh", name="hidden_0",
                               kernel_initializer=keras.initializers.Constant(5.0))(x)
        model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
        kernel, bias = model.get_layer("conv_0_0").get_weights()
        bias[:1] = -100.0  # one of four channels can never fire on inputs in [0, 1)
        model.get_layer("conv_0_0").set_weights([kernel, bias])
        x = np.random.default_rng(0).random((30, 6, 6, 1)).astype("float32")
        stats = activation_stats(model, x).set_index("layer")
        self.assertAllClose(stats.loc["conv_0_0", "dead_fraction"], 0.25)
        self.assertEqual(stats.loc["conv_0_0", "units"], 4)
        tanh = layer_outputs(model, x, ["hidden_0"])["hidden_0"]
        self.assertAllClose(stats.loc["hidden_0", "saturated_fraction"],
                            np.mean(np.abs(tanh) > 0.99))
        self.assertGreater(stats.loc["hidden_0", "saturated_fraction"], 0.5)

    def test_unknown_layer_and_no_activation(self):
        model = dead_relu_model()
        with self.assertRaisesRegex(ValueError, r"Unknown layer\(s\) \['nope'\]. Valid: "
                                                "hidden_0, output."):
            activation_stats(model, np.zeros((2, 5)), ["nope"])
        linear = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)], name="lin")
        with self.assertRaisesRegex(ValueError, "Model 'lin' has no activation layer"):
            activation_stats(linear, np.zeros((2, 3)))


class WeightStatsTest(tf.test.TestCase):
    def test_values_and_non_finite_counts(self):
        model = dead_relu_model(dead=0)
        kernel, bias = model.get_layer("hidden_0").get_weights()
        kernel[0, 0], kernel[1, 1] = np.nan, np.inf
        model.get_layer("hidden_0").set_weights([kernel, bias])
        stats = weight_stats(model).set_index("variable")
        self.assertLen(stats, 4)
        row = stats.loc[model.get_layer("hidden_0").kernel.path]
        finite = kernel[np.isfinite(kernel)]
        self.assertEqual(row["nonfinite"], 2)
        self.assertEqual(row["layer"], "hidden_0")
        self.assertAllClose([row["mean"], row["std"], row["norm"]],
                            [finite.mean(), finite.std(), np.linalg.norm(finite)], rtol=1e-5)
        self.assertTrue(stats["trainable"].all())
        bn = keras.Sequential([keras.Input((2,)), keras.layers.BatchNormalization(name="bn")])
        self.assertEqual(list(weight_stats(bn)["trainable"]), [True, True, False, False])

    def test_norm_does_not_depend_on_the_blas_threads(self):
        # A kernel as large as the chapter's MLPs' first one (784 x 100): BLAS's dot, which
        # np.linalg.norm uses, splits it over its threads and its last digits change with
        # their number; weight_stats must give the same norm with 1 and 2 threads.
        from threadpoolctl import threadpool_limits  # installed with scikit-learn

        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(100, name="wide")])
        kernel = np.asarray(model.get_layer("wide").kernel.numpy(), dtype="float64").ravel()
        norms, blas = [], []
        for threads in (1, 2):
            with threadpool_limits(threads, user_api="blas"):
                norms.append(weight_stats(model)["norm"].iloc[0])
                blas.append(np.linalg.norm(kernel))
        self.assertEqual(norms[0], norms[1])
        self.assertAllClose(norms, blas, rtol=1e-12)


class SaliencyTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.parameters(0, 5)
    def test_linear_softmax_model_closed_form(self, samples):
        # Without the softmax the class score is x @ W[:, c] + b: its gradient is W[:, c].
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
        x = np.random.default_rng(0).random((5, 4)).astype("float32")
        kernel = model.get_weights()[0]
        maps = saliency_map(model, x, class_index=[0, 1, 2, 0, 1], smoothgrad_samples=samples)
        self.assertAllClose(maps, np.abs(kernel[:, [0, 1, 2, 0, 1]].T), rtol=1e-5)
        self.assertIs(model.layers[-1].activation, keras.activations.softmax)  # restored

    def test_predicted_class_by_default(self):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
        x = np.random.default_rng(0).random((6, 4)).astype("float32")
        pred = model.predict(x, verbose=0).argmax(axis=1)
        kernel = model.get_weights()[0]
        self.assertAllClose(saliency_map(model, x), np.abs(kernel[:, pred].T), rtol=1e-5)

    def test_cnn_maps_have_the_input_shape_and_are_finite(self):
        model = keras.Sequential([
            keras.Input((12, 12, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5, "softmax")])
        images = np.random.default_rng(0).random((3, 12, 12, 3)).astype("float32")
        for samples in (0, 4):
            maps = saliency_map(model, images, smoothgrad_samples=samples)
            self.assertEqual(maps.shape, images.shape)
            self.assertTrue(np.all(np.isfinite(maps)) and np.all(maps >= 0))
            self.assertGreater(maps.max(), 0)
        smooth_a = saliency_map(model, images, smoothgrad_samples=4, seed=1)
        self.assertAllClose(smooth_a, saliency_map(model, images, smoothgrad_samples=4, seed=1))

    def test_bad_inputs(self):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
        with self.assertRaisesRegex(ValueError, "class_index 3 is out of range for 3 outputs"):
            saliency_map(model, np.zeros((2, 4)), class_index=3)
        with self.assertRaisesRegex(ValueError, "smoothgrad_samples and noise must be >= 0"):
            saliency_map(model, np.zeros((2, 4)), smoothgrad_samples=-1)
