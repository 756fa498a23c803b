"""ch11.fish: the fish classifier on generated photo folders (and on the real photos if present)."""

import contextlib
import dataclasses
import io
import json
import os
import zipfile
from pathlib import Path
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized
from photo_folders import COLOURS, make_folder
from PIL import Image

from ch11 import _fish, fish
from ch11.fish import predict
from recipes.builders import build_cnn
from recipes.data.fish import load_fish_splits
from recipes.hardware import model_policy
from recipes.regularization import MCDropout
from recipes.transfer import build_transfer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = fish.main(argv)
    return code, out.getvalue(), err.getvalue()


class FishConfigTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = Path(self.get_temp_dir())

    def test_help_lists_every_option_and_defaults_are_the_course_splits(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stdout(out):
            fish.main(["--help"])
        self.assertEqual(ctx.exception.code, 0)
        for f in dataclasses.fields(fish.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out.getvalue())
        config = fish.Config()
        self.assertTrue(config.train_dir.endswith("shared/data/fish-train"))
        self.assertTrue(config.val_dir.endswith("shared/data/fish-val"))
        self.assertIsNone(config.test_dir)
        self.assertEqual(config.folders(), (config.train_dir, config.val_dir, None))
        self.assertEqual(fish.Config(data_dir="d", test_dir="t").folders(), ("d", None, "t"))
        self.assertEqual(config.augmentations, ("flip",))  # the recipe's
        self.assertEqual(fish.Config(augmentation=("none",)).augmentations, ())
        self.assertEqual(fish.Config(augmentation=("flip", "zoom")).augmentations,
                         ("flip", "zoom"))

    @parameterized.named_parameters(
        ("backbone", ["--backbone", "resnet"], "invalid choice: 'resnet'"),
        ("nan_rate", ["--learning-rate", "nan"], "learning_rate must be a finite number > 0"),
        ("inf_rate", ["--learning-rate", "inf"], "learning_rate must be a finite number > 0"),
        ("size", ["--image-size", "4"], "image_size must be >= 8, got 4"),
        ("split", ["--test-split", "1"], r"test_split must be in [0, 1), got 1.0"),
        ("source", ["--test-from", "test"], "invalid choice: 'test'"),
        ("seed", ["--seed", "-1"], "seed must be >= 0, got -1"),
        ("augmentation", ["--augmentation", "flip", "spin"], "invalid choice: 'spin'"),
        ("none_and_more", ["--augmentation", "none", "flip"],
         "augmentation must be 'none' or some of flip, rotation, zoom, contrast, translation; "
         "got ['none', 'flip']"),
    )
    def test_bad_options_exit_2_before_anything_runs(self, argv, message):
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            fish.main(argv + ["--out-dir", str(self.tmp / "runs")])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn(message, err.getvalue())
        self.assertFalse((self.tmp / "runs").exists())

    @parameterized.named_parameters(
        ("single_class", {"red": 5}, [],
         r"^error: Classification needs at least 2 classes, found 1: 'red'"),
        ("too_small", {"red": 6, "blue": 1}, [],
         r"^error: Class 'blue' has only 1 image\(s\) in the training folder, too few .* "
         r"Use a smaller split"),
        ("missing_test_class", {"red": 6, "blue": 6}, ["--test-dir", "TEST"],
         r"^error: '.*TEST' has missing class folder\(s\) \['red'\]"),
        ("missing_folder", None, [], r"^error: The train folder '.*nope' does not exist"),
        ("missing_val_folder", {"red": 6, "blue": 6}, ["--val-dir", "NOPE"],
         r"^error: The validation folder '.*NOPE' does not exist"),
    )
    def test_bad_folders_give_one_error_line_and_exit_2(self, sizes, extra, pattern):
        root = make_folder(self.tmp / "photos", sizes, size=8) if sizes else self.tmp / "nope"
        make_folder(self.tmp / "TEST", {"blue": 2}, size=8)
        extra = [str(self.tmp / e) if e in ("TEST", "NOPE") else e for e in extra]
        out_dir = self.tmp / "runs"
        argv = ["--train-dir", str(root), "--val-dir", "none", "--quick", "--out-dir",
                str(out_dir), *extra]
        if "--val-dir" in extra:
            argv = argv[:2] + argv[4:]
        code, _, err = _run_main(argv)
        self.assertEqual(code, 2, err)
        self.assertRegex(err, pattern)
        self.assertLen(err.strip().splitlines(), 1)
        self.assertNotIn("Traceback", err)
        self.assertFalse(out_dir.exists())  # nothing trained, no run folder

    def test_a_missing_weights_file_fails_before_training(self):
        root = make_folder(self.tmp / "photos", {"red": 10, "blue": 10}, size=8)
        code, out, err = _run_main(["--data-dir", str(root), "--quick", "--backbone",
                                    "mobilenetv2", "--weights", str(self.tmp / "w.h5"),
                                    "--out-dir", str(self.tmp / "runs")])
        self.assertEqual(code, 2)
        self.assertRegex(err, r"^error: Weights file '.*w.h5' does not exist \(use imagenet")
        self.assertNotIn("CNN from scratch", out)
        self.assertFalse((self.tmp / "runs").exists())


class FishModelTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)
        self.tmp = Path(self.get_temp_dir())

    def test_recipe_is_the_chapters_cnn(self):
        spec = _fish.recipe_spec()
        model = build_cnn(spec, (96, 96, 3), 11)
        self.assertEqual(spec.first_stride, 2)
        self.assertEqual(model.get_layer("conv_0_0").strides, (2, 2))
        self.assertIsInstance(model.get_layer("conv_0_0").kernel_initializer,
                              keras.initializers.HeNormal)
        self.assertFalse(model.get_layer("conv_0_0").use_bias)  # BN before the activation
        bns = [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
        self.assertLen(bns, 4)
        self.assertEqual({b.momentum for b in bns}, {0.9})
        self.assertAllClose(model.get_layer("input_rescale").scale, 1 / 255)
        self.assertEqual(model.output_shape, (None, 11))
        # augmentation only in training; inference is deterministic on raw uint8 photos
        x = np.random.default_rng(0).integers(0, 256, (4, 96, 96, 3), dtype=np.uint8)
        aug = keras.Model(model.input, model.get_layer("aug_flip").output)
        self.assertAllClose(aug(x.astype("float32"), training=False), x.astype("float32"))
        self.assertGreater(float(np.abs(aug(x.astype("float32"), training=True) - x).mean()), 1)
        self.assertAllClose(model.predict(x, verbose=0), model.predict(x, verbose=0))

    def test_oversampling_repeats_small_classes_to_half_the_median(self):
        y = np.array([0] * 100 + [1] * 80 + [2] * 6)
        idx = _fish.oversample_indices(y, seed=0)
        counts = np.bincount(y[idx])
        self.assertEqual(counts.tolist(), [100, 80, 40])  # half the median class (80)
        self.assertEqual(set(idx[:len(y)].tolist()), set(range(len(y))))

    def test_confusion_pairs_most_frequent_first(self):
        import pandas as pd

        matrix = pd.DataFrame([[9, 3, 0], [1, 5, 0], [0, 4, 7]], index=list("abc"),
                              columns=list("abc"))
        self.assertEqual(_fish.confusion_pairs(matrix, top=2), [("c", "b", 4), ("a", "b", 3)])

    def test_backbone_without_weights_settles_its_batch_norm(self):
        model = build_transfer("mobilenetv2", (32, 32, 3), 3, weights=None)
        bns = [la for la in model.get_layer("backbone").layers
               if isinstance(la, keras.layers.BatchNormalization)]
        self.assertEqual({b.momentum for b in bns}, {0.9})
        self.assertEqual([la.name for la in model.layers[1:5]],
                         ["aug_flip", "aug_rotation", "aug_zoom", "aug_contrast"])


class RareRankingTest(tf.test.TestCase):
    def test_each_rare_photo_with_the_other_photos_above_it_and_the_nearest_classes(self):
        from ch11.fish import report

        tmp = Path(self.get_temp_dir())
        root = tmp / "split"
        make_folder(root / "train", {"blue": 8, "green": 8, "red": 2}, size=8)
        make_folder(root / "val", {"blue": 2, "green": 2, "red": 1}, size=8, seed=1)
        make_folder(root / "test", {"blue": 3, "green": 3, "red": 2}, size=8, seed=2)
        data = load_fish_splits(root, image_size=8, cache_dir=tmp / "cache")
        y = data.y["test"]
        self.assertEqual(data.class_names, ["blue", "green", "red"])
        self.assertEqual(list(y), [0, 0, 0, 1, 1, 1, 2, 2])
        red = np.array([0.1, 0.6, 0.2, 0.3, 0.05, 0.0, 0.9, 0.25])  # P(red) per photo
        probs = np.stack([(1 - red) / 2, (1 - red) / 2, red], axis=1)
        m = _fish.Trained("cnn", None, {}, "none", 0.0, 0.0, "", probs={"test": probs})
        figures, sections = report.rare_ranking(tmp, m, data, top=3)
        self.assertEqual(figures, [("Where 'red' ranks (cnn, test)", "rare_ranking_1.png")])
        self.assertTrue((tmp / "rare_ranking_1.png").is_file())
        ((title, text),) = sections
        self.assertEqual(title, "Where 'red' ranks (cnn, test)")
        # 0.9: no other photo above; 0.25: 0.6 and 0.3 above -> AUC 1 - 2 / (2 x 6)
        self.assertIn("AUC 0.8333 = 1 - 2 / (2 x 6)", text)
        self.assertIn("1 of its 2 photos account for 100% of those pairs.", text)
        self.assertIn("The 20 other photos scored highest for 'red': 3 'blue', 3 'green'.",
                      text)
        self.assertIn("| 001.png | 0.25 | blue | 2 |", text)
        self.assertEqual(report.rare_classes(data.counts), ["red"])
        # one photo per row: the rare photo that costs the AUC most, the best-scored other
        with mock.patch.object(report, "image_rows", wraps=report.image_rows) as drawn:
            report.rare_ranking(tmp, m, data, top=1)
        rows = list(drawn.call_args.args[0].values())
        self.assertEqual([captions for _, captions in rows],
                         [["p=0.25, 2 above\n-> blue"], ["blue\np=0.60"]])
        self.assertAllEqual(rows[0][0], data.x["test"][7:8])


class FishTrainPredictTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)
        self.tmp = Path(self.get_temp_dir())

    def test_the_cnn_trains_in_the_policy_set_before_it(self):
        # train_cnn clears Keras's session before building; Keras's own clear_session()
        # would reset the policy to float32 and the report would claim bf16 for a float32 run
        root = make_folder(self.tmp / "photos", {"red": 12, "green": 12}, size=16)
        data = load_fish_splits(root, image_size=16, validation_split=0.25, test_split=0.5,
                                cache_dir=self.tmp / "cache")
        self.addCleanup(keras.config.set_dtype_policy, "float32")
        self.assertEqual(_fish.set_precision("mixed_bfloat16"), "mixed_bfloat16")
        with contextlib.redirect_stdout(io.StringIO()):
            trained = _fish.train_cnn(_fish.recipe_spec(quick=True, augmentation=()), data,
                                      epochs=1, batch_size=8, max_lr=3e-3, verbose=0)
        self.assertEqual(trained.model.get_layer("conv_0_0").dtype_policy.compute_dtype,
                         "bfloat16")
        self.assertEqual(trained.model.get_layer("output").dtype_policy.name, "float32")

    def test_tiny_cnn_learns_colours_and_predict_reads_photos_and_folders(self):
        root = make_folder(self.tmp / "photos", {"red": 30, "green": 30, "blue": 30}, size=16)
        data = load_fish_splits(root, image_size=16, validation_split=0.2, test_split=0.5,
                                cache_dir=self.tmp / "cache")
        spec = _fish.recipe_spec(quick=True, augmentation=())
        with contextlib.redirect_stdout(io.StringIO()):
            trained = _fish.train_cnn(spec, data, epochs=8, batch_size=8, max_lr=3e-3,
                                      patience=8, verbose=0)
        _fish.evaluate(trained, data)
        self.assertGreaterEqual(trained.accuracy["test"], 0.9)
        self.assertEqual(trained.report["class"].tolist(), ["blue", "green", "red"])
        self.assertEqual(trained.model.get_layer("conv_0_0").dtype_policy.name, "float32")
        self.assertGreater(trained.first_step_s, 0)
        self.assertBetween(trained.best_epoch, 1, 8)
        path = predict.save_model_with_classes(trained.model, self.tmp / "m.keras",
                                               data.class_names)
        self.assertEqual(json.loads(predict.classes_path(path).read_text()),
                         {"class_names": ["blue", "green", "red"], "image_size": [16, 16]})
        # a 40x30 grayscale photo and a 50x50 RGB one: resized / converted, not an error
        Image.new("L", (40, 30), 90).save(self.tmp / "gray.png")
        Image.new("RGB", (50, 50), COLOURS["red"]).save(self.tmp / "red.webp")
        code, out, err = _run_main(["predict", "--model", str(path), str(self.tmp / "red.webp"),
                                    str(self.tmp / "gray.png"), "--mc-samples", "5"])
        self.assertEqual((code, err), (0, ""))
        lines = out.splitlines()
        self.assertLen(lines, 8)  # (path + 3 classes) x 2
        self.assertStartsWith(lines[1].strip(), "red ")
        reloaded, names = predict.load_model_with_classes(path)
        images = predict.read_images([self.tmp / "red.webp", self.tmp / "gray.png"], (16, 16))
        self.assertEqual((images.shape, images.dtype), ((2, 16, 16, 3), np.uint8))
        self.assertAllEqual(images[1, ..., 0], images[1, ..., 2])  # gray -> 3 equal channels
        self.assertAllClose(reloaded.predict(data.x["test"], verbose=0),
                            trained.model.predict(data.x["test"], verbose=0), atol=1e-5)
        self.assertTrue(any(isinstance(la, MCDropout) for la in predict.mc_model(reloaded).layers))
        top = predict.predict_images(reloaded, names, images, mc_samples=5)
        self.assertEqual(top[0][0]["class"], "red")
        probs = [r["probability"] for r in top[1]]
        self.assertEqual(probs, sorted(probs, reverse=True))
        self.assertTrue(all(r["std"] >= 0 for r in top[1]))
        # a folder of photos: every photo classified, a CSV written
        csv_path = self.tmp / "out.csv"
        code, out, err = _run_main(["predict", "--model", str(path), str(root / "green"),
                                    "--csv", str(csv_path)])
        self.assertEqual((code, err), (0, ""))
        rows = csv_path.read_text().splitlines()
        self.assertEqual(rows[0], "photo,class_1,probability_1,class_2,probability_2,class_3,"
                                  "probability_3")
        self.assertLen(rows, 31)
        self.assertGreaterEqual(sum(r.split(",")[1] == "green" for r in rows[1:]), 27)
        self.assertIn("30 photo(s) classified", out)
        self._bad_predict_inputs(path)

    def _bad_predict_inputs(self, path: Path):
        def error(argv):
            code, _, err = _run_main(["predict", *argv])
            self.assertEqual(code, 2, err)
            self.assertLen(err.strip().splitlines(), 1, err)
            return err

        (self.tmp / "bad.jpg").write_bytes(b"garbage")
        self.assertRegex(error(["--model", str(path), str(self.tmp / "bad.jpg")]),
                         r"^error: Image '.*bad.jpg' cannot be decoded")
        # more pixels than Pillow's limit: refused, not decoded (a decompression bomb)
        Image.new("RGB", (300, 300), (1, 2, 3)).save(self.tmp / "big.png")
        limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = 50_000
        try:
            self.assertRegex(error(["--model", str(path), str(self.tmp / "big.png")]),
                             r"^error: Image '.*big.png' cannot be decoded \(ValueError: "
                             r"refused as a possible decompression bomb")
        finally:
            Image.MAX_IMAGE_PIXELS = limit
        self.assertEqual(error(["--model", str(self.tmp / "x.keras"), "a.jpg"]).strip(),
                         "error: Image 'a.jpg' does not exist.")
        photo = str(self.tmp / "gray.png")
        self.assertEqual(error(["--model", str(self.tmp / "x.keras"), photo]).strip(),
                         f"error: Model file '{self.tmp / 'x.keras'}' does not exist.")
        # a malformed classes.json, a truncated .keras, a zip that is not a model
        broken = self.tmp / "broken"
        broken.mkdir()
        for name, data in (("json", path.read_bytes()), ("cut", path.read_bytes()[:3000])):
            (broken / f"{name}.keras").write_bytes(data)
            (broken / f"{name}.classes.json").write_text(
                "{not json" if name == "json" else predict.classes_path(path).read_text())
        self.assertRegex(error(["--model", str(broken / "json.keras"), photo]),
                         r"^error: '.*json.classes.json' is not a class-name file")
        self.assertRegex(error(["--model", str(broken / "cut.keras"), photo]),
                         r"^error: '.*cut.keras' cannot be loaded as a Keras model")
        with zipfile.ZipFile(broken / "zip.keras", "w") as z:
            z.writestr("hello.txt", "not a model")
        (broken / "zip.classes.json").write_text(predict.classes_path(path).read_text())
        self.assertRegex(error(["--model", str(broken / "zip.keras"), photo]),
                         r"^error: '.*zip.keras' cannot be loaded as a Keras model")
        # a model whose input is not a photo
        flat = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
        flat.save(broken / "flat.keras")
        (broken / "flat.classes.json").write_text(predict.classes_path(path).read_text())
        self.assertRegex(error(["--model", str(broken / "flat.keras"), photo]),
                         r"^error: The model in '.*flat.keras' takes inputs of shape \(5,\), "
                         r"not photos")


