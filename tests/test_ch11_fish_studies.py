"""ch11.fish_imbalance, fish_capacity, fish_transfer: their measures; quick runs on tiny photos."""

import contextlib
import io
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from photo_folders import make_folder

from ch11 import fish_capacity, fish_imbalance, fish_transfer
from ch11._fish import subset_classes
from ch11.fish_capacity.experiment import spec_for, subset_indices
from ch11.fish_imbalance.experiment import rare_row, threshold_moved
from ch11.fish_imbalance.report import effect, summary
from recipes.data.fish import load_fish_splits
from recipes.diagnosis.measures import class_gradient_shares


class ImbalanceMeasuresTest(tf.test.TestCase):
    def test_threshold_moving_divides_by_the_training_priors(self):
        probs = np.array([[0.9, 0.1], [0.6, 0.4]])
        y_train = np.array([0] * 9 + [1])  # priors 0.9 / 0.1
        moved = threshold_moved(probs, y_train)
        self.assertAllClose(moved, [[0.5, 0.5], [0.6 / 0.9 / (0.6 / 0.9 + 4.0),
                                                 4.0 / (0.6 / 0.9 + 4.0)]])
        self.assertAllClose(moved.sum(axis=1), [1.0, 1.0])

    def test_rare_row_names_what_the_rare_class_is_mistaken_for(self):
        class_names = ["a", "bass", "c"]
        y_test = np.array([0, 0, 0, 1, 1, 2, 2])
        probs = np.eye(3)[[0, 0, 1, 0, 1, 2, 2]].astype(float) * 0.8 + 0.2 / 3
        data = type("D", (), {"y": {"test": y_test}, "class_names": class_names})()
        row = rare_row({"test": probs, "train": np.eye(3)[[1, 1, 0]],
                        "train_y": np.array([1, 1, 0])}, data, 1, seed=3, remedy="none")
        self.assertEqual((row["seed"], row["remedy"]), (3, "none"))
        self.assertAllClose(row["rare_recall"], 0.5)
        self.assertAllClose(row["rare_precision"], 0.5)
        self.assertAllClose(row["rare_train_recall"], 1.0)
        self.assertAllClose(row["test_acc"], 5 / 7)
        self.assertEqual(row["mistaken_for"], "a (1)")
        self.assertEqual(row["taken_for_rare"], "a (1)")

    def test_an_effect_must_exceed_the_spread_over_seeds(self):
        table = pd.DataFrame({
            "remedy": ["none"] * 3 + ["wide"] * 3 + ["far"] * 3,
            "rare_auc": [0.70, 0.72, 0.74, 0.71, 0.76, 0.69, 0.90, 0.91, 0.92],
            **{c: [0.5] * 9 for c in ("rare_recall", "rare_precision", "rare_train_recall",
                                       "test_acc", "macro_auc")},
            "mistaken_for": ["x (1)"] * 9,
        })
        s = summary(table)
        self.assertEqual(s["seeds"].tolist(), [3, 3, 3])
        self.assertAllClose(s.set_index("remedy").loc["none", "rare_auc_mean"], 0.72)
        self.assertAllClose(s.set_index("remedy").loc["none", "rare_auc_std"],
                            np.std([0.70, 0.72, 0.74]))
        self.assertEqual(effect(s, "far", "rare_auc"), "+0.190 (an effect)")
        self.assertEqual(effect(s, "wide", "rare_auc"), "+0.000 (within noise)")


def _imbalance_table(plain_auc, plain_recall=0.0):
    return pd.DataFrame({
        "remedy": ["none"] * 3 + ["class_weight"] * 3, "seed": [0, 1, 2] * 2,
        "rare_auc": [plain_auc - 0.01, plain_auc, plain_auc + 0.01, 0.97, 0.98, 0.99],
        "rare_recall": [plain_recall] * 3 + [0.4, 0.6, 0.4],
        **{c: [0.5] * 6 for c in ("rare_precision", "rare_train_recall", "test_acc",
                                   "macro_auc")},
        "mistaken_for": ["animal fish (5)"] * 6,
    })


