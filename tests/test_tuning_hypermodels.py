"""Tests of tuning.hypermodels: every value of every choice builds, compiles, and shows."""

import math

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from recipes import names, specs
from recipes.regularization import MCDropout
from recipes.schedules import OneCycle
from tuning import fish as F
from tuning import hypermodels as H
from tuning import tuners
from tuning.data import TuningData
from tuning.names import MODEL_NAMES, TEST_SOURCES, TUNER_NAMES

INPUT = (8, 8)


def _hp(**values):
    hp = kt.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return hp


def _activation_name(layer):
    if isinstance(layer, keras.layers.LeakyReLU):
        return "leaky_relu"
    return layer.get_config()["activation"]


def _layer_names(model):
    return [layer.name for layer in model.layers]


class HyperModelTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)
        self.cnn = H.CNNHyperModel(INPUT, 3, seed=1, train_size=100, max_epochs=4)
        self.mlp = H.MLPHyperModel(INPUT, 3, seed=1, train_size=100, max_epochs=4)

    def test_default_space(self):
        hp = kt.HyperParameters()
        self.cnn.build(hp)
        names = [p.name for p in hp.space]
        self.assertEqual(names, [
            "conv_blocks", "filters_0", "filters_1", "filters_2", "kernel_size", "pooling",
            "activation", "initializer", "batch_norm", "dropout_rate", "l2", "optimizer",
            "momentum", "learning_rate", "schedule", "batch_size"])
        # Defaults: 2 blocks, so filters_2 and momentum (adam is not SGD) are inactive.
        self.assertEqual(hp.values["conv_blocks"], 2)
        self.assertNotIn("filters_2", hp.values)
        self.assertNotIn("momentum", hp.values)
        self.assertAllClose(hp.values["learning_rate"], 1e-3)
        space = {p.name: p for p in hp.space}
        self.assertEqual(tuple(space["kernel_size"].values), (3, 5, 7))
        self.assertEqual(tuple(space["pooling"].values), ("max", "avg"))
        self.assertEqual(space["learning_rate"].sampling, "log")
        self.assertEqual(space["momentum"].conditions[0].values, ["momentum", "nesterov"])

    def test_mlp_space_conditions(self):
        hp = kt.HyperParameters()
        self.mlp.build(hp)
        self.assertEqual([p.name for p in hp.space][:8], [
            "depth", "units", "activation", "initializer", "batch_norm", "dropout_rate",
            "dropout_kind", "l2"])
        self.assertNotIn("dropout_kind", hp.values)  # default rate 0: no dropout kind
        hp2 = _hp(dropout_rate=0.2)
        self.mlp.build(hp2)
        self.assertEqual(hp2.values["dropout_kind"], "standard")

    @parameterized.parameters(1, 2, 3)
    def test_conv_blocks_and_filters(self, blocks):
        for f in H.FILTERS:
            hp = _hp(conv_blocks=blocks, **{f"filters_{i}": f for i in range(blocks)})
            model = self.cnn.build(hp)
            convs = [la for la in model.layers if isinstance(la, keras.layers.Conv2D)]
            self.assertLen(convs, blocks)
            self.assertEqual([c.filters for c in convs], [f] * blocks)
            self.assertEqual(sorted(k for k in hp.values if k.startswith("filters_")),
                             [f"filters_{i}" for i in range(blocks)])

    def test_kernel_size(self):
        for k in H.KERNEL_SIZES:
            model = self.cnn.build(_hp(kernel_size=k))
            self.assertEqual(tuple(model.get_layer("conv_0_0").kernel.shape), (k, k, 1, 16))

    def test_pooling(self):
        expected = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}
        for pooling in H.POOLINGS:
            model = self.cnn.build(_hp(pooling=pooling))
            self.assertIsInstance(model.get_layer("pool_0"), expected[pooling])
            self.assertEqual(model.get_layer("pool_0").output.shape, (None, 4, 4, 16))

    @parameterized.parameters("cnn", "mlp")
    def test_activation(self, kind):
        hypermodel, layer = (self.cnn, "conv_act_0_0") if kind == "cnn" else (self.mlp, "act_0")
        choices = H.CNN_ACTIVATIONS if kind == "cnn" else H.MLP_ACTIVATIONS
        for activation in choices:
            model = hypermodel.build(_hp(activation=activation))
            # Keras 3 names swish by its other name, silu.
            self.assertEqual(_activation_name(model.get_layer(layer)),
                             {"swish": "silu"}.get(activation, activation))

    @parameterized.parameters("cnn", "mlp")
    def test_initializer(self, kind):
        hypermodel, layer = (self.cnn, "conv_0_0") if kind == "cnn" else (self.mlp, "hidden_0")
        expected = {"auto": keras.initializers.HeNormal, "he": keras.initializers.HeNormal,
                    "glorot": keras.initializers.GlorotNormal}
        for init in H.INITIALIZERS:
            model = hypermodel.build(_hp(activation="relu", initializer=init))
            self.assertIsInstance(model.get_layer(layer).kernel_initializer, expected[init])
        # auto follows the activation: LeCun for SELU.
        model = self.mlp.build(_hp(activation="selu", initializer="auto"))
        self.assertIsInstance(model.get_layer("hidden_0").kernel_initializer,
                              keras.initializers.LecunNormal)

    @parameterized.parameters(("cnn", "conv_0_0", "conv_bn_0_0", "conv_act_0_0"),
                              ("mlp", "hidden_0", "bn_0", "act_0"))
    def test_batch_norm(self, kind, core, bn, act):
        hypermodel = self.cnn if kind == "cnn" else self.mlp
        for placement in H.BATCH_NORMS:
            model = hypermodel.build(_hp(batch_norm=placement))
            names = _layer_names(model)
            if placement == "none":
                self.assertNotIn(bn, names)
                self.assertTrue(model.get_layer(core).use_bias)
                continue
            order = [names.index(core), names.index(bn), names.index(act)]
            if placement == "before":  # core without bias -> BN -> activation
                self.assertEqual(order, sorted(order))
                self.assertFalse(model.get_layer(core).use_bias)
            else:  # core -> activation -> BN
                self.assertLess(order[2], order[1])
                self.assertTrue(model.get_layer(core).use_bias)

    def test_cnn_dropout_and_l2(self):
        for rate in H.CNN_DROPOUTS:
            model = self.cnn.build(_hp(dropout_rate=rate))
            if rate == 0:
                self.assertNotIn("dropout_0", _layer_names(model))
            else:
                self.assertAllClose(model.get_layer("dropout_0").rate, rate)
        for l2 in H.L2S:
            reg = self.cnn.build(_hp(l2=l2)).get_layer("conv_0_0").kernel_regularizer
            if l2 == 0:
                self.assertIsNone(reg)
            else:
                self.assertAllClose(reg.l2, l2)

    def test_mlp_depth_units_dropout(self):
        for depth in range(1, H.MAX_DEPTH + 1):
            model = self.mlp.build(_hp(depth=depth))
            hidden = [n for n in _layer_names(model) if n.startswith("hidden_")]
            self.assertLen(hidden, depth)
        for units in H.MLP_UNITS:
            model = self.mlp.build(_hp(units=units))
            self.assertEqual(model.get_layer("hidden_0").units, units)
        kinds = {"standard": keras.layers.Dropout, "alpha": keras.layers.AlphaDropout,
                 "mc": MCDropout}
        for kind in H.DROPOUT_KINDS:
            model = self.mlp.build(_hp(dropout_rate=0.3, dropout_kind=kind))
            self.assertIs(type(model.get_layer("dropout_0")), kinds[kind])
            self.assertAllClose(model.get_layer("dropout_0").rate, 0.3)
        for rate in H.MLP_DROPOUTS:
            model = self.mlp.build(_hp(dropout_rate=rate))
            self.assertEqual("dropout_0" in _layer_names(model), rate > 0)

    def test_optimizers(self):
        expected = {"sgd": (keras.optimizers.SGD, 0.0), "momentum": (keras.optimizers.SGD, 0.9),
                    "nesterov": (keras.optimizers.SGD, 0.9), "rmsprop": keras.optimizers.RMSprop,
                    "adam": keras.optimizers.Adam, "nadam": keras.optimizers.Nadam,
                    "adamw": keras.optimizers.AdamW}
        for name in H.OPTIMIZERS:
            hp = _hp(optimizer=name, learning_rate=0.02)
            opt = self.mlp.build(hp).optimizer
            want = expected[name]
            if isinstance(want, tuple):
                self.assertIs(type(opt), want[0])
                self.assertAllClose(opt.momentum, want[1])
                self.assertEqual(opt.nesterov, name == "nesterov")
            else:
                self.assertIs(type(opt), want)
            self.assertAllClose(float(opt.learning_rate), 0.02)
            self.assertEqual("momentum" in hp.values, name in ("momentum", "nesterov"))
        for m in H.MOMENTUMS:
            opt = self.mlp.build(_hp(optimizer="nesterov", momentum=m)).optimizer
            self.assertAllClose(opt.momentum, m)

    def test_schedules_and_batch_sizes(self):
        for batch in H.BATCH_SIZES:
            steps = math.ceil(100 / batch) * 4  # train_size 100, max_epochs 4
            for name in H.SCHEDULES:
                opt = self.cnn.build(_hp(schedule=name, batch_size=batch,
                                         learning_rate=0.01)).optimizer
                lr = opt._learning_rate
                if name == "constant":
                    self.assertAllClose(float(opt.learning_rate), 0.01)
                elif name == "exponential":  # a tenth of the rate after all the steps
                    self.assertIsInstance(lr, keras.optimizers.schedules.ExponentialDecay)
                    self.assertAllClose(float(lr(steps)), 0.001, rtol=1e-5)
                else:
                    self.assertIsInstance(lr, OneCycle)
                    self.assertEqual(lr.total_steps, max(3, steps))
                    self.assertAllClose(lr.max_lr, 0.01)

    def test_fit_uses_batch_size_schedule_and_callbacks(self):
        x = np.random.default_rng(0).uniform(0, 255, (50, 8, 8)).astype("float32")
        y = np.arange(50) % 3
        hp = _hp(schedule="1cycle", batch_size=32, learning_rate=0.01, depth=1)
        model = self.mlp.build(hp)
        batches = []
        counter = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: batches.append(batch))
        history = self.mlp.fit(hp, model, x, y, epochs=3, initial_epoch=1,
                               callbacks=[counter], verbose=0)
        self.assertEqual(history.epoch, [1, 2])  # Hyperband's continued trial
        self.assertEqual(len(batches), 2 * 2)  # ceil(50 / 32) = 2 batches per epoch
        self.assertEqual(model.optimizer._learning_rate.total_steps, 4)
        self.assertEqual(int(model.optimizer.iterations), 4)

    def test_same_seed_same_weights_and_execution_offset(self):
        w1 = self.mlp.build(_hp()).get_layer("hidden_0").kernel.numpy()
        w2 = self.mlp.build(_hp()).get_layer("hidden_0").kernel.numpy()
        self.assertAllClose(w1, w2)
        self.mlp.execution = 1
        w3 = self.mlp.build(_hp()).get_layer("hidden_0").kernel.numpy()
        self.assertGreater(np.abs(w1 - w3).max(), 1e-3)

    def test_every_trial_is_built_in_the_hypermodels_precision(self):
        # Keras Tuner clears the session (and the global policy) before each build, so
        # the hypermodel sets the policy itself, then puts float32 back.
        self.assertEqual(self.cnn.precision, "float32")
        cnn = H.CNNHyperModel(INPUT, 3, seed=1, train_size=100, max_epochs=4,
                              precision="mixed_bfloat16")
        keras.backend.clear_session(free_memory=False)
        model = cnn.build(_hp())
        self.assertEqual(model.get_layer("conv_0_0").dtype_policy.compute_dtype, "bfloat16")
        self.assertEqual(model.get_layer("output").dtype_policy.name, "float32")
        self.assertEqual(keras.config.dtype_policy().name, "float32")
        self.assertEqual(self.cnn.build(_hp()).get_layer("conv_0_0").dtype_policy.name,
                         "float32")
        with self.assertRaisesRegex(ValueError, "float13"):
            H.CNNHyperModel(INPUT, 3, precision="float13")

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, r"Unknown model 'rnn'. Valid: cnn, mlp."):
            H.make_hypermodel("rnn", INPUT, 3)
        with self.assertRaisesRegex(ValueError, r"num_classes must be >= 2, got 1"):
            H.CNNHyperModel(INPUT, 1)
        hp = _hp()
        model = self.mlp.build(hp)
        data = tf.data.Dataset.from_tensor_slices((np.zeros((4, 8, 8)), np.zeros(4)))
        with self.assertRaisesRegex(ValueError, r"fit needs an array x .*got _TensorSliceDataset"):
            self.mlp.fit(hp, model, data)
        self.assertIsInstance(H.make_hypermodel("mlp", INPUT, 3), H.MLPHyperModel)


