"""Fish photo loader: layouts, stratified splits, decoding, bad input, and the real photos."""

import os
import re
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized
from PIL import Image

from recipes.checks import InputError
from recipes.data.fish import FishData, load_fish, load_fish_splits

RED, GREEN, BLUE = (220, 30, 30), (30, 200, 40), (20, 40, 230)
SMALL = {"image_size": (8, 8), "batch_size": 4}


def _img(path: Path, colour=RED, mode="RGB", size=16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size, size), colour).save(path)
    return path


def _class_folders(root: Path, spec: dict, ext=".png") -> Path:
    """spec: class name -> (number of images, colour)."""
    for name, (n, colour) in spec.items():
        for i in range(n):
            _img(root / name / f"img_{i:03d}{ext}", colour)
    return root


def _collect(ds: tf.data.Dataset):
    images, labels = [], []
    for x, y in ds:
        images.append(x.numpy())
        labels.append(y.numpy())
    if not images:
        return np.zeros((0, 8, 8, 3), np.float32), np.zeros((0,), np.int32)
    return np.concatenate(images), np.concatenate(labels)


class FishDataTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)
        self.tmp = Path(self.get_temp_dir())

    def _check_colours(self, data: FishData, colours: dict, atol=0.5):
        """Every image of every split is the solid colour of its class folder."""
        for split in ("train", "validation", "test"):
            x, y = _collect(getattr(data, split))
            self.assertEqual(len(y), int(data.counts[split].sum()))
            self.assertAllEqual(np.sort(y), np.sort(data.labels(split)))
            for label, name in enumerate(data.class_names):
                mine = x[y == label]
                self.assertLen(mine, int(data.counts.loc[name, split]))
                if len(mine):
                    self.assertAllClose(mine.mean(axis=(1, 2)),
                                        np.tile(colours[name], (len(mine), 1)), atol=atol)

    def test_class_folders_with_spaces_stratified_counts_and_labels(self):
        root = _class_folders(self.tmp / "photos", {"animal fish": (20, RED)}, ext=".JPG")
        _class_folders(root, {"sea bass": (10, BLUE)}, ext=".jpeg")
        (root / "README.txt").write_text("not a class")
        (root / "sea bass" / "notes.txt").write_text("not a photo")
        data = load_fish(root, **SMALL)
        self.assertEqual(data.layout, "class_folders")
        self.assertEqual(data.class_names, ["animal fish", "sea bass"])
        self.assertEqual(data.counts.to_dict("index"), {
            "animal fish": {"train": 14, "validation": 4, "test": 2, "total": 20},
            "sea bass": {"train": 7, "validation": 2, "test": 1, "total": 10}})
        for split in ("train", "validation", "test"):
            images, labels = getattr(data, split).element_spec
            self.assertEqual(images.shape.as_list(), [None, 8, 8, 3])
            self.assertEqual(images.dtype, tf.float32)
            self.assertEqual(labels.dtype, tf.int32)
            # no autotuning thread: it stalls each epoch start (see recipes.data.pipeline)
            self.assertFalse(getattr(data, split).options().autotune.enabled)
        x, _ = _collect(data.train)
        self.assertEqual(x.shape, (21, 8, 8, 3))
        self.assertBetween(float(x.min()), 0.0, 255.0)
        self.assertBetween(float(x.max()), 0.0, 255.0)
        self._check_colours(data, {"animal fish": RED, "sea bass": BLUE}, atol=4.0)
        self.assertAllEqual(data.labels("test"), [0, 0, 1])
        self.assertRegex(data.summary(), r"TOTAL\s+21\s+6\s+3\s+30")
        self.assertIn("sea bass", data.summary())

    @parameterized.named_parameters(
        ("inner", ""), ("outer", "Fish_Dataset"), ("double", "Fish_Dataset/Fish_Dataset"))
    def test_kaggle_layout_never_reads_gt_masks(self, prefix):
        top = self.tmp / "kaggle"
        base = top / prefix if prefix else top
        for name, n, colour in (("Gilt Head Bream", 5, RED), ("Trout", 3, GREEN)):
            for i in range(n):
                _img(base / name / name / f"{i:05d}.png", colour)
            for i in range(n + 4):  # more masks than photos: reading them changes the counts
                _img(base / name / f"{name} GT" / f"{i:05d}.png", 255, mode="L")
        (base / "README.txt").write_text("readme")
        (base / "license.txt").write_text("license")
        if prefix:
            _class_folders(top / "NA_Fish_Dataset", {"Other": (2, BLUE), "More": (2, BLUE)})
        data = load_fish(top, validation_split=0.2, test_split=0.2, **SMALL)
        self.assertEqual(data.layout, "kaggle")
        self.assertEqual(data.class_names, ["Gilt Head Bream", "Trout"])
        self.assertEqual(data.counts["total"].tolist(), [5, 3])
        self.assertEqual(data.counts["validation"].tolist(), [1, 1])
        self.assertEqual(data.directory.name, "Fish_Dataset" if prefix else "kaggle")
        all_files = [p for s in data.files.values() for p, _ in s]
        self.assertFalse([p for p in all_files if " GT" in p])
        self._check_colours(data, {"Gilt Head Bream": RED, "Trout": GREEN})

    @parameterized.named_parameters(("val", "val", True), ("validation", "validation", False))
    def test_presplit_used_as_given(self, val_name, with_test):
        root = self.tmp / "split"
        _class_folders(root / "train", {"bream": (4, RED), "trout": (3, GREEN)})
        _class_folders(root / val_name, {"bream": (2, RED), "trout": (1, GREEN)})
        if with_test:
            _class_folders(root / "test", {"trout": (2, GREEN)})
        data = load_fish(root, **SMALL)
        self.assertEqual(data.layout, "presplit")
        self.assertEqual(data.counts["train"].tolist(), [4, 3])
        self.assertEqual(data.counts["validation"].tolist(), [2, 1])
        self.assertEqual(data.counts["test"].tolist(), [0, 2] if with_test else [0, 0])
        self._check_colours(data, {"bream": RED, "trout": GREEN})

    def test_presplit_class_missing_from_train(self):
        root = self.tmp / "split"
        _class_folders(root / "train", {"bream": (4, RED), "trout": (3, GREEN)})
        _class_folders(root / "val", {"bream": (1, RED), "carp": (1, BLUE)})
        with self.assertRaisesRegex(ValueError, r"\['carp'\] of .*val are missing from .*train"):
            load_fish(root, **SMALL)

    @parameterized.named_parameters(
        ("default", 0.2, 0.1, {"a": (14, 4, 2), "b": (7, 2, 1), "c": (1, 1, 1)}),
        ("no_test", 0.3, 0.0, {"a": (14, 6, 0), "b": (7, 3, 0), "c": (2, 1, 0)}),
        ("all_train", 0.0, 0.0, {"a": (20, 0, 0), "b": (10, 0, 0), "c": (3, 0, 0)}),
        ("big_split", 0.5, 0.4, {"a": (2, 10, 8), "b": (1, 5, 4), "c": (1, 1, 1)}),
    )
    def test_split_counts(self, val, test, expected):
        root = _class_folders(self.tmp / "p", {"a": (20, RED), "b": (10, GREEN), "c": (3, BLUE)})
        data = load_fish(root, validation_split=val, test_split=test, **SMALL)
        got = {c: tuple(data.counts.loc[c, ["train", "validation", "test"]]) for c in "abc"}
        self.assertEqual(got, expected)

    def test_split_is_deterministic_by_seed_and_disjoint(self):
        root = _class_folders(self.tmp / "p", {"a": (20, RED), "b": (10, GREEN)})
        first, again = load_fish(root, seed=1, **SMALL), load_fish(root, seed=1, **SMALL)
        other = load_fish(root, seed=2, **SMALL)
        self.assertEqual(first.files, again.files)
        self.assertNotEqual(first.files["validation"], other.files["validation"])
        paths = [p for s in first.files.values() for p, _ in s]
        self.assertLen(set(paths), 30)
        self.assertAllEqual(_collect(first.train)[1], _collect(again.train)[1])
        no_shuffle = load_fish(root, seed=1, shuffle=False, cache=False, **SMALL)
        self.assertAllEqual(_collect(no_shuffle.train)[1], no_shuffle.labels("train"))

    def test_grayscale_rgba_gif_bmp_become_rgb(self):
        root = _class_folders(self.tmp / "p", {"plain": (3, RED)})
        _img(root / "mixed" / "grey.png", 100, mode="L")
        _img(root / "mixed" / "rgba.PNG", (10, 20, 30, 128), mode="RGBA")
        _img(root / "mixed" / "pal.gif", (10, 20, 30))
        _img(root / "mixed" / "b.bmp", (10, 20, 30))
        data = load_fish(root, validation_split=0.0, test_split=0.0, shuffle=False, **SMALL)
        x, y = _collect(data.train)
        self.assertEqual(x.shape, (7, 8, 8, 3))
        means = {Path(p).name: x[i].mean(axis=(0, 1)) for i, (p, _) in
                 enumerate(data.files["train"])}
        self.assertAllClose(means["grey.png"], [100, 100, 100])
        for name in ("rgba.PNG", "pal.gif", "b.bmp"):
            self.assertAllClose(means[name], [10, 20, 30], atol=1.0)

    def test_corrupt_file_raises_naming_it_or_is_skipped(self):
        root = _class_folders(self.tmp / "p", {"a": (5, RED), "b": (5, GREEN)})
        bad = root / "b" / "broken.png"
        bad.write_bytes(b"not a png at all")
        with self.assertRaisesRegex(ValueError, rf"Unreadable image '{re.escape(str(bad))}'.*"
                                                r"skip_corrupt=True"):
            load_fish(root, **SMALL)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = load_fish(root, skip_corrupt=True, **SMALL)
        messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        self.assertLen([m for m in messages if "broken.png" in m and "Skipped" in m], 1)
        self.assertEqual(data.counts["total"].tolist(), [5, 5])

    def test_truncated_jpeg_is_caught_when_listing(self):
        root = _class_folders(self.tmp / "p", {"a": (3, RED), "b": (3, GREEN)}, ext=".jpg")
        noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        good = root / "a" / "noisy.jpg"
        Image.fromarray(noisy).save(good)
        cut = root / "a" / "cut.jpg"
        cut.write_bytes(good.read_bytes()[:-200])  # header intact, scan data cut
        with self.assertRaisesRegex(ValueError, r"Unreadable image '.*cut\.jpg'"):
            load_fish(root, **SMALL)

    def test_bad_folders(self):
        with self.assertRaisesRegex(FileNotFoundError, r"'.*nowhere' does not exist"):
            load_fish(self.tmp / "nowhere", **SMALL)
        (self.tmp / "empty").mkdir()
        with self.assertRaisesRegex(ValueError, r"No images found in '.*empty'"):
            load_fish(self.tmp / "empty", **SMALL)
        _img(self.tmp / "flat" / "x.png")
        with self.assertRaisesRegex(ValueError, r"'.*flat'.*no class folders"):
            load_fish(self.tmp / "flat", **SMALL)
        root = _class_folders(self.tmp / "p", {"a": (5, RED), "b": (5, GREEN)})
        (root / "c").mkdir()
        (root / "c" / "notes.txt").write_text("no photos here")
        with self.assertRaisesRegex(ValueError, r"Class folder '.*/p/c' has no images"):
            load_fish(root, **SMALL)

    def test_single_class(self):
        root = _class_folders(self.tmp / "p", {"x": (5, RED)})
        with self.assertRaisesRegex(ValueError, r"needs at least 2 classes, found 1: 'x'"):
            load_fish(root, **SMALL)

    def test_too_few_images_names_class_and_count(self):
        root = _class_folders(self.tmp / "p", {"a": (5, RED), "tiny": (2, GREEN)})
        with self.assertRaisesRegex(
                ValueError, r"Class 'tiny' has only 2 image\(s\).*smaller split.*merge"):
            load_fish(root, **SMALL)
        data = load_fish(root, test_split=0.0, **SMALL)  # 2 images suffice for train + val
        self.assertEqual(data.counts.loc["tiny"].tolist(), [1, 1, 0, 2])

    @parameterized.named_parameters(
        ("val_one", {"validation_split": 1.0}, r"validation_split must be a fraction in \[0, 1\)"),
        ("test_negative", {"test_split": -0.1}, r"test_split must be a fraction in \[0, 1\), "
                                                r"got -0\.1"),
        ("sum", {"validation_split": 0.6, "test_split": 0.5}, r"must be < 1.*0\.6 \+ 0\.5"),
        ("batch", {"batch_size": 0}, r"batch_size must be an integer >= 1, got 0"),
        ("size", {"image_size": (8, 0)}, r"image_size must be \(height, width\) > 0"),
    )
    def test_bad_arguments(self, kwargs, message):
        root = _class_folders(self.tmp / "p", {"a": (5, RED), "b": (5, GREEN)})
        with self.assertRaisesRegex(ValueError, message):
            load_fish(root, **{**SMALL, **kwargs})

    def test_labels_unknown_split(self):
        root = _class_folders(self.tmp / "p", {"a": (5, RED), "b": (5, GREEN)})
        data = load_fish(root, **SMALL)
        with self.assertRaisesRegex(ValueError, r"Unknown split 'val'. Valid: train, valid"):
            data.labels("val")


