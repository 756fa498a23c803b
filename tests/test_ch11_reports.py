"""Every MNIST experiment's headline, book agreement and verdicts, on small synthetic tables.

No training: each test builds the per-seed table an experiment would measure, and checks
the sentence it gets, branch by branch ("an effect" / "within noise" / "one seed", "agrees"
/ "does not agree", "trains" / "does NOT train" ...).
"""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import tensorflow as tf

from ch11 import (
    activations,
    batch_norm,
    clipping,
    cnn_hparams,
    gradient_descent,
    gradients,
    imbalance,
    initialization,
    losses,
    optimizers,
    regularization,
    residual,
    schedules,
    selu,
    transfer,
)
from ch11._evidence import seed_summary
from ch11.activations import report as activations_report
from ch11.batch_norm import report as bn_report
from ch11.clipping import report as clipping_report
from ch11.cnn_hparams import report as cnn_report
from ch11.gradient_descent import report as gd_report
from ch11.gradients import report as gradients_report
from ch11.imbalance import report as imbalance_report
from ch11.initialization import report as init_report
from ch11.losses import report as losses_report
from ch11.optimizers import report as optimizers_report
from ch11.regularization import report as regularization_report
from ch11.residual import report as residual_report
from ch11.schedules import report as schedules_report
from ch11.selu import report as selu_report
from ch11.transfer import report as transfer_report

SEEDS = (42, 43, 44)


