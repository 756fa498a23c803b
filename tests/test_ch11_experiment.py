"""ch11._experiment / _config / _text: the shared Config base, CLI, compile and report text."""

import contextlib
import dataclasses
import importlib
import io
import warnings
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from ch11 import _experiment as ex
from ch11 import run_all
from ch11._config import parse_variant, parse_variants
from ch11._text import inputs_text, mnist_text, quick_note
from recipes.cli import run_cli
from recipes.losses import make_loss

# Every experiment's Config fields, in order: the order of its --help and config.json.
_FISH = ("seed quick train_dir val_dir test_dir data_dir test_from test_split validation_split "
         "image_size")  # ch11._fish_config.FishDataConfig: the same in every fish experiment
FIELDS = {
    "gradients": "seed quick seeds depth units variants input_norm probe_size epochs optimizer "
                 "learning_rate batch_size out_dir",
    "initialization": "seed quick seeds depth units variants input_norm epochs optimizer "
                      "learning_rate batch_size out_dir",
    "activations": "seed quick seeds activations depth units input_norm epochs optimizer "
                   "learning_rate batch_size probe_size demo_activations demo_optimizer "
                   "demo_learning_rate demo_epochs demo_train out_dir",
    "selu": "seed quick seeds depth units epochs optimizer learning_rate batch_size probe_size "
            "investigate investigate_train trace_every out_dir",
    "batch_norm": "seed quick seeds mlp_depth mlp_units activation mlp_epochs cnn_epochs optimizer "
                  "learning_rates batch_size small_batch_size small_batch_train precision out_dir",
    "clipping": "seed quick seeds depth units activation optimizer learning_rate clipvalue "
                "clipnorm global_clipnorm epochs batch_size monitor_batch monitor_every out_dir",
    "transfer": "seed quick seeds classes_b n_train_b hidden_units optimizer learning_rate "
                "epochs_a epochs_b frozen_epochs fine_tune_epochs fine_tune_lr_factor "
                "batch_size out_dir",
    "optimizers": "seed quick seeds optimizers hidden_units activation epochs learning_rate "
                  "batch_size out_dir",
    "schedules": "seed quick seeds schedules optimizer learning_rate epochs cnn_schedules "
                 "cnn_max_lr cnn_epochs batch_size finder_steps target_accuracy precision "
                 "out_dir",
    "regularization": "seed quick seeds train_size hidden_units epochs optimizer learning_rate l2 "
                      "dropout_rate alpha_dropout_rate max_norm mc_samples batch_size out_dir",
    "cnn_hparams": "seed quick seeds kernel_sizes poolings optimizers filters dense_units "
                   "train_size max_epochs patience batch_size precision out_dir",
    "gradient_descent": "seed quick seeds batch_sizes epochs sgd_train hidden_units optimizer "
                        "base_learning_rate lr_scaling out_dir",
    "losses": "seed quick seeds hidden_units epochs optimizer learning_rate batch_size "
              "positive_digit margins out_dir",
    "imbalance": "seed quick seeds digit keep_fraction treatments focal_gamma hidden_units epochs "
                 "optimizer learning_rate batch_size out_dir",
    "residual": "seed quick seeds depth units activations batch_norms probe_size epochs optimizer "
                "learning_rate batch_size out_dir",
    "fish": f"{_FISH} batch_size cnn_epochs patience learning_rate optimizer augmentation "
            "precision imbalance compare_imbalance backbone weights width frozen_epochs "
            "fine_tune_epochs saliency_per_class out_dir",
    "fish_imbalance": f"{_FISH} seeds remedies epochs patience batch_size learning_rate "
                      "optimizer precision out_dir",
    "fish_capacity": f"{_FISH} per_class dense_units filters seeds epochs batch_size "
                     "learning_rate optimizer dropout_rate l2 out_dir",
    "fish_transfer": f"{_FISH} b_classes b_per_class seeds a_epochs a_learning_rate b_epochs "
                     "frozen_epochs fine_tune_epochs b_learning_rate batch_size optimizer "
                     "weights out_dir",
}


