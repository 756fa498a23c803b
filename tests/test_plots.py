"""recipes.plots: every function returns a Figure, draws the given numbers, writes a PNG."""

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from absl.testing import parameterized
from matplotlib.figure import Figure

from recipes import plots
from recipes.metrics import confusion_matrix, roc_auc_per_class, roc_curves
from recipes.runs import save_figure, write_history
from recipes.transfer import fine_tune

GRADS = pd.DataFrame({"layer": ["hidden_0", "hidden_1", "output"], "depth": [0, 1, 2],
                      "grad_norm": [1e-6, 1e-3, 0.5], "ratio": [1e-7, 1e-4, 0.1]})
Y = np.array([0, 1, 2, 2, 1, 0, 1, 2])
SCORES = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4],
                   [0.1, 0.8, 0.1], [0.4, 0.4, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])


def _model():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, name="hidden_0"),
                             keras.layers.Dense(3, activation="softmax", name="output")])


def _calls():
    rng = np.random.default_rng(0)
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.6, 0.8],
               "val_accuracy": [0.55, 0.7], "epoch_time": [1.0, 1.2]}
    images = rng.random((4, 8, 8))
    return {
        "learning_curves": lambda: plots.learning_curves({"a": history}),
        "layer_profile": lambda: plots.layer_profile(GRADS.assign(variant="v"), "grad_norm"),
        "schedule_curves": lambda: plots.schedule_curves(
            {"exp": keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)}, 20),
        "lr_finder_plot": lambda: plots.lr_finder_plot(pd.DataFrame({
            "learning_rate": np.geomspace(1e-4, 1, 20), "loss": np.linspace(2, 1, 20),
            "smoothed_loss": np.linspace(2, 1, 20)}), suggestion=1e-2),
        "gradient_flow": lambda: plots.gradient_flow(GRADS),
        "activation_histograms": lambda: plots.activation_histograms(
            {"act_0": np.maximum(rng.normal(size=(50, 10)), 0), "act_1": rng.random((50, 5))}),
        "weight_histograms": lambda: plots.weight_histograms(_model()),
        "saliency_grid": lambda: plots.saliency_grid(images, images ** 2, labels=list("abcd")),
        "confusion_heatmap": lambda: plots.confusion_heatmap(confusion_matrix(Y, SCORES)),
        "roc_plot": lambda: plots.roc_plot(roc_curves(Y, SCORES), roc_auc_per_class(Y, SCORES)),
        "spread_bars": lambda: plots.spread_bars(SEEDS, "remedy", ["auc", "recall"]),
        "capacity_curves": lambda: plots.capacity_curves(SIZES),
        "image_rows": lambda: plots.image_rows({"a": (images, list("abcd")),
                                                "b": (images[:2], ["e", "f"])}),
    }


# one row per seed and variant (spread_bars), per size, regime and seed (capacity_curves)
SEEDS = pd.DataFrame({"remedy": ["none"] * 3 + ["weights"] * 3,
                      "auc": [0.7, 0.8, 0.9, 0.85, 0.9, 0.95], "recall": [0.0, 0.2, 0.4] * 2})
SIZES = pd.DataFrame({"params": [100, 100, 1000, 1000] * 2,
                      "regime": ["plain"] * 4 + ["regularized"] * 4,
                      "train_acc": [0.8, 0.9, 1.0, 1.0, 0.7, 0.8, 0.85, 0.95],
                      "val_acc": [0.7, 0.8, 0.6, 0.7, 0.65, 0.75, 0.8, 0.8]})


class PlotsTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    @parameterized.named_parameters((name, name) for name in _calls())
    def test_returns_a_figure_and_writes_a_png(self, name):
        fig = _calls()[name]()
        self.assertIsInstance(fig, Figure)
        path = save_figure(fig, Path(self.get_temp_dir()) / f"{name}.png")
        data = path.read_bytes()
        self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n")
        self.assertGreater(len(data), 5000)

    def test_every_public_plot_is_tested(self):
        self.assertEqual(sorted(plots.__all__), sorted(_calls()))

    def test_spread_bars_draw_the_mean_the_range_and_every_seed(self):
        ax = plots.spread_bars(SEEDS, "remedy", ["auc", "recall"]).axes[0]
        heights = [p.get_height() for p in ax.patches]
        self.assertAllClose(heights, [0.8, 0.2, 0.9, 0.2])  # none: auc, recall; weights: ...
        dots = [line.get_ydata() for line in ax.lines if line.get_marker() == "."]
        self.assertAllClose(dots[0], [0.7, 0.8, 0.9])
        self.assertEqual([t.get_text() for t in ax.get_xticklabels()], ["auc", "recall"])
        self.assertEqual([t.get_text() for t in ax.get_legend().get_texts()],
                         ["none", "weights"])

    def test_capacity_curves_average_seeds_and_draw_the_gap(self):
        left, right = plots.capacity_curves(SIZES).axes
        self.assertEqual((left.get_xscale(), right.get_xscale()), ("log", "log"))
        train, val = left.lines[0], left.lines[1]
        self.assertAllClose(train.get_xdata(), [100, 1000])
        self.assertAllClose(train.get_ydata(), [0.85, 1.0])
        self.assertAllClose(val.get_ydata(), [0.75, 0.65])
        self.assertAllClose(right.lines[0].get_ydata(), [0.1, 0.35])  # the plain gap grows

    def test_gradient_flow_draws_the_norms_on_a_log_scale(self):
        fig = plots.gradient_flow({"a": GRADS, "b": GRADS.assign(grad_norm=GRADS.grad_norm * 10)})
        ax = fig.axes[0]
        self.assertEqual(ax.get_yscale(), "log")
        self.assertAllClose(ax.lines[0].get_ydata(), GRADS["grad_norm"])
        self.assertAllClose(ax.lines[1].get_ydata(), GRADS["grad_norm"] * 10)
        self.assertEqual([t.get_text() for t in ax.get_xticklabels()], list(GRADS["layer"]))
        ratio = plots.gradient_flow(GRADS, value="ratio").axes[0]
        self.assertAllClose(ratio.lines[0].get_ydata(), GRADS["ratio"])

    def test_histograms_count_every_finite_value(self):
        values = np.r_[np.zeros(30), np.arange(1, 71), np.nan]
        fig = plots.activation_histograms({"act_0": values})
        ax = fig.axes[0]
        self.assertEqual(sum(p.get_height() for p in ax.patches), 100)
        self.assertIn("zeros 30%, 1 NaN/Inf", ax.get_title())
        model = _model()
        kernels = plots.weight_histograms(model)
        self.assertEqual(sum(p.get_height() for p in kernels.axes[0].patches), 24)
        self.assertIn("hidden_0", kernels.axes[0].get_title())
        with self.assertRaisesRegex(ValueError, "Nothing to draw: got no layer"):
            plots.activation_histograms({})

    def test_confusion_heatmap_writes_the_counts(self):
        fig = plots.confusion_heatmap(confusion_matrix(Y, SCORES, ["a", "b", "c"]))
        texts = sorted(t.get_text() for t in fig.axes[0].texts)
        counts = confusion_matrix(Y, SCORES).to_numpy()
        self.assertEqual(texts, sorted(str(c) for c in counts.ravel() if c))

    def test_roc_plot_labels_carry_the_auc(self):
        aucs = roc_auc_per_class(Y, SCORES)
        fig = plots.roc_plot(roc_curves(Y, SCORES), aucs)
        labels = [line.get_label() for line in fig.axes[0].lines]
        self.assertEqual(labels[0], f"0 (AUC {aucs['auc'][0]:.3f})")
        self.assertEqual(labels[-1], "chance")

    def test_saliency_grid_shapes(self):
        images = np.random.default_rng(0).random((3, 5, 5, 3))
        fig = plots.saliency_grid(images, images, max_images=2)
        self.assertLen(fig.axes, 4)
        flat = plots.saliency_grid(np.ones((2, 16)), np.ones((2, 16)))
        self.assertEqual(flat.axes[0].images[0].get_array().shape, (4, 4))
        with self.assertRaisesRegex(ValueError, r"images \(2, 4\) and maps \(2, 5\) differ"):
            plots.saliency_grid(np.ones((2, 4)), np.ones((2, 5)))

    def test_image_rows_one_row_per_entry_with_captions(self):
        rgb = np.random.default_rng(0).integers(0, 256, (3, 6, 6, 3), dtype=np.uint8)
        fig = plots.image_rows({"rare": (rgb, ["p=0.9", "p=0.5", "p=0.1"]),
                                "others": (rgb[:1], ["x"]), "empty": (rgb[:0], [])},
                               max_images=2)
        self.assertLen(fig.axes, 6)  # 3 rows x 2 columns
        shown = [ax for ax in fig.axes if ax.images]
        self.assertEqual([ax.get_title() for ax in shown], ["p=0.9", "p=0.5", "x"])
        first = shown[0].images[0].get_array()
        self.assertEqual(first.shape, (6, 6, 3))
        self.assertAllClose([first.min(), first.max()], [0.0, 1.0])  # stretched per image
        self.assertEqual([sub.get_suptitle() for sub in fig.subfigs],
                         ["rare", "others", "empty: none"])
        with self.assertRaisesRegex(ValueError, r"Row 'a' has 3 images and 1 captions"):
            plots.image_rows({"a": (rgb, ["one"])})
        with self.assertRaisesRegex(ValueError, "at least one row"):
            plots.image_rows({})


