"""recipes.metrics: per-class AUC (with ties), ROC curves, confusion matrix, P/R/F1."""

import itertools

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from recipes.metrics import (
    class_report,
    confusion_matrix,
    positive_ranks,
    precision_recall_f1,
    roc_auc_per_class,
    roc_curves,
)


def pairwise_auc(positive, score):
    """The definition: P(score_pos > score_neg) + 0.5 P(tie), over all pairs."""
    pos, neg = score[positive], score[~positive]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


class RocAucTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_hand_computed_auc_with_ties(self):
        # Class 1 positives score 0.4, 0.8, 0.35; negatives 0.1, 0.4 (a tie at 0.4).
        # Pairs won: 0.4>0.1 (1), 0.4=0.4 (0.5), 0.8>both (2), 0.35>0.1 (1) -> 4.5 / 6.
        y = np.array([0, 0, 1, 1, 1])
        s1 = np.array([0.1, 0.4, 0.4, 0.8, 0.35])
        table = roc_auc_per_class(y, np.stack([1 - s1, s1], axis=1), ["neg", "pos"])
        self.assertAllClose(table["auc"], [0.75, 0.75])
        self.assertEqual(list(table["positives"]), [2, 3])
        self.assertEqual(list(table["negatives"]), [3, 2])
        self.assertEqual(list(table["class"]), ["neg", "pos"])
        # A binary sigmoid output (N,) or (N, 1) is the score of class 1.
        self.assertAllClose(roc_auc_per_class(y, s1)["auc"], [0.75, 0.75])
        self.assertAllClose(roc_auc_per_class(y, s1[:, None])["auc"], [0.75, 0.75])

    def test_three_classes_hand_computed(self):
        y = np.array([0, 1, 2, 2, 1, 0])
        scores = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4], [0.2, 0.2, 0.6],
                           [0.3, 0.3, 0.4], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
        table = roc_auc_per_class(y, scores)
        # Class 0: positives 0.7, 0.3; negatives 0.3, 0.2, 0.3, 0.1 -> (4 + 2 * 0.5 + 2) / 8.
        # Class 2: positives 0.6, 0.4; negatives 0.1, 0.4, 0.1, 0.4 -> (4 + 2 + 2 * 0.5) / 8.
        self.assertAllClose(table["auc"], [7 / 8, pairwise_auc(y == 1, scores[:, 1]), 7 / 8])

    def test_equals_pairwise_definition_with_many_ties(self):
        rng = np.random.default_rng(1)
        y = rng.integers(0, 4, 300)
        scores = np.round(rng.random((300, 4)) + 0.3 * np.eye(4)[y], 1)  # heavy ties
        table = roc_auc_per_class(y, scores)
        expected = [pairwise_auc(y == c, scores[:, c]) for c in range(4)]
        self.assertAllClose(table["auc"], expected)

    def test_perfect_and_reversed_scores(self):
        y = np.array([0, 1, 0, 1])
        self.assertAllClose(roc_auc_per_class(y, np.array([0.1, 0.9, 0.2, 0.8]))["auc"], [1, 1])
        self.assertAllClose(roc_auc_per_class(y, np.array([0.9, 0.1, 0.8, 0.2]))["auc"], [0, 0])

    def test_absent_class_is_nan_with_a_note(self):
        y = np.array([0, 1, 1, 0])
        scores = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.6, 0.2, 0.2]])
        table = roc_auc_per_class(y, scores, ["a", "b", "c"])
        self.assertAllClose(table["auc"][:2], [1.0, 1.0])
        self.assertTrue(np.isnan(table["auc"][2]))
        self.assertEqual(table["note"][2], "absent from y_true: no positives, AUC undefined")
        self.assertEqual(table["note"][0], "")
        only = roc_auc_per_class(np.zeros(3, int), np.full((3, 2), 0.5))
        self.assertEqual(only["note"][0], "only class in y_true: no negatives, AUC undefined")

    def test_one_hot_labels(self):
        y = np.array([0, 2, 1, 2])
        scores = np.random.default_rng(0).random((4, 3))
        self.assertAllClose(roc_auc_per_class(np.eye(3)[y], scores)["auc"],
                            roc_auc_per_class(y, scores)["auc"])

    def test_bad_inputs(self):
        with self.assertRaisesRegex(ValueError, r"Labels must lie in \[0, 2\), got values from 0 "
                                                r"to 3"):
            roc_auc_per_class([0, 3], np.full((2, 2), 0.5))
        with self.assertRaisesRegex(ValueError, "Scores contain 1 NaN/Inf values"):
            roc_auc_per_class([0, 1], [[0.5, np.nan], [0.5, 0.5]])
        with self.assertRaisesRegex(ValueError, "Got 3 labels and 2 score rows"):
            roc_auc_per_class([0, 1, 1], np.full((2, 2), 0.5))
        with self.assertRaisesRegex(ValueError, "Got 1 class names for 2 classes"):
            roc_auc_per_class([0, 1], np.full((2, 2), 0.5), ["a"])