class NamesTest(tf.test.TestCase):
    def test_tables_are_keyed_by_the_light_names(self):
        # The --help choices (tuning.names, no TensorFlow) are exactly the tables' keys.
        self.assertEqual(tuple(H.MODELS), MODEL_NAMES)
        self.assertEqual(tuple(tuners.TUNERS), TUNER_NAMES)

    def test_search_choices_are_the_owners_names(self):
        self.assertEqual(H.BATCH_NORMS, specs.BATCH_NORM_CHOICES)
        self.assertEqual(H.DROPOUT_KINDS, specs.DROPOUT_KINDS)
        self.assertEqual(H.POOLINGS, ("max", "avg"))
        self.assertContainsSubset(H.POOLINGS, specs.POOLING_CHOICES)
        self.assertContainsSubset(H.CNN_ACTIVATIONS + H.MLP_ACTIVATIONS, names.ACTIVATION_NAMES)
        self.assertContainsSubset(set(H.INITIALIZERS) - {"auto"}, names.INITIALIZER_NAMES)
        self.assertContainsSubset(H.OPTIMIZERS, names.OPTIMIZER_NAMES)
        self.assertContainsSubset(H.SCHEDULES, names.SCHEDULE_NAMES)

    def test_fish_choices_are_the_owners_names(self):
        from recipes.data.fish import TEST_SOURCES as FISH_TEST_SOURCES

        self.assertEqual(TEST_SOURCES, FISH_TEST_SOURCES)
        self.assertEqual(sorted(F.BATCH_NORMS), sorted(specs.BATCH_NORM_CHOICES))
        self.assertContainsSubset(F.POOLINGS, specs.POOLING_CHOICES)
        self.assertContainsSubset(F.ACTIVATIONS, names.ACTIVATION_NAMES)
        self.assertContainsSubset(F.FishCNNHyperModel.optimizers, names.OPTIMIZER_NAMES)
        self.assertContainsSubset(F.FishCNNHyperModel.schedules, names.SCHEDULE_NAMES)
        for level in F.AUGMENTATION_LEVELS.values():
            self.assertContainsSubset(level, specs.AUGMENTATIONS)