def _fish_val_dir() -> Path:
    return Path(os.environ.get("FISH_VAL_DIR") or
                Path(__file__).resolve().parents[2] / "shared/data/fish-val")


@pytest.mark.slow
class FishValIntegrationTest(tf.test.TestCase):
    def test_real_fish_photos(self):
        root = _fish_val_dir()
        if not root.is_dir():
            self.skipTest(f"{root} not found (set FISH_VAL_DIR)")
        data = load_fish(root, image_size=(64, 64), batch_size=64)
        expected = {d.name: sum(1 for p in d.iterdir() if p.suffix.lower() == ".jpg")
                    for d in root.iterdir() if d.is_dir()}
        self.assertLen(data.class_names, 11)
        self.assertEqual(data.layout, "class_folders")
        self.assertEqual(data.counts["total"].to_dict(), expected)
        self.assertAllEqual(data.counts[["train", "validation", "test"]].sum(axis=1),
                            data.counts["total"])
        self.assertEqual(data.counts.loc["animal fish bass"].tolist(), [7, 2, 1, 10])
        self.assertEqual(int(data.counts["total"].sum()), 1092)
        x, y = next(iter(data.validation))
        self.assertEqual(x.shape, (64, 64, 64, 3))
        self.assertBetween(float(tf.reduce_max(x)), 1.0, 255.0)
        n_val = sum(len(b) for _, b in data.validation)
        self.assertEqual(n_val, int(data.counts["validation"].sum()))