class FishEvidenceTest(tf.test.TestCase):
    """The README row of each fish study: headline, spread, the claim beside it, the verdict."""

    def test_imbalance_agrees_with_the_course_only_near_auc_055(self):
        config = type("C", (), {"seeds": (0, 1, 2)})()
        near = _imbalance_table(0.56)
        ev = fish_imbalance.report.evidence(near, summary(near), "headline", "bass", config)
        self.assertEqual(ev.agrees, "agrees with the course: 'bass' has a test AUC of 0.560 "
                                    "with the plain loss (the course's 0.55).")
        far = _imbalance_table(0.966)
        ev = fish_imbalance.report.evidence(far, summary(far), "headline", "bass", config)
        self.assertStartsWith(ev.agrees, "does not agree with the course's AUC 0.55: 'bass' has "
                                         "a test AUC of 0.966 with the plain loss; what stays "
                                         "low is its recall (0.00).")
        self.assertEqual(ev.seeds_text, "3 seeds (0, 1, 2)")
        self.assertAllClose(ev.summary.set_index("remedy").loc["none", "rare_auc_std"], 0.01)
        book = ev.sections()[1][1]
        self.assertIn("- Data here: the course's fish photos too.", book)
        self.assertIn("the book gives no figure", ev.to_json()["book"]["figure"])
        no_plain = far[far["remedy"] != "none"]
        self.assertStartsWith(fish_imbalance.report.agreement(summary(no_plain), "bass"),
                              "no plain-loss model in this run")

    def _transfer(self, scratch, reused):
        table = pd.DataFrame({
            "seed": [0, 1, 2] * 2, "variant": ["scratch"] * 3 + ["fine_tuned"] * 3,
            "auc": [*scratch, *reused], "balanced_accuracy": [0.6] * 6,
            "rare_recall": [0.5] * 6, "accuracy": [0.9] * 6})
        return fish_transfer.report.agreement(fish_transfer.report.summary(table))

    def test_transfer_verdict_in_every_direction(self):
        self.assertStartsWith(self._transfer([0.80, 0.81, 0.82], [0.90, 0.91, 0.92]),
                              "agrees: the better reuse (fine_tuned) has a bass-vs-other AUC of "
                              "0.910 vs 0.810 from scratch (+0.100); the book's error change "
                              "is -24.5%, and ours exceeds the spread")
        self.assertStartsWith(self._transfer([0.80, 0.81, 0.82], [0.79, 0.83, 0.84]),
                              "does not agree beyond noise:")
        hurt = self._transfer([0.80, 0.81, 0.82], [0.60, 0.61, 0.62])
        self.assertStartsWith(hurt, "does not agree: the better reuse (fine_tuned) has")
        self.assertEndsWith(hurt, "do not help task B (fish underwater or held by anglers): "
                                  "lower, beyond the spread over seeds.")
        self.assertEndsWith(self._transfer([0.80, 0.81, 0.82], [0.78, 0.83, 0.74]),
                            "lower on average, within the spread over seeds.")
        one = pd.DataFrame({"seed": [0, 0], "variant": ["scratch", "frozen"],
                            "auc": [0.8, 0.7], "balanced_accuracy": [0.6, 0.6],
                            "rare_recall": [0.5, 0.5], "accuracy": [0.9, 0.9]})
        self.assertStartsWith(fish_transfer.report.agreement(fish_transfer.report.summary(one)),
                              "one seed, no spread: the better reuse (frozen)")

    def _capacity(self, plain_val, seeds=(0, 1, 2)):
        rows = []
        for units, val in zip((16, 64, 256), plain_val):
            for regime, lift in (("plain", 0.0), ("regularized", 0.06)):
                for k, seed in enumerate(seeds):
                    v = val + lift + 0.01 * k
                    train = 1.0 if regime == "plain" else 0.8
                    rows.append({"dense_units": units, "regime": regime, "seed": seed,
                                 "params": units * 1000, "train_acc": train, "val_acc": v,
                                 "gap": train - v, "best_val_acc": v})
        config = type("C", (), {"dense_units": (16, 64, 256), "per_class": 20,
                                "seeds": tuple(seeds)})()
        return pd.DataFrame(rows), config

    def test_capacity_verdicts_and_headline(self):
        table, config = self._capacity((0.45, 0.50, 0.53))
        ev = fish_capacity.report.evidence(table, config)
        self.assertEqual(ev.agrees, "does not agree: validation accuracy did not fall with "
                                    "width (0.460 at 16 units -> 0.540 at 256); the gap is set "
                                    "by how few photos there are.")
        self.assertEqual(ev.headline, "20 photos per class, plain: validation accuracy 256 "
                                      "units 0.540 ± 0.010 vs 16 units 0.460 ± 0.010: +0.080 "
                                      "(an effect) (training 1.000 ± 0.000 -> 1.000 ± 0.000); "
                                      "regularization at 16 units: gap 0.280 ± 0.010 vs plain "
                                      "0.540 ± 0.010: -0.260 (an effect).")
        falls, _ = self._capacity((0.60, 0.85, 0.65))
        self.assertStartsWith(fish_capacity.report.agreement(falls),
                              "agrees: validation accuracy peaks at 64 units (0.860)")
        flat, _ = self._capacity((0.60, 0.62, 0.615))
        self.assertStartsWith(fish_capacity.report.agreement(flat), "does not agree beyond noise")

    def test_classifier_beside_the_published_cnn(self):
        from ch11.fish import report as fish_report

        model = type("M", (), {"accuracy": {"test": 0.9904}})()
        self.assertEqual(fish_report.agreement(model, 934, 96),
                         "the book gives no figure; beside the published PyTorch CNN's 99.2%: "
                         "ours 0.9904 on 934 test photos (-0.0016, binomial standard error "
                         "0.0032: within noise of it), at 96x96 on a CPU instead of 224x224 on "
                         "a GPU.")
        model.accuracy = {"test": 0.95}
        self.assertIn("below it, beyond noise", fish_report.agreement(model, 934, 96))