def _photos(sizes=(16, 32), n=24, k=3):
    """The same tiny 'photos' at several sizes (uint8), as tuning.data.load_fish_sizes gives."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % k
    out = {}
    for size in sizes:
        x = rng.integers(0, 255, (n, size, size, 3)).astype("uint8")
        out[size] = TuningData(x, y, x[:9], y[:9], x[:6], y[:6],
                               class_names=["bass", "carp", "trout"])
    return out


class FishHyperModelTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)
        self.photos = _photos()
        self.fish = F.FishCNNHyperModel(self.photos, seed=1, max_epochs=2, rare_class=0)

    def test_space_and_the_hand_recipe_as_defaults(self):
        hp = kt.HyperParameters()
        model = self.fish.build(hp)
        self.assertEqual([p.name for p in hp.space], [
            "image_size", "conv_blocks", "base_filters", "kernel_size", "pooling",
            "activation", "batch_norm", "dropout_rate", "l2", "augmentation", "optimizer",
            "momentum", "learning_rate", "schedule", "batch_size"])
        # 16 pixels cannot take a 4th block: the choice is (3,) for this search.
        blocks = next(p for p in hp.space if p.name == "conv_blocks")
        self.assertEqual(list(blocks.values), [3])
        spec = self.fish.spec(hp.copy())
        self.assertEqual(spec, specs.CNNSpec(
            filters=(32, 64, 128), first_stride=2, dense_units=(), global_pooling=True,
            batch_norm="before", batch_norm_momentum=0.9, input_norm="rescale",
            augmentation=("flip", "rotation"), dropout_rate=0.3))
        self.assertEqual(model.input_shape, (None, 16, 16, 3))
        self.assertEqual(model.name, "fish_cnn")
        big = F.FishCNNHyperModel(_photos((32, 64)))
        hp = _hp(image_size=64)
        self.assertEqual(big.spec(hp).filters, (32, 64, 128, 256))  # the hand recipe's
        hp = _hp(image_size=64, conv_blocks=4, base_filters=16, kernel_size=5,
                 augmentation="strong")
        spec = big.spec(hp)
        self.assertEqual((spec.filters, spec.kernel_size, spec.augmentation),
                         ((16, 32, 64, 128), 5, ("flip", "rotation", "zoom", "translation")))
        self.assertEqual(big.build(hp).input_shape, (None, 64, 64, 3))

    def test_fit_takes_the_trials_image_size_and_logs_per_class_auc(self):
        hp = _hp(image_size=32, batch_size=8, schedule="1cycle", learning_rate=0.01)
        model = self.fish.build(hp)
        history = self.fish.fit(hp, model, self.photos, epochs=2, verbose=0)
        self.assertEqual(history.epoch, [0, 1])
        self.assertEqual(int(model.optimizer.iterations), 2 * 3)  # ceil(24 / 8) per epoch
        self.assertContainsSubset(
            ["val_accuracy", "val_loss", "val_auc_bass", "val_auc_carp", "val_auc_trout",
             "val_macro_auc", "val_rare_recall"], history.history)
        proba = model.predict(self.photos[32].x_val, verbose=0)
        y_val = self.photos[32].y_val
        self.assertAllClose(history.history["val_accuracy"][-1],
                            np.mean(proba.argmax(1) == y_val))
        self.assertAllClose(history.history["val_rare_recall"][-1],
                            np.mean(proba[y_val == 0].argmax(1) == 0))
        # The retraining: arrays of the trial's size, no validation data.
        history = self.fish.fit(hp, self.fish.build(hp), self.photos[32].x_train,
                                self.photos[32].y_train, epochs=1, verbose=0)
        self.assertNotIn("val_macro_auc", history.history)

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, r"needs the photos of at least one image size"):
            F.FishCNNHyperModel({})
        with self.assertRaisesRegex(ValueError, r"at least 16x16 .* got 8"):
            F.FishCNNHyperModel(_photos((8, 16)))
        photos = _photos((16,))
        photos[32] = _photos((32,), n=12)[32]
        with self.assertRaisesRegex(ValueError, r"Every image size must hold the same photos"):
            F.FishCNNHyperModel(photos)