@pytest.mark.slow
class FishPipelineTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)
        self.tmp = Path(self.get_temp_dir())

    def test_quick_run_with_a_test_folder_a_backbone_and_the_remedies(self):
        root = self.tmp / "split"
        make_folder(root / "train", {"blue": 16, "green": 16, "red": 6})
        make_folder(root / "val", {"blue": 4, "green": 4, "red": 2}, seed=1)
        make_folder(root / "test", {"blue": 4, "green": 4, "red": 2}, seed=2)
        config = fish.Config(data_dir=str(root), quick=True, backbone="mobilenetv2",
                             weights="none", compare_imbalance=True,
                             augmentation=("flip", "contrast"), out_dir=str(self.tmp / "runs"))
        with contextlib.redirect_stdout(io.StringIO()):
            results = fish.run(config)
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
        for text in ("## Data", f"test: folder '{root / 'test'}'", "## Input speed",
                     "## Per-class test metrics: cnn", "## Per-class test metrics: transfer",
                     "## The training doctor: cnn", "## Most frequent mistakes: cnn",
                     "## Imbalance comparison", "NO pretrained weights", "![ROC curves",
                     "## Where 'red' ranks (cnn, test)", "rare_ranking_1.png",
                     "with the augmentation inside the model (flip, contrast)."):
            self.assertIn(text, report)
        for remedy in ("none", "focal", "oversample"):
            self.assertIn(f"| {remedy} | red | 6 | 2 |", report)
        # The first note is the headline the README's results table quotes.
        self.assertStartsWith(results.notes[0], "cnn: test accuracy ")
        self.assertStartsWith(results.notes[1], "transfer: test accuracy ")
        evidence = json.loads((run_dir / "results.json").read_text())["evidence"]
        self.assertEqual(evidence["headline"], results.notes[0])
        self.assertEqual(evidence["seeds"], [42])
        self.assertStartsWith(evidence["seeds_note"], "one seed (42; fewer because one training")
        self.assertStartsWith(evidence["agrees"], "the book gives no figure; beside the "
                                                  "published PyTorch CNN's 99.2%: ours ")
        self.assertIn("## The book beside us", report)
        written = json.loads((run_dir / "results.json").read_text())
        saved = written["metrics"]
        # the report's and results.json's policy is the one the models were built in
        policy = results.metrics["policy"]
        self.assertEqual(written["precision"]["every model"]["policy"], policy)
        self.assertIn(f"Dtype policy: every model {policy} (", report)
        self.assertGreater(saved["first_step_s"], 0)
        self.assertGreater(saved["train_photos_per_s"], 0)
        self.assertIn("cpu", saved["machine"])
        # the saved best model reloads and reproduces the reported test accuracy
        data = load_fish_splits(root, image_size=32)
        model, names = predict.load_model_with_classes(run_dir / "best.keras")
        self.assertEqual(model_policy(model), policy)
        best = results.metrics["best_model"]
        acc = np.mean(model.predict(data.x["test"], verbose=0).argmax(1) == data.y["test"])
        self.assertAllClose(acc, results.metrics[f"{best}_test_acc"])
        cnn, _ = predict.load_model_with_classes(run_dir / "cnn.keras")  # --augmentation
        self.assertEqual([la.name for la in cnn.layers if la.name.startswith("aug_")],
                         ["aug_flip", "aug_contrast"])

    def test_imagenet_weights_unreachable_fail_before_training(self):
        if os.environ.get("RECIPES_ONLINE"):
            self.skipTest("this machine can download the weights")
        root = make_folder(self.tmp / "photos", {"red": 10, "blue": 10}, size=8)
        code, out, err = _run_main(["--data-dir", str(root), "--quick", "--backbone",
                                    "mobilenetv2", "--weights", "imagenet",
                                    "--out-dir", str(self.tmp / "runs")])
        self.assertEqual(code, 2)
        self.assertRegex(err, r"^error: Cannot get the ImageNet weights of mobilenetv2 .*"
                              r"train the backbone from scratch")
        self.assertNotIn("CNN from scratch", out)

    def test_real_photos_quick(self):
        if not (SHARED / "fish-train").is_dir():
            self.skipTest(f"{SHARED / 'fish-train'} not found")
        config = fish.Config(quick=True, out_dir=str(self.tmp / "runs"))
        with contextlib.redirect_stdout(io.StringIO()):
            results = fish.run(config)
        self.assertEqual(results.metrics["cnn_test_acc"] >= 0, True)
        counts = json.loads((results.run_dir / "results.json").read_text())
        self.assertIn("animal_fish_bass_auc", counts["metrics"])
        self.assertIn("animal fish bass (train 30, test 5:", " ".join(results.notes))
        self.assertStartsWith(results.notes[0], "cnn: test accuracy ")
        self.assertIn("The test split is 50% of each class of the validation split, held out "
                      "(seed 43): not a separate test folder: give --test-dir DIR for a "
                      "separate test folder.", results.notes)
