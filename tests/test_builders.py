"""Tests for recipes.builders: layer order and names, parameter counts, every spec field."""

import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from recipes.activations import RReLU
from recipes.builders import build_cnn, build_mlp, count_params
from recipes.regularization import MCDropout
from recipes.specs import CNNSpec, MLPSpec


def _classes(model):
    return [type(layer).__name__ for layer in model.layers]


def _names(model):
    return [layer.name for layer in model.layers]


def _images(n=4, shape=(28, 28), seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, *shape)).astype("float32")


class BuildMLPTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_book_batch_norm_mlp_parameter_counts(self):
        spec = MLPSpec(hidden_units=(300, 100), input_norm="batch_norm", batch_norm="after")
        model = build_mlp(spec, (28, 28), 10)
        self.assertEqual(
            count_params(model), {"trainable": 268_978, "non_trainable": 2_368, "total": 271_346}
        )
        self.assertEqual(model.count_params(), 271_346)

    def test_before_variant_drops_the_dense_biases(self):
        spec = MLPSpec(hidden_units=(300, 100), input_norm="batch_norm", batch_norm="before")
        model = build_mlp(spec, (28, 28), 10)
        # 271,346 - 300 - 100 biases of the hidden Dense layers.
        self.assertEqual(
            count_params(model), {"trainable": 268_578, "non_trainable": 2_368, "total": 270_946}
        )
        self.assertFalse(model.get_layer("hidden_0").use_bias)
        self.assertTrue(model.get_layer("output").use_bias)

    @parameterized.named_parameters(
        ("before", "before", ["Dense", "BatchNormalization", "Activation"] * 2),
        ("after", "after", ["Dense", "Activation", "BatchNormalization"] * 2),
        ("none", "none", ["Dense", "Activation"] * 2),
    )
    def test_batch_norm_placement_order(self, placement, hidden):
        model = build_mlp(MLPSpec(hidden_units=(8, 4), batch_norm=placement), (28, 28), 3)
        self.assertEqual(_classes(model), ["InputLayer", "Flatten", *hidden, "Dense"])

    def test_layer_names(self):
        spec = MLPSpec(hidden_units=(8, 4), batch_norm="before", dropout_rate=0.1)
        model = build_mlp(spec, (6,), 3, name="net")
        self.assertEqual(model.name, "net")
        expected = ["hidden_0", "bn_0", "act_0", "dropout_0", "hidden_1", "bn_1", "act_1",
                    "dropout_1", "output"]  # fmt: skip
        self.assertEqual(_names(model)[1:], expected)  # a 1-D input needs no Flatten

    @parameterized.named_parameters(
        ("auto_relu", "relu", "auto", keras.initializers.HeNormal),
        ("auto_selu", "selu", "auto", keras.initializers.LecunNormal),
        ("auto_tanh", "tanh", "auto", keras.initializers.GlorotUniform),
        ("explicit", "relu", "he_uniform", keras.initializers.HeUniform),
        ("bad_init", "sigmoid", "random_normal", keras.initializers.RandomNormal),
    )
    def test_initializer(self, activation, initializer, cls):
        spec = MLPSpec(hidden_units=(8, 4), activation=activation, initializer=initializer)
        model = build_mlp(spec, (6,), 3)
        for i in range(2):
            self.assertIs(type(model.get_layer(f"hidden_{i}").kernel_initializer), cls)
        glorot = keras.initializers.GlorotUniform
        self.assertIs(type(model.get_layer("output").kernel_initializer), glorot)
        k0, k1 = (model.get_layer(f"hidden_{i}").kernel.numpy() for i in range(2))
        self.assertNotAllClose(k0[:4, :4], k1[:4, :4])  # a fresh initializer per layer

    def test_initializer_object_is_cloned_per_layer(self):
        spec = MLPSpec(hidden_units=(8, 8), initializer=keras.initializers.RandomNormal(stddev=2.0))
        model = build_mlp(spec, (8,), 3)
        k0, k1 = (model.get_layer(f"hidden_{i}").kernel.numpy() for i in range(2))
        self.assertNotAllClose(k0, k1)
        self.assertEqual(model.get_layer("hidden_1").kernel_initializer.stddev, 2.0)

    def test_activation_and_its_kwargs(self):
        kwargs = {"negative_slope": 0.1}
        spec = MLPSpec(hidden_units=(8,), activation="leaky_relu", activation_kwargs=kwargs)
        layer = build_mlp(spec, (6,), 3).get_layer("act_0")
        self.assertIsInstance(layer, keras.layers.LeakyReLU)
        self.assertAllClose(layer(np.array([[-2.0, 3.0]])), [[-0.2, 3.0]])

    def test_input_batch_norm_comes_after_flatten(self):
        model = build_mlp(MLPSpec(hidden_units=(8,), input_norm="batch_norm"), (4, 5), 3)
        self.assertEqual(_names(model)[1:3], ["flatten", "input_bn"])
        self.assertEqual(model.get_layer("input_bn").moving_mean.shape, (20,))

    def test_normalization_input_is_adapted(self):
        x = np.random.default_rng(0).normal(5.0, 3.0, (500, 4, 5)).astype("float32")
        spec = MLPSpec(hidden_units=(8,), input_norm="normalization")
        model = build_mlp(spec, (4, 5), 3, adapt_data=x)
        probe = keras.Model(model.input, model.get_layer("input_normalization").output)
        z = probe(x).numpy()
        self.assertEqual(z.shape, (500, 20))
        self.assertAllClose(z.mean(axis=0), np.zeros(20), atol=1e-4)
        self.assertAllClose(z.std(axis=0), np.ones(20), atol=1e-3)

    def test_normalization_floors_the_std_of_constant_features(self):
        rng = np.random.default_rng(0)
        x = rng.normal(0.0, 2.0, (400, 3)).astype("float32")
        x[:, 2] = 0.0  # a constant feature, like MNIST's border pixels
        spec = MLPSpec(hidden_units=(4,), input_norm="normalization")
        model = build_mlp(spec, (3,), 2, adapt_data=x)
        probe = keras.Model(model.input, model.get_layer("input_normalization").output)
        z = probe(np.array([[0.0, 0.0, 1.0]], dtype="float32")).numpy()
        mean_std = x.std(axis=0).mean()  # (2 + 2 + 0) / 3, roughly
        floor = 0.1 * mean_std
        self.assertAllClose(z[0, 2], 1.0 / floor, rtol=1e-4)  # not 1 / 1e-7
        # The layer keeps its statistics in its config: a saved model reloads them.
        path = f"{self.get_temp_dir()}/norm.keras"
        model.save(path)
        reloaded = keras.models.load_model(path)
        self.assertAllClose(reloaded.predict(x[:5], verbose=0), model.predict(x[:5], verbose=0))

    def test_normalization_without_adapt_data(self):
        spec = MLPSpec(hidden_units=(8,), input_norm="normalization")
        msg = r"input_norm='normalization' needs adapt_data.*x_train"
        with self.assertRaisesRegex(ValueError, msg):
            build_mlp(spec, (6,), 3)

    def test_rescale_input(self):
        model = build_mlp(MLPSpec(hidden_units=(8,), input_norm="rescale"), (6,), 3)
        probe = keras.Model(model.input, model.get_layer("input_rescale").output)
        x = np.full((2, 6), 255.0, "float32")
        self.assertAllClose(probe(x), np.ones((2, 6)))

    @parameterized.named_parameters(
        ("standard", "standard", keras.layers.Dropout),
        ("alpha", "alpha", keras.layers.AlphaDropout),
        ("mc", "mc", MCDropout),
    )
    def test_dropout_kind(self, kind, cls):
        spec = MLPSpec(hidden_units=(8, 8, 4), dropout_rate=0.25, dropout_kind=kind)
        model = build_mlp(spec, (6,), 3)
        dropouts = [layer for layer in model.layers if "dropout" in layer.name]
        self.assertEqual([d.name for d in dropouts], ["dropout_0", "dropout_1", "dropout_2"])
        for d in dropouts:
            self.assertIs(type(d), cls)
            self.assertEqual(d.rate, 0.25)
        self.assertEqual(_names(model)[-2:], ["dropout_2", "output"])

    def test_no_dropout_layers_at_rate_zero(self):
        model = build_mlp(MLPSpec(hidden_units=(8,), dropout_kind="mc"), (6,), 3)
        self.assertNotIn("Dropout", " ".join(_classes(model)))

    def test_regularizer_and_constraint_on_hidden_layers_only(self):
        spec = MLPSpec(hidden_units=(8, 4), l1=0.001, l2=0.01, max_norm=2.0)
        model = build_mlp(spec, (6,), 3)
        for i in range(2):
            layer = model.get_layer(f"hidden_{i}")
            self.assertAllClose(
                [layer.kernel_regularizer.l1, layer.kernel_regularizer.l2], [0.001, 0.01]
            )
            self.assertEqual(layer.kernel_constraint.max_value, 2.0)
        self.assertIsNone(model.get_layer("output").kernel_regularizer)
        plain = build_mlp(MLPSpec(hidden_units=(8,)), (6,), 3).get_layer("hidden_0")
        self.assertIsNone(plain.kernel_regularizer)
        self.assertIsNone(plain.kernel_constraint)

    def test_residual_adds_identity_skips(self):
        spec = MLPSpec(hidden_units=(32, 32, 32), residual=True)
        model = build_mlp(spec, (10,), 4)
        adds = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Add)]
        self.assertEqual(adds, ["add_1", "add_2"])  # the first layer projects 10 -> 32
        self.assertEqual(model.count_params(), (10 * 32 + 32) + 2 * (32 * 32 + 32) + (32 * 4 + 4))
        names = ["act_0", "act_1", "add_1", "act_2", "add_2"]
        probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
        act0, act1, add1, act2, add2 = (t.numpy() for t in probe(_images(5, (10,))))
        self.assertAllClose(add1, act0 + act1)
        self.assertAllClose(add2, add1 + act2)

    def test_residual_skip_on_first_layer_when_widths_match(self):
        model = build_mlp(MLPSpec(hidden_units=(6, 4), residual=True), (6,), 2)
        self.assertEqual([n for n in _names(model) if n.startswith("add")], ["add_0"])

    @parameterized.parameters((10, "softmax"), (2, "softmax"), (1, "sigmoid"))
    def test_output_layer(self, num_classes, activation):
        model = build_mlp(MLPSpec(hidden_units=(8,)), (6,), num_classes)
        out = model.get_layer("output")
        self.assertEqual(out.units, num_classes)
        self.assertEqual(out.activation.__name__, activation)
        self.assertEqual(model.output.shape, (None, num_classes))
        probs = model(_images(3, (6,))).numpy()
        if num_classes > 1:
            self.assertAllClose(probs.sum(axis=1), np.ones(3), atol=1e-6)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, r"num_classes must be >= 1, got 0"):
            build_mlp(MLPSpec(hidden_units=(8,)), (6,), 0)
        with self.assertRaisesRegex(ValueError, r"^Unknown initializer 'xavier'\. Valid: "):
            build_mlp(MLPSpec(hidden_units=(8,), initializer="xavier"), (6,), 3)
        with self.assertRaisesRegex(ValueError, r"^Unknown activation 'relu6x'\. Valid: "):
            build_mlp(MLPSpec(hidden_units=(8,), activation="relu6x"), (6,), 3)

    def test_learns_a_separable_problem(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(400, 4)).astype("float32")
        y = (x[:, 0] + x[:, 1] > 0).astype("int32")
        spec = MLPSpec(hidden_units=(16,), batch_norm="before", activation="elu")
        model = build_mlp(spec, (4,), 2)
        model.compile(
            optimizer=keras.optimizers.Adam(0.01),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(x, y, epochs=5, batch_size=32, verbose=0)
        self.assertGreater(model.evaluate(x, y, verbose=0)[1], 0.9)

    def test_custom_layers_save_and_reload(self):
        spec = MLPSpec(hidden_units=(8, 8), activation="rrelu", batch_norm="after", l2=0.01,
                       max_norm=3.0, residual=True)  # fmt: skip
        model = build_mlp(spec, (6,), 3)
        self.assertIsInstance(model.get_layer("act_0"), RReLU)
        path = os.path.join(self.get_temp_dir(), "mlp.keras")
        model.save(path)
        reloaded = keras.models.load_model(path)
        x = _images(5, (6,))
        self.assertAllClose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))
        self.assertEqual(_names(reloaded), _names(model))


class BuildCNNTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_default_cnn_shapes_and_params(self):
        model = build_cnn(CNNSpec(), (28, 28), 10)
        self.assertEqual(model.output.shape, (None, 10))
        self.assertEqual(model.get_layer("reshape").output.shape, (None, 28, 28, 1))
        self.assertEqual(model.get_layer("flatten").output.shape, (None, 7 * 7 * 64))
        convs = (3 * 3 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64)
        self.assertEqual(model.count_params(), convs + (7 * 7 * 64 * 128 + 128) + 1290)
        self.assertEqual(model.predict(_images(), verbose=0).shape, (4, 10))

    def test_color_input_needs_no_reshape(self):
        model = build_cnn(CNNSpec(filters=(4,)), (16, 16, 3), 2)
        self.assertNotIn("reshape", _names(model))
        self.assertEqual(model.get_layer("conv_0_0").kernel.shape, (3, 3, 3, 4))

    def test_bad_input_shape(self):
        msg = r"needs input_shape \(H, W\) or \(H, W, C\), got \(784,\)"
        with self.assertRaisesRegex(ValueError, msg):
            build_cnn(CNNSpec(), (784,), 10)

    @parameterized.parameters(3, 5, 7)
    def test_kernel_size(self, k):
        model = build_cnn(CNNSpec(filters=(4, 8), kernel_size=k), (16, 16), 2)
        self.assertEqual(model.get_layer("conv_0_0").kernel.shape, (k, k, 1, 4))
        self.assertEqual(model.get_layer("conv_1_0").kernel.shape, (k, k, 4, 8))
        self.assertEqual(model.get_layer("conv_0_0").padding, "same")

    def test_valid_padding_is_the_keras_io_convnet_geometry(self):
        spec = CNNSpec(filters=(32, 64), padding="valid", dense_units=())
        model = build_cnn(spec, (28, 28), 10)
        self.assertEqual(model.get_layer("conv_0_0").padding, "valid")
        self.assertEqual(model.get_layer("conv_0_0").output.shape, (None, 26, 26, 32))
        self.assertEqual(model.get_layer("conv_1_0").output.shape, (None, 11, 11, 64))
        self.assertEqual(model.get_layer("flatten").output.shape, (None, 5 * 5 * 64))
        self.assertEqual(model.count_params(), 34_826)  # keras.io's published count

    def test_valid_padding_that_shrinks_the_maps_away(self):
        with self.assertRaisesRegex(ValueError, r"^Unknown padding 'full'\. Valid: same, valid\."):
            CNNSpec(padding="full")
        with self.assertRaisesRegex(ValueError, r"padding='valid' leaves 1x1 maps before "
                                    r"conv_3_0, smaller than its 3x3 kernel"):
            build_cnn(CNNSpec(filters=(4, 4, 4, 4), padding="valid"), (28, 28), 2)
        with self.assertRaisesRegex(ValueError, r"leaves 1x1 maps before pool_0"):
            build_cnn(CNNSpec(filters=(4,), padding="valid"), (3, 3), 2)
        self.assertEqual(build_cnn(CNNSpec(filters=(4, 4, 4), padding="valid"), (28, 28), 2)
                         .get_layer("flatten").output.shape, (None, 4))

    @parameterized.named_parameters(
        ("max", "max", keras.layers.MaxPooling2D, 4),
        ("avg", "avg", keras.layers.AveragePooling2D, 4),
        ("none", "none", None, 16),
    )
    def test_pooling(self, pooling, cls, side):
        model = build_cnn(CNNSpec(filters=(4, 8), pooling=pooling), (16, 16), 2)
        pools = [layer for layer in model.layers if layer.name.startswith("pool_")]
        if cls is None:
            self.assertEqual(pools, [])
        else:
            self.assertEqual([p.name for p in pools], ["pool_0", "pool_1"])
            self.assertTrue(all(type(p) is cls for p in pools))
        self.assertEqual(model.get_layer("flatten").output.shape, (None, side * side * 8))

    def test_convs_per_block_and_names(self):
        model = build_cnn(CNNSpec(filters=(4, 8), convs_per_block=2, dense_units=()), (8, 8), 2)
        convs = [n for n in _names(model) if n.startswith("conv_") and "act" not in n]
        self.assertEqual(convs, ["conv_0_0", "conv_0_1", "conv_1_0", "conv_1_1"])
        self.assertEqual(model.get_layer("conv_0_1").kernel.shape, (3, 3, 4, 4))

    def test_batch_norm_from(self):
        spec = CNNSpec(filters=(4, 8, 8), batch_norm="before", batch_norm_from=1, dense_units=(6,))
        model = build_cnn(spec, (16, 16), 2)
        names = _names(model)
        self.assertNotIn("conv_bn_0_0", names)
        self.assertIn("conv_bn_1_0", names)
        self.assertIn("conv_bn_2_0", names)
        self.assertIn("bn_0", names)  # dense layers get BN whenever batch_norm != none
        self.assertTrue(model.get_layer("conv_0_0").use_bias)
        self.assertFalse(model.get_layer("conv_1_0").use_bias)
        i = names.index("conv_1_0")
        self.assertEqual(names[i : i + 3], ["conv_1_0", "conv_bn_1_0", "conv_act_1_0"])

    def test_batch_norm_after_in_cnn(self):
        model = build_cnn(CNNSpec(filters=(4,), batch_norm="after"), (8, 8), 2)
        names = _names(model)
        i = names.index("conv_0_0")
        self.assertEqual(names[i : i + 3], ["conv_0_0", "conv_act_0_0", "conv_bn_0_0"])
        self.assertTrue(model.get_layer("conv_0_0").use_bias)

    def test_global_pooling(self):
        model = build_cnn(CNNSpec(filters=(4, 8), global_pooling=True, dense_units=()), (16, 16), 3)
        self.assertIsInstance(model.get_layer("global_pool"), keras.layers.GlobalAveragePooling2D)
        self.assertNotIn("flatten", _names(model))
        self.assertEqual(model.get_layer("output").kernel.shape, (8, 3))

    def test_augmentation_layers_only_act_in_training(self):
        augs = ("flip", "rotation", "zoom", "contrast", "translation")
        spec = CNNSpec(filters=(4,), augmentation=augs, dense_units=(8,))
        model = build_cnn(spec, (16, 16), 3)
        self.assertEqual(_names(model)[2:7], [f"aug_{a}" for a in augs])
        x = _images(8, (16, 16))
        train_a = model(x, training=True).numpy()
        train_b = model(x, training=True).numpy()
        infer = model(x, training=False).numpy()
        self.assertNotAllClose(train_a, infer)
        self.assertNotAllClose(train_a, train_b)
        self.assertAllClose(model(x, training=False), infer)
        self.assertAllClose(model.predict(x, verbose=0), infer)
        plain = keras.Model(model.input, model.get_layer("aug_translation").output)
        self.assertAllClose(plain(x, training=False)[..., 0], x)  # identity at inference

    def test_dropout_only_in_the_dense_head(self):
        spec = CNNSpec(filters=(4,), dense_units=(8, 6), dropout_rate=0.3, dropout_kind="mc")
        model = build_cnn(spec, (8, 8), 2)
        dropouts = [n for n, c in zip(_names(model), _classes(model)) if "Dropout" in c]
        self.assertEqual(dropouts, ["dropout_0", "dropout_1"])
        self.assertLess(_names(model).index("flatten"), _names(model).index("dropout_0"))
        head = build_cnn(CNNSpec(filters=(4,), dense_units=(), dropout_rate=0.3), (8, 8), 2)
        self.assertEqual(_names(head)[-3:], ["flatten", "dropout_head", "output"])

    def test_normalization_input_per_channel(self):
        x = np.random.default_rng(0).normal(3.0, 2.0, (50, 8, 8, 3)).astype("float32")
        x[..., 1] += 10
        spec = CNNSpec(filters=(4,), input_norm="normalization")
        model = build_cnn(spec, (8, 8, 3), 2, adapt_data=x)
        z = keras.Model(model.input, model.get_layer("input_normalization").output)(x).numpy()
        self.assertAllClose(z.mean(axis=(0, 1, 2)), np.zeros(3), atol=1e-4)
        self.assertAllClose(z.std(axis=(0, 1, 2)), np.ones(3), atol=1e-3)
        with self.assertRaisesRegex(ValueError, r"needs adapt_data"):
            build_cnn(spec, (8, 8, 3), 2)

    def test_count_params_matches_keras(self):
        spec = CNNSpec(filters=(4, 8), batch_norm="after", dense_units=(8,))
        model = build_cnn(spec, (16, 16), 2)
        counts = count_params(model)
        self.assertEqual(counts["total"], model.count_params())
        # BN moving mean and variance: 2 x (4 + 8) conv channels + 2 x 8 dense units.
        self.assertEqual(counts["non_trainable"], 2 * (4 + 8) + 2 * 8)

    def test_mixed_precision_keeps_the_probabilities_float32(self):
        previous = keras.config.dtype_policy().name
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            model = build_cnn(CNNSpec(filters=(4,), dense_units=(8,)), (16, 16), 3)
            probs = model(np.random.default_rng(0).random((2, 16, 16), dtype="float32"))
        finally:
            keras.mixed_precision.set_global_policy(previous)
        self.assertEqual(model.get_layer("conv_0_0").compute_dtype, "bfloat16")
        self.assertEqual(model.get_layer("output").compute_dtype, "float32")
        self.assertEqual(probs.dtype, "float32")
        self.assertAllClose(np.sum(probs, axis=-1), [1.0, 1.0], atol=1e-6)
        float_model = build_cnn(CNNSpec(filters=(4,)), (16, 16), 3)
        self.assertEqual(float_model.get_layer("output").compute_dtype, "float32")