def per_seed(by: str, values: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """{variant: {column: one value per seed}} -> one row per variant and seed."""
    rows = []
    for variant, columns in values.items():
        n = len(next(iter(columns.values())))
        for i in range(n):
            rows.append({by: variant, **{c: v[i] for c, v in columns.items()}, "seed": 42 + i})
    return pd.DataFrame(rows)


def summary(by: str, values: dict, columns=None) -> pd.DataFrame:
    table = per_seed(by, values)
    columns = columns or [c for c in table.columns if c not in (by, "seed")]
    return seed_summary(table, by, columns)


class SeluReportTest(tf.test.TestCase):
    config = selu.Config()

    def _headline(self, selu_acc, relu_acc):
        s = summary("net", {"selu": {"val_acc": selu_acc}, "relu": {"val_acc": relu_acc}})
        return selu_report.headline(s, SEEDS, "", self.config), s

    def test_the_claim_holds_and_the_gap_is_an_effect(self):
        text, s = self._headline([0.80, 0.81, 0.79], [0.30, 0.31, 0.29])
        self.assertIn("the ReLU net without BN does not (criterion: mean validation accuracy "
                      ">= 0.5): holds.", text)
        self.assertIn("SELU 0.800 ± 0.010 vs ReLU 0.300 ± 0.010: +0.500 (an effect)", text)
        self.assertStartsWith(selu_report.agreement(s, self.config),
                              "agrees: SELU ahead of ReLU by +0.500 after 2 epoch(s) of sgd")

    def test_every_other_verdict(self):
        self.assertIn("does NOT hold: both nets train", self._headline(
            [0.80, 0.81, 0.79], [0.70, 0.71, 0.69])[0])
        text, s = self._headline([0.30, 0.31, 0.29], [0.80, 0.81, 0.79])
        self.assertIn("does NOT hold: the other way round", text)
        self.assertIn("(ReLU ahead)", selu_report.agreement(s, self.config))
        text, s = self._headline([0.10, 0.40, 0.20], [0.20, 0.11, 0.30])
        self.assertIn("does NOT hold: neither net trains", text)
        self.assertIn("(within noise)", text)
        self.assertStartsWith(selu_report.agreement(s, self.config),
                              "does not agree: SELU - ReLU +0.030 (within noise)")
        s = summary("net", {"selu": {"val_acc": [0.8]}, "relu": {"val_acc": [0.3]}})
        self.assertIn("(one seed: no spread)", selu_report.agreement(s, self.config))

    def test_investigation_verdicts(self):
        conditions = ["nan", "kept", "kept, not yet", "broke, learns", "broke"]
        runs = pd.DataFrame({"condition": conditions,
                             "loss": [np.nan, 2.0, 2.2, 2.1, 2.3],
                             "val_acc": [0.1, 0.3, 0.12, 0.25, 0.1], "steps": [50] * 5})
        rows = []
        for condition, stds in zip(conditions, ([1.0, np.nan], [1.0, 1.5], [0.9, 1.1],
                                                [1.0, 3.0], [1.0, 13.0])):
            for step, std in zip((0, 25), stds):
                for depth in range(2):
                    rows.append({"condition": condition, "step": step, "depth": depth,
                                 "mean": 0.1, "std": std})
        table = selu_report.investigation_table(runs, pd.DataFrame(rows)).set_index("condition")
        self.assertEqual(list(table["verdict"]), [
            "diverges (NaN)", "keeps self-normalizing and learns",
            "keeps self-normalizing but has not learned yet",
            "learns, though self-normalization breaks at step 25",
            "breaks self-normalization at step 25 and does not learn"])
        self.assertEqual(table.loc["kept", "broke_at_step"], -1)
        self.assertAllClose(table.loc["broke", "max_std"], 13.0)
        profile = {"pixels": 784, "constant_pixels": 67, "tiny_std_pixels": 161, "images": 55000,
                   "max_z": 234.5, "images_beyond": 9436, "limit": 10.0, "global_std": 0.308,
                   "max_z_floored": 3.24}
        text = selu_report.investigation_section(runs, pd.DataFrame(rows), profile, self.config)
        self.assertIn("trains here under: kept; broke, learns.", text)
        self.assertIn("It does not under: nan (diverges (NaN)); kept, not yet", text)
        self.assertIn("9,436 training images have a pixel beyond 10 std", text)

    def test_notes_name_growing_gradients_only_when_they_grow(self):
        row = {"init_std_min": 0.9, "init_std_max": 1.1, "init_mean_min": -0.1,
               "init_mean_max": 0.1, "init_self_normalized": True, "grad_first": 50.0,
               "grad_last": 1.0, "grad_max_over_min": 50.0, "trained_std_min": 0.8,
               "trained_std_max": 3.0, "val_acc_epoch1": 0.5, "val_acc": 0.7,
               "loss_first_epoch": 1.9, "loss_last_epoch": 1.1, "trains": True}
        table = pd.DataFrame([{"net": "selu", **row}, {"net": "relu", **row, "trains": False}])
        notes = " ".join(selu_report.notes(table, self.config, (3, 50.0, 100)))
        self.assertIn("grow toward the input", notes)
        self.assertIn("selu, seed 42: validation accuracy 0.5000 after epoch 1, 0.7000 after "
                      "epoch 2", notes)
        self.assertIn("it does NOT train", notes)
        table.loc[0, "grad_first"] = 0.5
        self.assertNotIn("grow toward the input",
                         " ".join(selu_report.notes(table, self.config, (3, 50.0, 100))))


class BatchNormReportTest(tf.test.TestCase):
    config = batch_norm.Config()

    def _table(self, none_acc: float, before_acc: float) -> pd.DataFrame:
        rows = []
        for model, lrs in (("mlp", (0.01, 0.05)), ("cnn", (0.01,)),
                           ("mlp (small batch)", (0.01,))):
            for lr in lrs:
                for p, acc in (("none", none_acc), ("after", none_acc), ("before", before_acc)):
                    rows.append({"model": model, "batch_norm": p, "learning_rate": lr,
                                 "val_acc_epoch1": acc, "s_per_epoch": 2.0 if p != "none"
                                 else 1.0, "train_val_gap": 0.01, "test_acc": acc})
        return pd.DataFrame(rows)

    def test_headline_compares_bn_before_with_none_per_setting(self):
        rows = bn_report.headline_rows(self._table(0.80, 0.90), self.config)
        self.assertEqual([r["variant"] for r in rows],
                         ["mlp lr0.01 BN none", "mlp lr0.01 BN before", "mlp lr0.05 BN none",
                          "mlp lr0.05 BN before", "cnn lr0.01 BN none", "cnn lr0.01 BN before",
                          "batch 4 BN none", "batch 4 BN before"])
        values = {r["variant"]: {"val_acc_epoch1": [r["val_acc_epoch1"] + d for d in
                                                    (0.0, 0.01, -0.01)]} for r in rows}
        values["cnn lr0.01 BN before"] = {"val_acc_epoch1": [0.80, 0.83, 0.77]}
        text = bn_report.headline(summary("variant", values), SEEDS, "", self.config)
        self.assertIn("MLP at rate 0.05: BN before 0.900 ± 0.010 vs without 0.800 ± 0.010: "
                      "+0.100 (an effect)", text)
        self.assertIn("CNN at rate 0.01: BN before 0.800 ± 0.030 vs without 0.800 ± 0.010: "
                      "+0.000 (within noise)", text)
        self.assertIn("MLP at batch size 4:", text)

    def test_notes_and_agreement_follow_the_numbers(self):
        notes = " ".join(bn_report.notes(self._table(0.80, 0.90), self.config))
        self.assertIn("with BN before the activation the net learns faster per epoch", notes)
        self.assertIn("takes 2.00x the time", notes)
        notes = " ".join(bn_report.notes(self._table(0.90, 0.80), self.config))
        self.assertIn("does NOT learn faster per epoch", notes)
        self.assertStartsWith(bn_report.agreement(self._table(0.80, 0.805), self.config),
                              "agrees: the book's placements differ by 0.0004")
        self.assertStartsWith(bn_report.agreement(self._table(0.80, 0.90), self.config),
                              "differs:")


class GradientsReportTest(tf.test.TestCase):
    config = gradients.Config()

    def test_seed_values(self):
        v = gradients_report.seed_values("relu:he_normal", np.array([0.0, 0.01, 1.0]), 0.9)
        self.assertEqual(v["zero_grad_layers"], 1)
        self.assertAllClose(v["grad_ratio_log10"], 2.0)
        self.assertEqual(v["gradients"], "vanish toward the first layers")

    def test_headline_and_agreement(self):
        table = per_seed("variant", {
            "sigmoid:random_normal": {"grad_ratio_log10": [5.0, 6.0, 5.5], "val_acc": [0.1] * 3,
                                      "gradients": ["vanish toward the first layers"] * 3},
            "relu:he_normal": {"grad_ratio_log10": [0.3, 0.4, 0.5], "val_acc": [0.9, 0.91, 0.92],
                               "gradients": ["stay within an order of magnitude"] * 3}})
        s = seed_summary(table, "variant", ["grad_ratio_log10", "val_acc"])
        text = gradients_report.headline(s, table, SEEDS, "", self.config)
        self.assertIn("sigmoid:random_normal 10^5.5 ± 0.5 (vanish toward the first layers in "
                      "3/3 seeds)", text)
        self.assertIn("best vs worst relu:he_normal 0.910 ± 0.010 vs sigmoid:random_normal "
                      "0.100 ± 0.000: +0.810 (an effect)", text)
        self.assertStartsWith(gradients_report.agreement(table), "agrees: ")
        table.loc[0, "gradients"] = "stay within an order of magnitude"
        self.assertEqual(gradients_report.agreement(table),
                         "does not agree: sigmoid:random_normal gradients vanish toward the "
                         "first layers in 2/3 seeds; relu:he_normal gradients stay within an "
                         "order of magnitude in 3/3 seeds.")
        self.assertStartsWith(gradients_report.agreement(table.assign(variant="x")),
                              "not tested")


class InitializationReportTest(tf.test.TestCase):
    config = initialization.Config()

    def _table(self, relu_gap: float, tanh_gap: float) -> pd.DataFrame:
        rows = {"relu:he_normal": (True, 0.9), "relu:glorot_uniform": (False, 0.9 - relu_gap),
                "tanh:glorot_uniform": (True, 0.8), "tanh:he_normal": (False, 0.8 - tanh_gap)}
        return per_seed("variant", {v: {"activation": [v.split(":")[0]] * 2,
                                        "matched": [m] * 2, "val_acc_epoch1": [a, a],
                                        "val_acc": [a, a + 0.01]} for v, (m, a) in rows.items()})

    def test_headline_and_every_agreement(self):
        table = self._table(0.3, 0.2)
        s = seed_summary(table, "variant", ["val_acc_epoch1", "val_acc"])
        text = init_report.headline(s, table, (42, 43), "it is slow", self.config)
        self.assertIn("2 seeds (42, 43; fewer because it is slow)", text)
        self.assertIn("relu: matched he_normal 0.905 ± 0.007 vs mismatched glorot_uniform "
                      "0.605 ± 0.007: +0.300 (an effect)", text)
        self.assertStartsWith(init_report.agreement(s, table), "agrees: ")
        table = self._table(0.3, -0.2)
        s = seed_summary(table, "variant", ["val_acc_epoch1", "val_acc"])
        self.assertEqual(init_report.agreement(s, table),
                         "partly agrees: the matched initializer is ahead (not within noise) "
                         "for 1 of 2 activations (relu).")
        table = self._table(-0.3, -0.2)
        s = seed_summary(table, "variant", ["val_acc_epoch1", "val_acc"])
        self.assertStartsWith(init_report.agreement(s, table), "does not agree")
        only = table[table["matched"]]
        s = seed_summary(only, "variant", ["val_acc"])
        self.assertStartsWith(init_report.agreement(s, only), "not tested")


class ActivationsReportTest(tf.test.TestCase):
    config = activations.Config()

    def test_headline_and_agreement(self):
        s = summary("activation", {"selu": {"val_acc": [0.96, 0.97]},
                                   "relu": {"val_acc": [0.90, 0.91]},
                                   "elu": {"val_acc": [0.955, 0.975]}})
        text = activations_report.headline(s, (42, 43), "", self.config)
        self.assertIn("best first: selu, elu, relu; best vs runner-up: selu 0.965 ± 0.007 vs "
                      "elu 0.965 ± 0.014: +0.000 (within noise)", text)
        self.assertEqual(activations_report.agreement(s),
                         "agrees: selu is ahead of ReLU by +0.0600 (an effect).")
        s = summary("activation", {"selu": {"val_acc": [0.90, 0.93]},
                                   "relu": {"val_acc": [0.91, 0.92]}})
        self.assertIn("within noise", activations_report.agreement(s))
        s = summary("activation", {"selu": {"val_acc": [0.80, 0.81]},
                                   "relu": {"val_acc": [0.91, 0.92]}})
        self.assertIn("(behind)", activations_report.agreement(s))
        s = summary("activation", {"selu": {"val_acc": [0.95]}, "relu": {"val_acc": [0.9]}})
        self.assertStartsWith(activations_report.agreement(s), "agrees on one seed only")
        self.assertStartsWith(activations_report.agreement(s[s["activation"] == "selu"]),
                              "not tested")

    def _table(self, relu_dead: float) -> pd.DataFrame:
        rows = []
        for part in ("compare", "dying_relu"):
            for a in ("relu", "elu"):
                rows.append({"part": part, "activation": a, "optimizer": "adam",
                             "learning_rate": 0.01, "epochs": 5, "val_acc": 0.9,
                             "best_val_acc": 0.92, "best_epoch": 2, "s_per_epoch": 3.0,
                             "dead_init": 0.0, "dead_final": relu_dead if a == "relu" else 0.0})
        return pd.DataFrame(rows)

    def test_dying_relu_notes(self):
        notes = " ".join(activations_report.notes(self._table(0.57), self.config, (1.0, 1.0)))
        self.assertIn("Why a ReLU net stops improving: 57% of its units output 0", notes)
        self.assertIn("peaked at epoch 2 (0.9200) and ended at 0.9000", notes)
        notes = " ".join(activations_report.notes(self._table(0.05), self.config, (1.0, 1.0)))
        self.assertIn("this run does not show the dying-ReLU effect", notes)


class ClippingReportTest(tf.test.TestCase):
    config = clipping.Config()

    def test_headline_and_agreement(self):
        s = summary("clipping", {"none": {"val_acc": [0.10, 0.11, 0.10], "diverged": [1, 1, 0]},
                                 "clipnorm": {"val_acc": [0.5, 0.6, 0.55], "diverged": [0] * 3},
                                 "global_clipnorm": {"val_acc": [0.95, 0.94, 0.96],
                                                     "diverged": [0] * 3}})
        text = clipping_report.headline(s, SEEDS, "", self.config)
        self.assertIn("runs that diverged (NaN): none 2/3, clipnorm 0/3, global_clipnorm 0/3",
                      text)
        self.assertIn("global_clipnorm 0.950 ± 0.010 vs none 0.103 ± 0.006: +0.847 (an effect)",
                      text)
        self.assertEqual(clipping_report.agreement(s),
                         "agrees: global_clipnorm is ahead of no clipping by +0.8467 (an effect)"
                         "; without clipping 67% of the runs diverged.")
        s = summary("clipping", {"none": {"val_acc": [0.9, 0.95], "diverged": [0, 0]},
                                 "clipvalue": {"val_acc": [0.92, 0.91], "diverged": [0, 0]}})
        self.assertIn("(within noise)", clipping_report.agreement(s))
        self.assertStartsWith(clipping_report.agreement(s[s["clipping"] == "none"]),
                              "not tested")

    def test_notes_diverged_stuck_and_stable(self):
        base = {"threshold": 1.0, "steps": 100, "val_acc": 0.9, "test_acc": 0.9,
                "final_loss": 0.3, "grad_norm_init": 1.0, "grad_norm_median": 2.0,
                "grad_norm_p99": 5.0, "grad_norm_max": 50.0, "grad_norm_end": 1.0}
        table = pd.DataFrame([{**base, "clipping": "none", "diverged_at_step": 40},
                              {**base, "clipping": "clipvalue", "diverged_at_step": -1,
                               "final_loss": np.log(10)},
                              {**base, "clipping": "clipnorm", "diverged_at_step": -1}])
        notes = " ".join(clipping_report.notes(table, self.config))
        self.assertIn("without clipping the loss became NaN at step 40", notes)
        self.assertIn("but it is stuck: its final loss 2.303 is ln 10", notes)
        table.loc[0, "diverged_at_step"] = -1
        self.assertIn("this run did NOT diverge",
                      " ".join(clipping_report.notes(table, self.config)))


class TransferReportTest(tf.test.TestCase):
    config = transfer.Config()

    def test_headline_and_agreement(self):
        s = summary("variant", {"scratch": {"test_error": [0.40, 0.38, 0.36]},
                                "fine_tuned": {"test_error": [0.26, 0.25, 0.27]}})
        text = transfer_report.headline(s, SEEDS, "", self.config)
        self.assertIn("test error B on A (fine-tuned) 0.260 ± 0.010 vs B from scratch 0.380 ± "
                      "0.020: -0.120 (an effect), a -32% change of the mean error", text)
        self.assertEqual(transfer_report.agreement(s),
                         "agrees: transfer lowers the error beyond the spread over seeds, "
                         "-31.6% here vs -24.5% in the book (one seed).")
        s = summary("variant", {"scratch": {"test_error": [0.40, 0.30]},
                                "fine_tuned": {"test_error": [0.36, 0.32]}})
        self.assertTrue(transfer_report.agreement(s).endswith("within noise."))
        s = summary("variant", {"scratch": {"test_error": [0.20, 0.21]},
                                "fine_tuned": {"test_error": [0.30, 0.31]}})
        self.assertTrue(transfer_report.agreement(s).endswith("transfer raises the error."))
        s = summary("variant", {"scratch": {"test_error": [0.4]},
                                "fine_tuned": {"test_error": [0.3]}})
        self.assertStartsWith(transfer_report.agreement(s), "agrees on one seed only")


class OptimizersReportTest(tf.test.TestCase):
    config = optimizers.Config()

    def test_headline_and_agreement(self):
        s = summary("optimizer", {
            "sgd": {"val_acc_epoch1": [0.90, 0.91], "val_acc": [0.95, 0.96]},
            "adam": {"val_acc_epoch1": [0.95, 0.96], "val_acc": [0.97, 0.976]},
            "momentum": {"val_acc_epoch1": [0.90, 0.91], "val_acc": [0.94, 0.95]},
            "adagrad": {"val_acc_epoch1": [0.85, 0.86], "val_acc": [0.90, 0.91]}})
        text = optimizers_report.headline(s, (42, 43), "", self.config)
        self.assertIn("best first: adam, sgd, momentum, adagrad", text)
        self.assertIn("best vs plain SGD: adam 0.973 ± 0.004 vs sgd 0.955 ± 0.007: +0.018 (an "
                      "effect)", text)
        self.assertIn("after epoch 1, best vs plain SGD", text)
        self.assertStartsWith(optimizers_report.agreement(s, self.config),
                              "agrees: AdaGrad ranks last here")
        s.loc[s["optimizer"] == "adagrad", "val_acc_mean"] = 0.99
        self.assertStartsWith(optimizers_report.agreement(s, self.config),
                              "does not agree: AdaGrad ranks not last")
        s = s[s["optimizer"] != "adagrad"]
        self.assertStartsWith(optimizers_report.agreement(s, self.config),
                              "partly comparable (AdaGrad not run)")
        self.assertStartsWith(optimizers_report.agreement(s[s["optimizer"] != "momentum"],
                                                          self.config), "not comparable")


class SchedulesReportTest(tf.test.TestCase):
    config = schedules.Config()

    def test_headline_and_agreement(self):
        s = summary("variant", {"cnn 1cycle": {"test_acc": [0.993, 0.994]},
                                "cnn constant": {"test_acc": [0.986, 0.988]},
                                "mlp 1cycle": {"test_acc": [0.980, 0.970]},
                                "mlp constant": {"test_acc": [0.975, 0.976]}})
        table = pd.DataFrame({"model": ["mlp", "mlp"], "schedule": ["1cycle", "power"],
                              "test_acc": [0.98, 0.97]})
        text = schedules_report.headline(s, table, (42, 43), "", self.config)
        self.assertIn("CNN after 3 epoch(s): 1cycle 0.994 ± 0.001 vs constant 0.987 ± 0.001: "
                      "+0.007 (an effect)", text)
        self.assertIn("best of the 2 MLP schedules with seed 42: 1cycle (0.9800)", text)
        self.assertEqual(schedules_report.agreement(s),
                         "no book figure to compare with; here on the CNN 1cycle is ahead (an "
                         "effect) (+0.0065), on the MLP 1cycle is not ahead beyond noise "
                         "(-0.0005).")
        one = summary("variant", {"cnn 1cycle": {"test_acc": [0.99]},
                                  "cnn constant": {"test_acc": [0.98]}})
        self.assertIn("ahead on one seed", schedules_report.agreement(one))
        self.assertStartsWith(schedules_report.agreement(one[:1]), "not tested")


class RegularizationReportTest(tf.test.TestCase):
    config = regularization.Config()

    def test_headline_and_agreement(self):
        s = summary("variant", {
            "none": {"train_val_gap": [0.05, 0.06], "val_acc": [0.95, 0.95]},
            "l2": {"train_val_gap": [0.02, 0.025], "val_acc": [0.955, 0.96]},
            "dropout": {"train_val_gap": [0.04, 0.07], "val_acc": [0.956, 0.957]}})
        text = regularization_report.headline(s, (42, 43), "", self.config)
        self.assertIn("l2 0.0225 ± 0.0035 vs none 0.0550 ± 0.0071: -0.0325 (an effect)", text)
        self.assertIn("dropout 0.0550 ± 0.0212 vs none", text)
        self.assertIn("best validation accuracy l2 0.9575 ± 0.0035", text)
        self.assertEqual(regularization_report.agreement(s),
                         "no book figure to compare with; here 1 of 2 regularizers shrink the "
                         "gap beyond noise (l2).")
        self.assertStartsWith(regularization_report.agreement(s[s["variant"] == "l2"]),
                              "not tested")


class CnnReportTest(tf.test.TestCase):
    config = cnn_hparams.Config()

    def test_best_configurations_headline_and_agreement(self):
        table = pd.DataFrame({"optimizer": ["sgd", "sgd", "adam"], "kernel_size": [3, 5, 3],
                              "pooling": ["max", "avg", "max"], "val_acc": [0.93, 0.94, 0.98]})
        best = cnn_report.best_per_optimizer(table)
        self.assertEqual([cnn_report.variant_name(r) for _, r in best.iterrows()],
                         ["sgd: kernel 5, avg pooling", "adam: kernel 3, max pooling"])
        s = summary("variant", {"adam: kernel 3, max pooling": {"val_acc": [0.98, 0.979]},
                                "sgd: kernel 5, avg pooling": {"val_acc": [0.94, 0.93]}})
        text = cnn_report.headline(s, (42, 43), "", self.config)
        self.assertIn("best first: adam: kernel 3, max pooling; sgd: kernel 5, avg pooling", text)
        self.assertNotIn("best vs worst", text)
        self.assertEqual(cnn_report.agreement(s), "agrees: adam +0.0445 over plain SGD (an "
                                                  "effect), each at its best configuration.")
        s = summary("variant", {"adam: kernel 3, max pooling": {"val_acc": [0.93, 0.95]},
                                "sgd: kernel 5, avg pooling": {"val_acc": [0.94, 0.93]}})
        self.assertStartsWith(cnn_report.agreement(s), "does not agree")
        self.assertStartsWith(cnn_report.agreement(s[:1]), "not tested")


class GradientDescentReportTest(tf.test.TestCase):
    config = gradient_descent.Config()

    def _summary(self, mini: list[float], full: list[float]) -> pd.DataFrame:
        return summary("variant", {
            "mini-batch 32": {"val_loss_at_common_time": mini, "val_loss": mini,
                              "images_per_s": [9000.0, 9100.0]},
            "batch GD (55000)": {"val_loss_at_common_time": full, "val_loss": full,
                                 "images_per_s": [20000.0, 21000.0]}})

    def test_headline_and_agreement(self):
        s = self._summary([0.20, 0.21], [1.60, 1.70])
        text = gd_report.headline(s, (42, 43), "", self.config)
        self.assertIn("the lowest validation loss first: mini-batch 32, batch GD (55000); "
                      "best vs runner-up: "
                      "mini-batch 32 0.205 ± 0.007 vs batch GD (55000) 1.650 ± 0.071: -1.445 "
                      "(an effect)", text)
        self.assertIn("throughput batch GD (55000) 20,500 vs mini-batch 32 9,050 images/s", text)
        self.assertStartsWith(gd_report.agreement(s), "agrees: mini-batch 32 has the lowest")
        self.assertIn("(within noise)", gd_report.agreement(self._summary([0.5, 0.6],
                                                                          [0.55, 0.62])))
        self.assertStartsWith(gd_report.agreement(self._summary([0.9, 0.91], [0.5, 0.51])),
                              "does not agree: batch GD (55000)")
        self.assertStartsWith(gd_report.agreement(s[:1]), "not tested")


class LossesReportTest(tf.test.TestCase):
    config = losses.Config()

    def test_headline_agreement_and_notes(self):
        s = summary("loss", {"crossentropy": {"val_acc_epoch1": [0.9, 0.91],
                                              "val_acc": [0.96, 0.966]},
                             "mse": {"val_acc_epoch1": [0.5, 0.6], "val_acc": [0.87, 0.88]}})
        text = losses_report.headline(s, (42, 43), "", self.config)
        self.assertStartsWith(text, "After 5 epoch(s) of sgd at 0.01, 2 seeds (42, 43): "
                                    "validation accuracy cross-entropy 0.963 ± 0.004 vs MSE "
                                    "0.875 ± 0.007: +0.088 (an effect); after epoch 1:")
        self.assertStartsWith(losses_report.agreement(s), "agrees: cross-entropy ahead")
        s.loc[s["loss"] == "mse", "val_acc_mean"] = 0.99
        self.assertIn("MSE ahead", losses_report.agreement(s))
        table = pd.DataFrame([
            {"loss": "crossentropy", "task": "10 classes", "val_acc_epoch1": 0.9, "val_acc": 0.96},
            {"loss": "mse", "task": "10 classes", "val_acc_epoch1": 0.5, "val_acc": 0.87},
            {"loss": "binary_crossentropy", "task": "5 vs rest", "val_acc_epoch1": 0.97,
             "val_acc": 0.98, "test_acc": 0.98, "majority_acc": 0.91, "test_auc": 0.99,
             "test_precision": np.nan, "test_recall": 0.0}])
        grads = pd.DataFrame({"margin": [0.0, 12.0], "p_wrong": [0.1, 0.9999],
                              "ce_grad_norm": [0.95, 1.41], "mse_grad_norm": [0.02, 1.3e-5],
                              "ce_over_mse": [50.0, 1.1e5]})
        histories = {"mse": SimpleNamespace(history={"val_accuracy": [0.5, 0.8, 0.92]})}
        notes = " ".join(losses_report.notes(table, grads, histories, self.config))
        self.assertIn("MSE converges more slowly here. MSE needed 3 epoch(s)", notes)
        self.assertIn("(precision NaN: no image predicted positive)", notes)
        table.loc[1, "val_acc"] = 0.97
        histories = {"mse": SimpleNamespace(history={"val_accuracy": [0.5, 0.6]})}
        notes = " ".join(losses_report.notes(table, grads, histories, self.config))
        self.assertIn("does NOT converge more slowly", notes)
        self.assertIn("MSE never reached", notes)


class ImbalanceReportTest(tf.test.TestCase):
    config = imbalance.Config()

    def test_headline_agreement_and_the_fish_link(self):
        s = summary("treatment", {
            "plain": {"minority_recall": [0.55, 0.60, 0.58], "minority_auc": [0.995] * 3},
            "class_weights": {"minority_recall": [0.70, 0.72, 0.71],
                              "minority_auc": [0.996] * 3}})
        text = imbalance_report.headline(s, SEEDS, "", self.config)
        self.assertIn("plain cross-entropy gives it a test AUC of 0.9950 ± 0.0000 and a recall "
                      "of 0.577 ± 0.025; recall vs plain: class_weights +0.133 (an effect)", text)
        agreement = imbalance_report.agreement(s)
        self.assertStartsWith(agreement, "does not agree: the rare digit's AUC is 0.9950")
        self.assertIn("`make recipe-fish-imbalance`", agreement)
        s.loc[s["treatment"] == "plain", "minority_auc_mean"] = 0.56
        self.assertStartsWith(imbalance_report.agreement(s), "agrees")
        self.assertStartsWith(imbalance_report.agreement(s[s["treatment"] != "plain"]),
                              "not tested here")
        counts = pd.DataFrame({"digit": range(10), "train_before": [10] * 10, "train": [10] * 10,
                               "valid": [1] * 10, "test": [1] * 10})
        sections = dict(imbalance_report.sections(counts, {}, {}, self.config))
        self.assertIn("[runs/fish_imbalance/](../../fish_imbalance/)",
                      sections["Where the course's claim is tested"])

    def test_notes_three_verdicts_on_the_course_claim(self):
        def table(auc: float, others: float) -> pd.DataFrame:
            return pd.DataFrame([{"treatment": "plain", "minority_train": 54, "test_acc": 0.97,
                                  "minority_recall": 0.58, "minority_precision": 0.99,
                                  "minority_auc": auc, "others_min_recall": 0.95,
                                  "others_median_auc": others, "lowest_recall_class": 5,
                                  "lagging_found": "none"}])

        self.assertIn("reproduces the course's", imbalance_report.notes(
            table(0.55, 0.95), self.config)[0])
        self.assertIn("shows a clearly lagging class", imbalance_report.notes(
            table(0.80, 0.99), self.config)[0])
        self.assertIn("does NOT reproduce an AUC stuck near 0.55", imbalance_report.notes(
            table(0.995, 0.999), self.config)[0])


class ResidualReportTest(tf.test.TestCase):
    config = residual.Config()

    def test_plan_headline_and_agreement(self):
        self.assertEqual(residual_report.headline_plan(self.config), [
            ("sigmoid", False, "none"), ("sigmoid", True, "none"), ("sigmoid", True, "before"),
            ("relu", False, "none"), ("relu", True, "none"), ("relu", True, "before")])

        def values(sig_gain: float, relu_gain: float) -> dict:
            return {"sigmoid plain": {"test_acc": [0.11, 0.12], "diverged": [0, 0]},
                    "sigmoid residual": {"test_acc": [0.11 + sig_gain, 0.12 + sig_gain],
                                         "diverged": [0, 0]},
                    "relu plain": {"test_acc": [0.90, 0.91], "diverged": [0, 0]},
                    "relu residual": {"test_acc": [0.90 + relu_gain, 0.91 + relu_gain],
                                      "diverged": [1, 0]},
                    "relu residual + BN before": {"test_acc": [0.94, 0.95], "diverged": [0, 0]}}

        s = summary("variant", values(0.4, 0.02))
        text = residual_report.headline(s, (42, 43), "", self.config)
        self.assertIn("sigmoid: with skips 0.515 ± 0.007 vs without 0.115 ± 0.007: +0.400 (an "
                      "effect)", text)
        self.assertIn("relu residual + BN before 0.945 ± 0.007", text)
        self.assertIn("diverged: relu residual in 1/2", text)
        self.assertStartsWith(residual_report.agreement(s, self.config), "agrees: ")
        s = summary("variant", values(0.4, -0.005))
        self.assertEqual(residual_report.agreement(s, self.config),
                         "partly agrees: skip connections are ahead (not within noise) for 1 of "
                         "2 activations (sigmoid).")
        s = summary("variant", values(-0.05, -0.05))
        self.assertStartsWith(residual_report.agreement(s, self.config), "does not agree")
        self.assertStartsWith(residual_report.agreement(s[s["variant"] == "relu plain"],
                                                        self.config), "not tested")