def _lines(fig, panel=0):
    """Label -> (x, y) of every line in one panel."""
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in fig.axes[panel].get_lines()}


class LearningCurvesTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_fine_tune_phase_two_is_drawn_after_phase_one(self):
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, name="base"),
                                  keras.layers.Dense(3, activation="softmax", name="head")])
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(16, 6)).astype("float32"), np.arange(16) % 3
        phases = fine_tune(model, (x, y), (x, y), base_layers=1, frozen_epochs=2,
                           fine_tune_epochs=3, verbose=0, batch_size=8)
        self.assertEqual(phases["phase2"].epoch, [2, 3, 4])  # Keras's own 0-based numbers
        fig = plots.learning_curves(phases)
        lines = _lines(fig)
        self.assertEqual(lines["phase1 (train)"][0], [1, 2])
        self.assertEqual(lines["phase2 (train)"][0], [3, 4, 5])
        self.assertEqual(lines["phase2 (val)"][0], [3, 4, 5])
        self.assertAllClose(lines["phase2 (val)"][1], phases["phase2"].history["val_loss"])
        accuracy = _lines(fig, panel=1)
        self.assertAllClose(accuracy["phase1 (train)"][1], phases["phase1"].history["accuracy"])
        # The history CSV keeps the numbering, and so does the figure drawn from it.
        csv = pd.read_csv(write_history(self.get_temp_dir(), "phase2", phases["phase2"]))
        self.assertEqual(list(csv["epoch"]), [3, 4, 5])
        self.assertEqual(_lines(plots.learning_curves({"csv": csv}))["csv (train)"][0], [3, 4, 5])

    def test_plain_dicts_start_at_epoch_one_and_time_is_cumulative(self):
        history = {"loss": [1.0, 0.5, 0.25], "epoch_time": [1.0, 2.0, 0.5]}
        self.assertEqual(_lines(plots.learning_curves({"a": history}))["a (train)"],
                         ([1, 2, 3], [1.0, 0.5, 0.25]))
        fig = plots.learning_curves({"a": history}, metrics=("loss",), x="time")
        self.assertAllClose(_lines(fig)["a (train)"][0], [1.0, 3.0, 3.5])
        self.assertEqual(fig.axes[0].get_xlabel(), "seconds")