class RocCurveTest(tf.test.TestCase):
    def test_points_of_a_small_example(self):
        y = np.array([0, 0, 1, 1, 1])
        s1 = np.array([0.1, 0.4, 0.4, 0.8, 0.35])
        curve = roc_curves(y, s1)
        pos = curve[curve["class"] == "1"]
        self.assertAllClose(pos["threshold"], [np.inf, 0.8, 0.4, 0.35, 0.1])
        self.assertAllClose(pos["fpr"], [0, 0, 0.5, 0.5, 1])
        self.assertAllClose(pos["tpr"], [0, 1 / 3, 2 / 3, 1, 1])

    def test_area_under_the_curve_equals_auc(self):
        rng = np.random.default_rng(3)
        y = rng.integers(0, 3, 200)
        scores = np.round(rng.random((200, 3)) + 0.5 * np.eye(3)[y], 2)
        curves, aucs = roc_curves(y, scores), roc_auc_per_class(y, scores)
        for c in range(3):
            part = curves[curves["class"] == str(c)]
            self.assertAllClose(part[["fpr", "tpr"]].iloc[0], [0, 0])
            self.assertAllClose(part[["fpr", "tpr"]].iloc[-1], [1, 1])
            self.assertAllClose(np.trapezoid(part["tpr"], part["fpr"]), aucs["auc"][c])

    def test_a_class_without_positives_has_no_curve(self):
        curves = roc_curves([0, 1, 0], np.array([[0.6, 0.3, 0.1]] * 3), ["a", "b", "c"])
        self.assertEqual(sorted(set(curves["class"])), ["a", "b"])