class GradientShareTest(tf.test.TestCase):
    def test_class_weights_scale_a_class_gradient_and_its_weight_share(self):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        rng = np.random.default_rng(0)
        x = rng.normal(size=(60, 4)).astype("float32")
        y = np.array([0] * 30 + [1] * 27 + [2] * 3)
        loss = keras.losses.SparseCategoricalCrossentropy()
        plain = class_gradient_shares(model, x, y, loss).set_index("class")
        weighted = class_gradient_shares(model, x, y, loss,
                                         class_weight={0: 1.0, 1: 1.0, 2: 10.0}).set_index("class")
        self.assertEqual(plain["count"].tolist(), [30, 27, 3])
        self.assertAllClose(plain["weight_share"], [0.5, 0.45, 0.05])
        self.assertAllClose(weighted["weight_share"], np.array([30, 27, 30]) / 87)
        self.assertAllClose(weighted.loc[2, "grad_norm"], 10 * plain.loc[2, "grad_norm"])
        self.assertAllClose(weighted.loc[0, "grad_norm"], plain.loc[0, "grad_norm"])
        self.assertGreater(weighted.loc[2, "share"], plain.loc[2, "share"])
        self.assertTrue(np.all((plain["share"] >= 0) & (plain["share"] <= 1)))


class CapacityAndTransferPiecesTest(tf.test.TestCase):
    def test_subset_and_the_two_regimes(self):
        y = np.array([0] * 50 + [1] * 8 + [2] * 30)
        idx = subset_indices(y, 20, seed=0)
        self.assertEqual(np.bincount(y[idx]).tolist(), [20, 8, 20])
        self.assertAllEqual(idx, np.sort(idx))
        self.assertAllEqual(idx, subset_indices(y, 20, seed=0))
        config = fish_capacity.Config()
        plain, reg = spec_for(config, 64, "plain"), spec_for(config, 64, "regularized")
        self.assertEqual((plain.dropout_rate, plain.l2, plain.augmentation), (0.0, 0.0, ()))
        self.assertEqual((reg.dropout_rate, reg.l2), (0.5, 1e-3))
        self.assertEqual(reg.augmentation, ("flip", "rotation", "zoom"))
        self.assertFalse(plain.global_pooling)  # the head's width is the capacity

    def test_subset_classes_relabels_and_keeps_few_training_photos(self):
        root = make_folder(Path(self.get_temp_dir()) / "p",
                           {"blue": 12, "green": 12, "red": 12, "white": 4}, size=16)
        data = load_fish_splits(root, image_size=8, test_split=0.0, validation_split=0.25,
                                cache_dir=Path(self.get_temp_dir()) / "cache")
        b = subset_classes(data, ["white", "red"], per_class=3, seed=1)
        self.assertEqual(b.class_names, ["white", "red"])
        self.assertEqual(np.bincount(b.y["train"]).tolist(), [3, 3])
        self.assertEqual(np.bincount(b.y["validation"]).tolist(), [1, 3])
        self.assertEqual(b.counts.loc["red", "validation"], 3)
        red = data.class_names.index("red")
        self.assertAllEqual(b.x["validation"][b.y["validation"] == 1],
                            data.x["validation"][data.y["validation"] == red])