@dataclass(frozen=True)
class _Tiny(ex.ExperimentConfig):
    """A Config as the experiments write them."""

    quick: bool = ex.option(False, "another help text")
    epochs: int = ex.option(2, "epochs")
    rate: float | None = ex.option(0.1, "rate")
    sizes: tuple[int, ...] = ex.option((3,), "sizes")
    kind: str = ex.option("a", "kind", ("a", "b"))
    out_dir: str = ex.out_dir_option()

    def __post_init__(self) -> None:
        self._at_least(1, "epochs")
        if self.rate is not None:
            self._positive("rate")
        self._positive_sizes("sizes")


def _main_error(name: str, argv: list[str]) -> tuple[int, str]:
    """An experiment's CLI on bad arguments: (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = importlib.import_module(f"ch11.{name}").main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, err.getvalue()


def _fake_run(config):
    _fake_run.seen.append(config)


_fake_run.seen = []


class ExperimentConfigTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.named_parameters(*((name, name, fields) for name, fields in FIELDS.items()))
    def test_every_config_keeps_its_fields_in_order(self, name, fields):
        cls = importlib.import_module(f"ch11.{name}").Config
        self.assertTrue(issubclass(cls, ex.ExperimentConfig))
        self.assertEqual([f.name for f in dataclasses.fields(cls)], fields.split())
        self.assertTrue(cls.__dataclass_params__.frozen)
        self.assertEqual(cls().seed, 42)
        self.assertFalse(cls().quick)
        self.assertEqual(cls().out_dir, "runs")

    def test_fields_and_recipes_cover_the_same_experiments(self):
        self.assertCountEqual(FIELDS, run_all.RECIPES.values())

    def test_a_redeclared_base_field_keeps_its_place_and_takes_the_new_help(self):
        fields = dataclasses.fields(_Tiny)
        self.assertEqual([f.name for f in fields],
                         ["seed", "quick", "epochs", "rate", "sizes", "kind", "out_dir"])
        self.assertEqual(fields[0].metadata["help"], "seed, re-applied before each variant")
        self.assertEqual(fields[1].metadata["help"], "another help text")

    def test_option_metadata(self):
        self.assertEqual(dict(ex.option(3, "h").metadata), {"help": "h"})
        self.assertEqual(dict(ex.option(3, "h", ("a", "b")).metadata),
                         {"help": "h", "choices": ("a", "b")})
        self.assertEqual(ex.out_dir_option().default, "runs")
        norm = ex.input_norm_option("SELU needs it")
        self.assertEqual(norm.default, "normalization")
        self.assertEqual(norm.metadata["choices"], ("normalization", "none"))
        self.assertEqual(norm.metadata["help"],
                         "inputs of every variant: standardized by a Normalization layer "
                         "adapted on the training set (SELU needs it) or pixels in [0, 1]")
        self.assertIn("adamw", ex.optimizer_option("sgd", "h").metadata["choices"])

    @parameterized.named_parameters(
        ("below_minimum", {"epochs": 0}, r"^epochs must be >= 1, got 0\.$"),
        ("zero_rate", {"rate": 0.0}, r"^rate must be > 0, got 0\.0\.$"),
        ("nan_rate", {"rate": float("nan")}, r"^rate must be a finite number > 0, got nan\.$"),
        ("inf_rate", {"rate": float("inf")}, r"^rate must be a finite number > 0, got inf\.$"),
        ("empty_sizes", {"sizes": ()},
         r"^sizes must be a non-empty sequence of integers >= 1, got \(\)\.$"),
        ("zero_size", {"sizes": (3, 0)}, r"^sizes must be integers >= 1, got \(3, 0\)\.$"),
    )
    def test_checks_quote_the_bad_value(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            _Tiny(**kwargs)

    def test_parse_variant(self):
        self.assertEqual(parse_variant("relu:he_normal"), ("relu", "he_normal"))
        with self.assertRaisesRegex(ValueError, "must look like 'activation:initializer'"):
            parse_variant("relu")
        with self.assertRaisesRegex(ValueError, "Unknown activation 'relux' in variant "
                                                "'relux:he_normal'. Valid: relu, "):
            parse_variant("relux:he_normal")
        with self.assertRaisesRegex(ValueError, "Unknown initializer 'hex' .* Valid: "):
            parse_variant("relu:hex")

    def test_parse_variants(self):
        self.assertEqual(parse_variants(("sigmoid:glorot_uniform", "relu:he_normal")),
                         [("sigmoid", "glorot_uniform"), ("relu", "he_normal")])
        with self.assertRaisesRegex(ValueError, r"^variants must name at least one "
                                                r"'activation:initializer' pair\.$"):
            parse_variants(())
        with self.assertRaisesRegex(ValueError, "Unknown activation 'relux' in variant"):
            parse_variants(("relu:he_normal", "relux:he_normal"))

    def test_run_cli_parses_every_field_and_runs(self):
        _fake_run.seen.clear()
        code = run_cli(_Tiny, _fake_run, ["--epochs", "3", "--sizes", "4", "5", "--quick",
                                          "--rate", "none", "--kind", "b", "--seed", "7"],
                       prog="python -m tiny", description="the description")
        self.assertEqual(code, 0)
        self.assertEqual(_fake_run.seen, [_Tiny(seed=7, quick=True, epochs=3, rate=None,
                                                sizes=(4, 5), kind="b")])

    def test_run_cli_help_lists_fields_in_order_and_bad_values_fail(self):
        def main(argv):
            return run_cli(_Tiny, _fake_run, argv, prog="python -m tiny",
                           description="the description")

        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        text = out.getvalue()
        flags = ["--seed", "--quick", "--epochs", "--rate", "--sizes", "--kind", "--out-dir"]
        options = text[text.index("options:"):]
        positions = [options.index(f"\n  {flag}") for flag in flags]
        self.assertEqual(positions, sorted(positions))
        self.assertIn("another help text (default: False)", text)
        self.assertIn("sizes (default: 3)", text)
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            main(["--epochs", "0"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("epochs must be >= 1, got 0.", err.getvalue())
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            main(["--kind", "c"])


class CompileAndDataTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_classifier_compile_defaults(self):
        kwargs = ex.classifier_compile("momentum", 1e-3)
        self.assertEqual(sorted(kwargs), ["loss", "metrics", "optimizer"])
        self.assertIsInstance(kwargs["optimizer"], keras.optimizers.SGD)
        self.assertAllClose(float(kwargs["optimizer"].momentum), 0.9)
        self.assertAllClose(float(kwargs["optimizer"].learning_rate), 1e-3)
        self.assertIsInstance(kwargs["loss"], type(make_loss("crossentropy")))
        self.assertEqual(kwargs["metrics"], ["accuracy"])
        # A fresh optimizer each call: compared variants never share one.
        self.assertIsNot(ex.classifier_compile("momentum", 1e-3)["optimizer"],
                         kwargs["optimizer"])

    @parameterized.named_parameters(("mse", "mse"), ("binary", "binary_crossentropy"))
    def test_classifier_compile_builds_recipes_losses_by_name(self, name):
        self.assertIsInstance(ex.classifier_compile("sgd", loss=name)["loss"],
                              type(make_loss(name)))

    def test_classifier_compile_passes_other_losses_and_options_through(self):
        kwargs = ex.classifier_compile("sgd", 0.05, loss="sparse_categorical_crossentropy",
                                       clipnorm=1.0)
        self.assertEqual(kwargs["loss"], "sparse_categorical_crossentropy")
        self.assertAllClose(kwargs["optimizer"].clipnorm, 1.0)
        self.assertAllClose(float(kwargs["optimizer"].learning_rate), 0.05)
        loss = keras.losses.SparseCategoricalCrossentropy()
        auc = keras.metrics.AUC(name="auc")
        kwargs = ex.classifier_compile("adam", loss=loss, metrics=["accuracy", auc])
        self.assertIs(kwargs["loss"], loss)
        self.assertEqual(kwargs["metrics"], ["accuracy", auc])
        self.assertAllClose(float(kwargs["optimizer"].learning_rate), 1e-3)  # Adam's default

    def test_classifier_compile_rejects_an_unknown_optimizer(self):
        with self.assertRaisesRegex(ValueError, r"Unknown optimizer 'sgdx'\. Valid: sgd, "):
            ex.classifier_compile("sgdx")

    def test_test_accuracy_in_closed_form(self):
        # Logits = x @ I: the prediction is the argmax of x; 3 of the 4 labels match it.
        model = keras.Sequential([keras.Input((3,)),
                                  keras.layers.Dense(3, use_bias=False, activation="softmax",
                                                     kernel_initializer="identity")])
        model.compile(**ex.classifier_compile("sgd", loss="sparse_categorical_crossentropy"))
        x = np.eye(3, dtype="float32")[[0, 1, 2, 2]]
        data = {"x_test": x, "y_test": np.array([0, 1, 2, 0])}
        self.assertAllClose(ex.test_accuracy(model, data), 0.75)

    def test_train_variant_feeds_its_shuffled_dataset_without_keras_warning(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(64, 4)).astype("float32")
        y = (x[:, 0] > 0).astype("int64")
        data = {"x_train": x, "y_train": y, "x_valid": x[:16], "y_valid": y[:16]}

        def build():
            return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, "softmax")])

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, first = ex.train_variant(build, ex.classifier_compile("sgd", 0.1), data,
                                        seed=3, epochs=2, batch_size=16, verbose=0)
        self.assertEmpty([str(w.message) for w in caught if "shuffle" in str(w.message)])
        _, again = ex.train_variant(build, ex.classifier_compile("sgd", 0.1), data, seed=3,
                                    epochs=2, batch_size=16, verbose=0)
        self.assertAllEqual(first.history["loss"], again.history["loss"])  # same seed, same run
        _, other = ex.train_variant(build, ex.classifier_compile("sgd", 0.1), data, seed=4,
                                    epochs=2, batch_size=16, verbose=0)
        self.assertNotAllClose(first.history["loss"], other.history["loss"])

    def test_train_variant_runs_many_steps_per_call_unless_a_callback_needs_each(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(200, 4)).astype("float32")
        y = (x[:, 0] > 0).astype("int64")
        data = {"x_train": x, "y_train": y, "x_valid": x[:16], "y_valid": y[:16]}
        steps = []
        per_step = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: steps.append(batch))

        def build():
            return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, "softmax")])

        fast, fast_history = ex.train_variant(build, ex.classifier_compile("sgd", 0.1), data,
                                              seed=3, epochs=2, batch_size=4, verbose=0)
        slow, slow_history = ex.train_variant(build, ex.classifier_compile("sgd", 0.1), data,
                                              seed=3, epochs=2, batch_size=4, verbose=0,
                                              callbacks=[per_step])
        self.assertEqual(fast.steps_per_execution, 64)
        self.assertEqual(slow.steps_per_execution, 1)
        self.assertEqual(steps, list(range(50)) * 2)  # the callback saw every step
        for a, b in zip(fast.get_weights(), slow.get_weights()):
            self.assertAllEqual(a, b)  # and the training is the same
        self.assertAllEqual(fast_history.history["val_loss"], slow_history.history["val_loss"])
        mine, _ = ex.train_variant(build, {**ex.classifier_compile("sgd", 0.1),
                                           "steps_per_execution": 7}, data,
                                   seed=3, epochs=1, batch_size=4, verbose=0)
        self.assertEqual(mine.steps_per_execution, 7)

    def test_train_variant_builds_in_its_precision_and_leaves_float32(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(64, 4)).astype("float32")
        y = (x[:, 0] > 0).astype("int64")
        data = {"x_train": x, "y_train": y, "x_valid": x[:16], "y_valid": y[:16]}

        def build():
            return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu"),
                                     keras.layers.Dense(2, "softmax", dtype="float32")])

        keras.config.set_dtype_policy("mixed_bfloat16")  # a leftover global policy
        self.addCleanup(keras.config.set_dtype_policy, "float32")
        model, history = ex.train_variant(build, ex.classifier_compile("sgd", 0.1), data,
                                          seed=3, epochs=1, batch_size=16, verbose=0)
        self.assertEqual(model.layers[0].dtype_policy.name, "float32")  # the default
        model, history = ex.train_variant(build, ex.classifier_compile("sgd", 0.1), data,
                                          seed=3, epochs=1, batch_size=16, verbose=0,
                                          precision="mixed_bfloat16")
        self.assertEqual(model.layers[0].dtype_policy.compute_dtype, "bfloat16")
        self.assertEqual(model.layers[0].kernel.dtype, "float32")  # mixed: float32 weights
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        self.assertEqual(keras.config.dtype_policy().name, "float32")  # nothing leaks out

    def test_cnn_precision_follows_the_cpu_and_explains_auto(self):
        from recipes.hardware import choose_precision

        self.assertEqual(ex.cnn_precision("float32"), ("float32", "float32 as requested"))
        policy, why = ex.cnn_precision("auto")
        self.assertEqual(policy, choose_precision("auto")[0])
        self.assertStartsWith(why, "auto: ")
        self.assertEqual(ex.MLP_PRECISION[0], "float32")

    @parameterized.parameters("cnn_hparams", "schedules", "batch_norm")
    def test_a_bad_precision_exits_2_naming_the_choices(self, name):
        code, err = _main_error(name, ["--precision", "bfloat8"])
        self.assertEqual(code, 2)
        self.assertIn("error: argument --precision: invalid choice: 'bfloat8' (choose from "
                      "'auto', 'float32', 'mixed_bfloat16')", err)
        config = importlib.import_module(f"ch11.{name}").Config
        with self.assertRaisesRegex(ValueError, "Unknown precision 'bfloat8'. Valid: auto, "
                                                "float32, mixed_bfloat16."):
            config(precision="bfloat8")  # from Python, the Config checks it
        self.assertEqual(config().precision, "auto")

    def test_train_subset_cuts_only_the_training_set(self):
        data = {k: np.arange(10) for k in ("x_train", "y_train", "x_valid", "y_valid",
                                           "x_test", "y_test")}
        sub = ex.train_subset(data, 3)
        self.assertAllEqual(sub["x_train"], [0, 1, 2])
        self.assertAllEqual(sub["y_train"], [0, 1, 2])
        for key in ("x_valid", "y_valid", "x_test", "y_test"):
            self.assertIs(sub[key], data[key])
        self.assertLen(data["x_train"], 10)  # the input is left as it was


class ReportTextTest(tf.test.TestCase):
    def test_sentences(self):
        self.assertEqual(mnist_text(False),
                         "MNIST with 5,000 training images held out for validation")
        self.assertEqual(mnist_text(True, " (pixels in [0, 1])"),
                         "a slice of MNIST (pixels in [0, 1]) with 5,000 training images held "
                         "out for validation")
        self.assertEqual(inputs_text("normalization"),
                         "standardized by a Normalization layer adapted on the training set")
        self.assertEqual(inputs_text("none"), "pixels scaled to [0, 1]")
        self.assertEqual(quick_note(),
                         "Quick mode: a small slice and one epoch; the numbers only smoke-test.")
        self.assertEqual(quick_note("10 layers"),
                         "Quick mode: 10 layers; the numbers only smoke-test.")