class ConfusionTest(tf.test.TestCase):
    def test_hand_counted_matrix_and_normalizations(self):
        y = [0, 0, 1, 1, 2, 2, 2]
        pred = [0, 1, 1, 1, 2, 0, 2]
        m = confusion_matrix(y, pred, ["a", "b", "c"])
        self.assertAllEqual(m.to_numpy(), [[1, 1, 0], [0, 2, 0], [1, 0, 2]])
        self.assertEqual(m.index.name, "true")
        self.assertEqual(m.columns.name, "predicted")
        rows = confusion_matrix(y, pred, normalize="true").to_numpy()
        self.assertAllClose(rows, [[0.5, 0.5, 0], [0, 1, 0], [1 / 3, 0, 2 / 3]])
        cols = confusion_matrix(y, pred, normalize="pred").to_numpy()
        self.assertAllClose(cols.sum(axis=0), [1, 1, 1])
        self.assertAllClose(confusion_matrix(y, pred, normalize="all").to_numpy().sum(), 1.0)

    def test_scores_are_argmaxed_and_sigmoid_thresholded(self):
        scores = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
        self.assertAllEqual(confusion_matrix([0, 1, 1], scores).to_numpy(), [[1, 0], [1, 1]])
        sigmoid = np.array([0.2, 0.9, 0.4])
        self.assertAllEqual(confusion_matrix([0, 1, 1], sigmoid).to_numpy(), [[1, 0], [1, 1]])
        three = confusion_matrix([0, 1], np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]]))
        self.assertEqual(three.shape, (3, 3))

    def test_precision_recall_f1_by_hand(self):
        y = [0, 0, 1, 1, 2, 2, 2]
        pred = [0, 1, 1, 1, 2, 0, 2]
        t = precision_recall_f1(y, pred)
        self.assertAllClose(t["precision"], [1 / 2, 2 / 3, 1.0])
        self.assertAllClose(t["recall"], [1 / 2, 1.0, 2 / 3])
        self.assertAllClose(t["f1"], [0.5, 0.8, 0.8])
        self.assertEqual(list(t["support"]), [2, 2, 3])
        self.assertEqual(list(t["predicted"]), [2, 3, 2])

    def test_undefined_precision_and_recall_are_nan(self):
        t = precision_recall_f1([0, 0, 1], [0, 0, 0], num_classes=3)
        self.assertAllClose(t["precision"][:2], [2 / 3, np.nan])
        self.assertAllClose(t["recall"][:2], [1.0, 0.0])
        self.assertAllClose(t["f1"][:2], [0.8, 0.0])  # 2 TP / (2 TP + FP + FN)
        self.assertTrue(np.isnan(t["recall"][2]) and np.isnan(t["f1"][2]))

    def test_class_report_joins_everything(self):
        y = np.array([0, 1, 1, 0, 2])
        scores = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1],
                           [0.5, 0.4, 0.1], [0.1, 0.1, 0.8]])
        t = class_report(y, scores, ["a", "b", "c"])
        self.assertEqual(list(t.columns), ["class", "index", "auc", "precision", "recall", "f1",
                                           "support", "predicted", "note"])
        self.assertAllClose(t["auc"], [pairwise_auc(y == c, scores[:, c]) for c in range(3)])
        self.assertAllClose(t["recall"], [1.0, 0.5, 1.0])

    def test_bad_inputs(self):
        with self.assertRaisesRegex(ValueError, "Unknown normalize 'rows'. Valid: None, true, "
                                                "pred, all."):
            confusion_matrix([0, 1], [0, 1], normalize="rows")
        with self.assertRaisesRegex(ValueError, "Got 2 labels and 3 predictions"):
            confusion_matrix([0, 1], [0, 1, 1])
        with self.assertRaisesRegex(ValueError, "Labels must be integers"):
            confusion_matrix([0.5, 1], [0, 1])
        with self.assertRaisesRegex(ValueError, "Metrics need at least one label"):
            precision_recall_f1([], [])


class PositiveRanksTest(tf.test.TestCase):
    def test_hand_computed_ranks_add_up_to_the_auc(self):
        # Class 1 scores 0.4, 0.8, 0.35 against negatives 0.1, 0.4: above 0.8 none, above
        # 0.4 a tie (one half), above 0.35 one -> AUC 1 - 1.5 / 6 = 0.75 (RocAucTest's case).
        y = np.array([0, 0, 1, 1, 1])
        s1 = np.array([0.1, 0.4, 0.4, 0.8, 0.35])
        table = positive_ranks(y, np.stack([1 - s1, s1], axis=1), 1, ["neg", "pos"])
        self.assertEqual(list(table["row"]), [3, 2, 4])  # highest score first
        self.assertAllClose(table["negatives_above"], [0.0, 0.5, 1.0])
        # 0.4 and 0.35 lose the argmax to 0.6 and 0.65
        self.assertEqual(list(table["predicted"]), ["pos", "neg", "neg"])
        self.assertAllClose(table.attrs["auc"], 0.75)
        self.assertEqual(table.attrs["negatives"], 2)

    def test_agrees_with_roc_auc_per_class_on_random_scores(self):
        rng = np.random.default_rng(0)
        y = rng.integers(0, 4, 300)
        scores = np.round(rng.dirichlet(np.ones(4), 300), 2)  # rounded: many ties
        aucs = roc_auc_per_class(y, scores)["auc"]
        for c in range(4):
            table = positive_ranks(y, scores, c)
            self.assertAllClose(table.attrs["auc"], aucs[c])
            self.assertLen(table, int(np.sum(y == c)))

    def test_a_class_with_no_examples_and_a_bad_index(self):
        y, scores = np.array([0, 0, 1]), np.eye(3)[[0, 0, 1]]
        table = positive_ranks(y, scores, 2)
        self.assertEmpty(table)
        self.assertTrue(np.isnan(table.attrs["auc"]))
        with self.assertRaisesRegex(ValueError, r"class_index must be in 0..2, got 3"):
            positive_ranks(y, scores, 3)