@pytest.mark.slow
class FishStudiesQuickRunTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = Path(self.get_temp_dir())
        self.root = self.tmp / "split"
        small = {"blue": 4, "green": 4, "red": 4, "white": 3}
        make_folder(self.root / "train", {"blue": 14, "green": 14, "red": 14, "white": 6}, size=16)
        make_folder(self.root / "val", small, size=16, seed=1)
        make_folder(self.root / "test", small, size=16, seed=2)

    def _run(self, module, **kwargs):
        config = module.Config(data_dir=str(self.root), quick=True,
                               out_dir=str(self.tmp / "runs"), **kwargs)
        with contextlib.redirect_stdout(io.StringIO()):
            results = module.run(config)
        self._check_evidence(results)
        return results

    def _check_evidence(self, results):
        """results.json carries the headline, its seeds and the claim beside it (the README
        table's row), and the report shows them."""
        import json

        from ch11.run_all import run_record

        written = json.loads((results.run_dir / "results.json").read_text())
        evidence = written["evidence"]
        self.assertEqual(evidence["seeds"], [0])  # quick: one seed
        # the policy the models were built in, not the MNIST MLPs' float32 default
        self.assertEqual(written["precision"]["every model"]["policy"],
                         results.metrics["policy"])
        self.assertStartsWith(evidence["seeds_note"], "one seed (0")
        record = run_record("x", results.experiment, results.run_dir)
        self.assertEqual(record["book"], evidence["book"]["figure"])
        self.assertNotEqual(record["book"], "not recorded by this run")
        self.assertTrue(record["agrees"])
        report = (results.run_dir / "report.md").read_text()
        self.assertIn("## The book beside us", report)
        self.assertIn(evidence["agrees"], report)

    def test_imbalance_quick_run(self):
        results = self._run(fish_imbalance)
        self.assertEqual(results.table["remedy"].tolist(),
                         ["none", "threshold", "class_weight", "focal", "oversample"])
        self.assertEqual(results.metrics["rare_class"], "white")
        report = (results.run_dir / "report.md").read_text()
        for text in ("## Mean ± std over seeds", "share of the gradient", "rare_class.png",
                     "the course's AUC 0.55", "Why class weights alone"):
            self.assertIn(text, report)

    def test_capacity_quick_run(self):
        results = self._run(fish_capacity, test_split=0.0)
        table = results.table
        self.assertEqual(table["regime"].tolist(), ["plain", "regularized"] * 2)
        self.assertTrue(np.all(np.diff(table["params"].to_numpy()[::2]) > 0))
        self.assertTrue((results.run_dir / "capacity.png").is_file())
        self.assertAllClose(table["gap"], table["train_acc"] - table["val_acc"])

    def test_transfer_quick_run_and_unknown_b_class(self):
        results = self._run(fish_transfer, b_classes=("blue", "white"))
        self.assertEqual(results.table["variant"].tolist(), ["scratch", "frozen", "fine_tuned"])
        self.assertTrue((results.run_dir / "model_a.keras").is_file())
        self.assertBetween(results.metrics["model_a_val_acc"], 0.0, 1.0)
        self.assertIn("No ImageNet weights were used", " ".join(results.notes))
        code = fish_transfer.main(["--data-dir", str(self.root), "--quick", "--b-classes",
                                   "blue", "carp", "--out-dir", str(self.tmp / "runs2")])
        self.assertEqual(code, 2)
        self.assertFalse((self.tmp / "runs2").exists())