class FishSplitsTest(tf.test.TestCase, parameterized.TestCase):
    """load_fish_splits: separate folders, held-out parts, the cache, duplicates, bad input."""

    def setUp(self):
        super().setUp()
        self.tmp = Path(self.get_temp_dir())
        self.cache = self.tmp / "cache"

    def _load(self, *args, **kwargs):
        kwargs.setdefault("image_size", 8)
        kwargs.setdefault("cache_dir", self.cache)
        return load_fish_splits(*args, **kwargs)

    def test_separate_folders_and_a_held_out_test_part(self):
        train = _class_folders(self.tmp / "train", {"bream": (10, RED), "trout": (6, GREEN)})
        val = _class_folders(self.tmp / "val", {"bream": (4, RED), "trout": (4, GREEN)})
        data = self._load(train, val, test_split=0.5)
        self.assertEqual(data.class_names, ["bream", "trout"])
        self.assertEqual(data.counts.to_dict("index"), {
            "bream": {"train": 10, "validation": 2, "test": 2, "total": 14},
            "trout": {"train": 6, "validation": 2, "test": 2, "total": 10}})
        self.assertIn("50% of each class of the validation split", data.sources["test"])
        self.assertEqual(data.x["train"].dtype, np.uint8)
        self.assertEqual(data.x["train"].shape, (16, 8, 8, 3))
        for split in ("train", "validation", "test"):
            for label, colour in enumerate((RED, GREEN)):
                mine = data.x[split][data.y[split] == label]
                self.assertAllClose(mine.mean(axis=(0, 1, 2)), colour, atol=1.0)
        from_train = self._load(train, val, test_from="train", test_split=0.25)
        # round half up: 10 * .25 = 2.5 -> 3, 6 * .25 = 1.5 -> 2
        self.assertEqual(from_train.counts["test"].tolist(), [3, 2])
        self.assertEqual(from_train.counts["train"].tolist(), [7, 4])
        self.assertEqual(from_train.counts["validation"].tolist(), [4, 4])
        self.assertIn("of the training split", from_train.sources["test"])
        held = set(map(str, from_train.files["test"]))
        self.assertFalse(held & set(map(str, from_train.files["train"])))

    def test_test_folder_and_presplit_folder(self):
        root = self.tmp / "split"
        _class_folders(root / "train", {"a": (5, RED), "b": (5, BLUE)})
        _class_folders(root / "val", {"a": (2, RED), "b": (2, BLUE)})
        _class_folders(root / "test", {"a": (3, RED), "b": (1, BLUE)})
        together = self._load(root)
        separate = self._load(root / "train", root / "val", root / "test")
        for data in (together, separate):
            self.assertEqual(data.counts["test"].tolist(), [3, 1])
            self.assertEqual(data.sources["test"], f"folder '{root / 'test'}'")
        self.assertAllEqual(together.x["test"], separate.x["test"])

    @parameterized.named_parameters(
        ("missing", {"a": (2, RED)}, r"'.*test' has missing class folder\(s\) \['b'\]"),
        ("extra", {"a": (2, RED), "b": (2, BLUE), "c": (2, GREEN)},
         r"'.*test' has extra class folder\(s\) \['c'\] that the training folder lacks"),
    )
    def test_class_folders_must_agree(self, test_spec, message):
        train = _class_folders(self.tmp / "train", {"a": (4, RED), "b": (4, BLUE)})
        test = _class_folders(self.tmp / "test", test_spec)
        with self.assertRaisesRegex(InputError, message):
            self._load(train, None, test, test_split=0.0)

    def test_the_same_photo_in_two_splits_is_reported(self):
        rng = np.random.default_rng(1)
        for folder, n in (("train", 3), ("val", 2)):
            for name in ("a", "b"):
                for i in range(n):
                    path = self.tmp / folder / name / f"{i}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
        train, val = self.tmp / "train", self.tmp / "val"
        (train / "a" / "0.png").rename(train / "a" / "dup.png")
        (val / "a" / "copy.png").write_bytes((train / "a" / "dup.png").read_bytes())
        data = self._load(train, val, test_split=0.0)
        self.assertEqual(data.duplicates, [("train", str(train / "a" / "dup.png"),
                                            "validation", str(val / "a" / "copy.png"))])
        self.assertIn("1 photo(s) appear in two splits", data.summary())

    def test_second_load_reads_the_cache_and_a_changed_folder_is_decoded_again(self):
        train = _class_folders(self.tmp / "train", {"a": (6, RED), "b": (6, BLUE)})
        first = self._load(train, test_split=0.0, validation_split=0.5)
        self.assertFalse(first.from_cache)
        self.assertGreater(first.decoded_per_s, 0)
        again = self._load(train, test_split=0.0, validation_split=0.5)
        self.assertTrue(again.from_cache)
        self.assertTrue(np.isnan(again.decoded_per_s))
        for split in ("train", "validation"):
            self.assertAllEqual(first.x[split], again.x[split])
        self.assertLen(list(self.cache.glob("photos_8x8_*.npz")), 1)
        _img(train / "a" / "new.png", GREEN)
        changed = self._load(train, test_split=0.0, validation_split=0.5)
        self.assertFalse(changed.from_cache)
        self.assertEqual(changed.counts.loc["a", "total"], 7)
        other_size = self._load(train, image_size=4, test_split=0.0, validation_split=0.5)
        self.assertEqual(other_size.x["train"].shape[1:], (4, 4, 3))
        self.assertLen(list(self.cache.glob("photos_*.npz")), 3)

    def test_a_half_written_cache_is_ignored(self):
        train = _class_folders(self.tmp / "train", {"a": (4, RED), "b": (4, BLUE)})
        self._load(train, test_split=0.0, validation_split=0.5)
        (file,) = self.cache.glob("*.npz")
        file.write_bytes(file.read_bytes()[:100])
        data = self._load(train, test_split=0.0, validation_split=0.5)
        self.assertFalse(data.from_cache)
        self.assertEqual(data.x["train"].shape, (4, 8, 8, 3))

    def test_corrupt_and_non_image_files_are_counted_and_skipped(self):
        train = _class_folders(self.tmp / "train", {"a": (4, RED), "b": (4, BLUE)}, ext=".jpg")
        (train / "a" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
        (train / "b" / "notes.txt").write_text("ignored: not a photo suffix")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = self._load(train, test_split=0.0, validation_split=0.25)
        messages = [str(w.message) for w in caught]
        self.assertLen([m for m in messages if "Skipped 1 unreadable photo file(s)" in m
                        and "broken.jpg" in m], 1)
        self.assertEqual([str(p) for p, _ in data.bad], [str(train / "a" / "broken.jpg")])
        self.assertEqual(data.counts["total"].tolist(), [4, 4])
        self.assertIn("1 unreadable file(s) skipped", data.summary())

    @parameterized.named_parameters(
        ("no_folder", lambda t: (t / "nope",), r"The train folder '.*nope' does not exist"),
        ("no_val_folder", lambda t: (t / "train", t / "nope"),
         r"The validation folder '.*nope' does not exist"),
        ("empty_class", lambda t: (t / "empty",), r"Class folder '.*empty/c' has no images"),
        ("too_few", lambda t: (t / "small",), r"Class 'b' has only 1 image\(s\)"),
    )
    def test_bad_folders_name_the_folder(self, args, message):
        _class_folders(self.tmp / "train", {"a": (4, RED), "b": (4, BLUE)})
        _class_folders(self.tmp / "empty", {"a": (4, RED), "b": (4, BLUE)})
        (self.tmp / "empty" / "c").mkdir()
        _class_folders(self.tmp / "small", {"a": (4, RED), "b": (1, BLUE)})
        with self.assertRaisesRegex(InputError, message):
            self._load(*args(self.tmp))

    @parameterized.named_parameters(
        ("size", {"image_size": 0}, r"image_size must be >= 1, got 0"),
        ("split", {"test_split": 1.0}, r"test_split must be in \[0, 1\), got 1.0"),
        ("nan", {"validation_split": float("nan")}, r"validation_split must be a finite"),
        ("source", {"test_from": "test"}, r"Unknown test_from 'test'. Valid: val, train"),
    )
    def test_bad_arguments(self, kwargs, message):
        train = _class_folders(self.tmp / "train", {"a": (4, RED), "b": (4, BLUE)})
        with self.assertRaisesRegex(ValueError, message):
            self._load(train, **kwargs)

    def test_symlink_loop_is_named(self):
        train = _class_folders(self.tmp / "train", {"a": (4, RED), "b": (4, BLUE)})
        os.symlink(train / "loop", train / "loop")
        with self.assertRaisesRegex(InputError, r"'.*loop' is a broken or looping symbolic"):
            self._load(train)

    def test_webp_and_tiff_photos_are_read(self):
        root = self.tmp / "formats"
        for name, ext, colour in (("a", ".webp", RED), ("b", ".tif", BLUE)):
            for i in range(3):
                _img(root / name / f"{i}{ext}", colour)
        data = self._load(root, test_split=0.0, validation_split=0.34)
        self.assertEqual(data.counts["total"].tolist(), [3, 3])
        self.assertAllClose(data.x["train"][data.y["train"] == 1].mean(axis=(0, 1, 2)), BLUE,
                            atol=2.0)
