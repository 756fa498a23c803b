"""ch11.fish: the fish-photo workflow on generated image folders (and on fish-val if present)."""

import contextlib
import dataclasses
import io
import json
import os
from pathlib import Path
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized
from PIL import Image

from ch11 import fish, fish_predict
from recipes.builders import build_cnn
from recipes.regularization import MCDropout

COLOURS = {"blue": (20, 40, 230), "green": (30, 200, 40), "red": (220, 30, 30)}


def _make_folder(root: Path, sizes: dict, size: int = 24, seed: int = 0) -> Path:
    """One folder per class: noisy solid colours, a bright square in the rare class."""
    rng = np.random.default_rng(seed)
    for name, n in sizes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = np.clip(np.array(COLOURS[name]) + rng.normal(0, 15, (size, size, 3)), 0, 255)
            Image.fromarray(img.astype("uint8")).save(root / name / f"{i:03d}.png")
    return root


def _run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = fish.main(argv)
    return code, out.getvalue(), err.getvalue()


def _fish_val_dir() -> Path:
    return Path(os.environ.get("FISH_VAL_DIR") or
                Path(__file__).resolve().parents[2] / "shared/data/fish-val")


class FishUnitTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session()
        self.tmp = Path(self.get_temp_dir())

    def test_help_lists_every_option_and_bad_values_fail(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            fish.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(fish.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())
        with self.assertRaisesRegex(ValueError, "image_size must be >= 1, got 0"):
            fish.Config(image_size=0)
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            fish.main(["--backbone", "resnet"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("invalid choice: 'resnet'", err.getvalue())

    @parameterized.named_parameters(
        ("single_class", {"red": 5}, None,
         r"^error: Classification needs at least 2 classes, found 1: 'red'"),
        ("too_small", {"red": 6, "blue": 1}, None,
         r"^error: Class 'blue' has only 1 image\(s\), too few .* Use a smaller split .*"
         r"merge the class"),
        ("undecodable", {"red": 5, "blue": 5}, "red/broken.jpg",
         r"^error: Unreadable image '.*broken.jpg'"),
    )
    def test_bad_folders_give_one_error_line_and_exit_2(self, sizes, broken, pattern):
        root = _make_folder(self.tmp / "photos", sizes, size=8)
        if broken:
            (root / broken).write_bytes(b"\xff\xd8 not a jpeg")
        out_dir = self.tmp / "runs"
        code, _, err = _run_main(["--data-dir", str(root), "--quick", "--out-dir", str(out_dir)])
        self.assertEqual(code, 2)
        self.assertRegex(err, pattern)
        self.assertLen(err.strip().splitlines(), 1)
        self.assertNotIn("Traceback", err)
        self.assertFalse(out_dir.exists())  # nothing trained, no run folder

    def test_missing_folder_and_weights_file(self):
        code, _, err = _run_main(["--data-dir", str(self.tmp / "nope"), "--quick"])
        self.assertEqual((code, err.strip()),
                         (2, f"error: Fish photo folder '{self.tmp / 'nope'}' does not exist."))
        config = fish.Config(weights=str(self.tmp / "w.h5"), image_size=32)
        with self.assertRaisesRegex(fish_predict.InputError,
                                    r"Weights file '.*w.h5' does not exist \(use --weights"):
            fish.build_transfer(config, 3)

    def test_imagenet_weights_unavailable_says_how_to_proceed(self):
        with mock.patch("keras.src.utils.file_utils.get_file",
                        side_effect=OSError("URL fetch failure")):
            with self.assertRaisesRegex(fish_predict.InputError,
                                        r"Cannot get the ImageNet weights of mobilenetv2 "
                                        r"\(URL fetch failure\).*--weights none"):
                fish.build_transfer(fish.Config(image_size=96), 3)

    def test_augmentation_only_in_training_and_rescale_inside(self):
        x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
        cnn = keras.Model(*(lambda m: (m.input, m.get_layer("aug_contrast").output))(
            build_cnn(fish.cnn_spec(True), (32, 32, 3), 3)))
        transfer = fish.build_transfer(fish.Config(weights="none", image_size=32), 3)
        transfer_aug = keras.Model(transfer.input, transfer.get_layer("aug_contrast").output)
        for aug in (cnn, transfer_aug):
            self.assertAllClose(aug(x, training=False), x)
            self.assertGreater(float(np.abs(aug(x, training=True) - x).mean()), 1.0)
        model = build_cnn(fish.cnn_spec(True), (32, 32, 3), 3)
        self.assertAllClose(model.get_layer("input_rescale").scale, 1 / 255)
        self.assertEqual([la.name for la in model.layers[1:5]],
                         ["aug_flip", "aug_rotation", "aug_zoom", "aug_contrast"])
        self.assertAllClose(model.predict(x, verbose=0), model(x, training=False))
        # weights none: the backbone's BN momentum lowered so it settles in a few epochs
        bns = [la for la in transfer.get_layer("backbone").layers
               if isinstance(la, keras.layers.BatchNormalization)]
        self.assertEqual({b.momentum for b in bns}, {fish.BN_MOMENTUM_FROM_SCRATCH})

    def test_tiny_cnn_learns_colours_and_saved_model_predicts_raw_photos(self):
        root = _make_folder(self.tmp / "photos", {"red": 30, "green": 30, "blue": 30}, size=16)
        config = fish.Config(data_dir=str(root), image_size=16, cnn_epochs=10, batch_size=8,
                             learning_rate=3e-3, imbalance="none")
        data, arrays = fish.load(config)
        with contextlib.redirect_stdout(io.StringIO()):
            trained = fish.train_cnn(config, arrays, 3, "none", "")
        acc = np.mean(trained.model.predict(arrays["x_test"], verbose=0).argmax(1)
                      == arrays["y_test"])
        self.assertGreaterEqual(acc, 0.9)
        self.assertEqual({la.momentum for la in trained.model.layers
                          if isinstance(la, keras.layers.BatchNormalization)}, {0.9})
        path = fish_predict.save_model_with_classes(trained.model, self.tmp / "m.keras",
                                                    data.class_names)
        self.assertEqual(json.loads(fish_predict.classes_path(path).read_text()),
                         {"class_names": ["blue", "green", "red"], "image_size": [16, 16]})
        # a 40x30 grayscale photo and a 50x50 RGB one: resized / converted, not an error
        Image.new("L", (40, 30), 90).save(self.tmp / "gray.png")
        Image.new("RGB", (50, 50), COLOURS["red"]).save(self.tmp / "red.jpg")
        code, out, err = _run_main(["predict", "--model", str(path), str(self.tmp / "red.jpg"),
                                    str(self.tmp / "gray.png"), "--mc-samples", "5"])
        self.assertEqual((code, err), (0, ""))
        lines = out.splitlines()
        self.assertLen(lines, 8)  # (path + 3 classes) x 2
        self.assertStartsWith(lines[1].strip(), "red ")
        reloaded, names = fish_predict.load_model_with_classes(path)
        images = fish_predict.read_images([self.tmp / "red.jpg", self.tmp / "gray.png"], (16, 16))
        self.assertEqual(images.shape, (2, 16, 16, 3))
        self.assertAllClose(images[1, ..., 0], images[1, ..., 2])  # gray -> 3 equal channels
        self.assertAllClose(reloaded.predict(arrays["x_test"], verbose=0),
                            trained.model.predict(arrays["x_test"], verbose=0), atol=1e-5)
        mc = fish_predict.mc_model(reloaded)
        self.assertTrue(any(isinstance(la, MCDropout) for la in mc.layers))
        top = fish_predict.predict_images(reloaded, names, images, mc_samples=5)
        self.assertEqual(top[0][0]["class"], "red")
        probs = [r["probability"] for r in top[1]]
        self.assertEqual(probs, sorted(probs, reverse=True))
        self.assertTrue(all(r["std"] >= 0 for r in top[1]))
        # an undecodable photo and a missing model: one error line, exit 2
        (self.tmp / "bad.jpg").write_bytes(b"garbage")
        code, _, err = _run_main(["predict", "--model", str(path), str(self.tmp / "bad.jpg")])
        self.assertEqual(code, 2)
        self.assertRegex(err, r"^error: Image '.*bad.jpg' cannot be decoded")
        code, _, err = _run_main(["predict", "--model", str(self.tmp / "x.keras"), "a.jpg"])
        self.assertEqual((code, err.strip()),
                         (2, f"error: Model file '{self.tmp / 'x.keras'}' does not exist."))


@pytest.mark.slow
class FishPipelineTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session()
        self.tmp = Path(self.get_temp_dir())

    def _check_run(self, results, config):
        run_dir = results.run_dir
        for name in ("config.json", "results.json", "report.md", "cnn_curves.png",
                     "transfer_curves.png", "confusion.png", "roc.png", "saliency_1.png",
                     "history_cnn.csv", "history_transfer.csv", "cnn.keras", "transfer.keras",
                     "best.keras", "best.classes.json"):
            self.assertTrue((run_dir / name).is_file(), name)
        table = results.table
        self.assertEqual(list(table["model"]), ["cnn", "transfer"])
        for col in ("train_acc", "val_acc", "test_acc", "macro_auc", "min_class_recall"):
            self.assertTrue(np.all((table[col] >= 0) & (table[col] <= 1)), col)
        report = (run_dir / "report.md").read_text()
        for text in ("## Class counts per split", "## Per-class test metrics: cnn",
                     "## Per-class test metrics: transfer", "## Diagnostics: cnn",
                     "## Imbalance comparison", "NO pretrained weights", "![ROC curves]"):
            self.assertIn(text, report)
        # the saved best model reloads and reproduces the reported test accuracy on raw pixels
        _, arrays = fish.load(dataclasses.replace(config, image_size=32))
        model, names = fish_predict.load_model_with_classes(run_dir / "best.keras")
        best = results.metrics["best_model"]
        acc = np.mean(model.predict(arrays["x_test"], verbose=0).argmax(1) == arrays["y_test"])
        self.assertAllClose(acc, results.metrics[f"{best}_test_acc"])
        return report

    def test_quick_pipeline_class_weights_reach_fit(self):
        root = _make_folder(self.tmp / "photos", {"blue": 16, "green": 16, "red": 6})
        config = fish.Config(data_dir=str(root), quick=True, weights="none",
                             compare_imbalance=True, out_dir=str(self.tmp / "runs"))
        calls = []
        real_fit = keras.Model.fit

        def spy(model, *args, **kwargs):
            calls.append((model.name, kwargs.get("class_weight"), kwargs.get("epochs")))
            return real_fit(model, *args, **kwargs)

        with mock.patch.object(keras.Model, "fit", spy), \
                contextlib.redirect_stdout(io.StringIO()):
            results = fish.run(config)
        # train: 16 -> 11 (3 val, 2 test), 6 -> 4 (1, 1): balanced weights n / (k * n_c)
        weights = {0: 26 / 33, 1: 26 / 33, 2: 26 / 12}
        self.assertLen(calls, 5)  # cnn, transfer x 2 phases (0 + 2 epochs), none, focal
        self.assertEqual([c[0] for c in calls], ["cnn", "transfer_mobilenetv2",
                                                 "transfer_mobilenetv2", "cnn", "cnn"])
        for _, cw, _ in calls[:3]:
            self.assertAllClose([cw[i] for i in range(3)], [weights[i] for i in range(3)])
        self.assertEqual([c[2] for c in calls[1:3]], [0, 2])  # weights none: one phase
        self.assertEqual([c[1] for c in calls[3:]], [None, None])
        report = self._check_run(results, config)
        self.assertIn("| class_weight | red | 4 | 1 |", report)

    def test_fish_val_quick(self):
        root = _fish_val_dir()
        if not root.is_dir():
            self.skipTest(f"{root} not found (set FISH_VAL_DIR)")
        config = fish.Config(data_dir=str(root), quick=True, weights="none",
                             out_dir=str(self.tmp / "runs"))
        with contextlib.redirect_stdout(io.StringIO()):
            results = fish.run(config)
        self.assertEqual(results.table["epochs"].tolist(), [1, 2])
        self.assertIn("animal fish bass (train 7:", " ".join(results.notes))
        self.assertTrue((results.run_dir / "best.classes.json").is_file())
        names = json.loads((results.run_dir / "best.classes.json").read_text())["class_names"]
        self.assertLen(names, 11)
