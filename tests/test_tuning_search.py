"""Tests of python -m tuning.search: each tuner end to end, the outputs, and bad input."""

import contextlib
import dataclasses
import io
import json
import os
import shutil
import warnings
from types import SimpleNamespace
from unittest import mock

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from absl.testing import parameterized
from PIL import Image

from recipes.runs import mark_unfinished, write_json
from tuning import search
from tuning.config import CONFIG_FILE, SearchConfig
from tuning.data import TuningData, load_data
from tuning.final import evaluate, score_checkpoint
from tuning.hypermodels import make_hypermodel
from tuning.results import plot_hyperparameters, plot_objective, trials_table
from tuning.tuners import RECORD_NAME


def _space(model, input_shape):
    hp = kt.HyperParameters()
    make_hypermodel(model, input_shape, 3).build(hp)
    return [p.name for p in hp.space]


def _parse_error(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        search.parse_args(argv)
    return exit_info.value.code, err.getvalue()


def _fish_folder(root, classes=(("bass", 20, 0), ("trout", 10, 2)), size=16, seed=0):
    """Imbalanced classes of photos, one colour each (default: 20 reddish 'bass', 10 bluish
    'trout')."""
    rng = np.random.default_rng(seed)
    for name, count, channel in classes:
        os.makedirs(os.path.join(root, name))
        for i in range(count):
            img = rng.integers(0, 60, (size, size, 3)).astype("uint8")
            img[..., channel] = 200
            Image.fromarray(img).save(os.path.join(root, name, f"{i}.png"))
    return root


class SearchTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)
        self.dir = self.get_temp_dir()

    @parameterized.parameters(
        ("random", "fish", "mlp"), ("hyperband", "synthetic", "mlp"),
        ("bayesian", "synthetic", "mlp"), ("grid", "synthetic", "cnn"))
    def test_quick_search_writes_trials_and_best_model(self, tuner, data, model):
        argv = ["--data", data, "--model", model, "--tuner", tuner, "--quick", "--max-trials",
                "2", "--directory", self.dir, "--project-name", tuner]
        if data == "fish":  # one folder per class, split as ch11.fish splits it
            argv += ["--image-size", "16", "--run-eagerly", "--compare-run", "none",
                     "--data-dir", _fish_folder(os.path.join(self.dir, "fish"))]
        else:
            argv += ["--subset", "120"]
        out = io.StringIO()
        with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.assertEqual(search.main(argv), 0)
        # Scoring the best trial's checkpoint reads only the model's weights, quietly.
        self.assertEmpty([w for w in caught if "Skipping variable loading" in str(w.message)])
        project = os.path.join(self.dir, tuner)
        table = pd.read_csv(os.path.join(project, "trials.csv"))
        shape = (16, 16, 3) if data == "fish" else (12, 12)
        names = _space(model, shape)
        # A column for every hyperparameter, in declaration order.
        hp_cols = list(table.columns[3:3 + len(names)])
        self.assertEqual(hp_cols, names)
        self.assertEqual(list(table.columns[:3]), ["trial_id", "status", "worker"])
        self.assertLen(table, 2)
        self.assertEqual(list(table["status"]), ["COMPLETED"] * 2)
        self.assertEqual(list(table["worker"]), ["tuner0"] * 2)
        self.assertEqual(list(table["epochs_run"]), [1, 1])
        self.assertAllInRange(table["best_objective"].to_numpy(), 0.0, 1.0)
        if tuner == "hyperband":
            self.assertEqual(list(table["hb_epochs"]), [1, 1])
        self.assertIn("trial 1/2 start", out.getvalue())
        results = json.loads(open(os.path.join(project, "results.json")).read())
        self.assertAllClose(results["best_objective"], table["best_objective"].max())
        saved = json.loads(open(os.path.join(project, CONFIG_FILE)).read())
        self.assertEqual(saved, results["config"])
        # The saved config is the command line's (resumable: the project exists now; it is
        # finished, so --resume must ask for --retrain-final).
        self.assertEqual(
            dataclasses.replace(SearchConfig(**saved), resume=True, retrain_final=True),
            search.parse_args([*argv, "--resume", "--retrain-final"]))
        best_row = table.loc[table["best_objective"].idxmax()]
        self.assertEqual(str(results["best_trial"]), str(best_row["trial_id"]))
        for name in names:  # the best hyperparameters are the best row's
            value = results["best_hyperparameters"].get(name)
            if isinstance(value, float):
                self.assertAllClose(value, best_row[name])
            elif value is not None:
                self.assertEqual(str(value), str(best_row[name]))
        # The best model reloads with plain load_model and reproduces the test metrics.
        reloaded = keras.models.load_model(os.path.join(project, "best_model.keras"))
        if data == "fish":
            test = load_data("fish", data_dir=argv[-1], image_size=16, seed=42)
            self.assertEqual(len(test.y_test), 3)  # half of the 20% held out for validation
        else:
            test = load_data("synthetic", subset=120, seed=42)
        proba = reloaded.predict(test.x_test, verbose=0)
        self.assertAllClose(results["test"]["accuracy"],
                            np.mean(proba.argmax(1) == test.y_test))
        self.assertEqual(results["test"]["test_size"], len(test.y_test))
        self.assertEqual(sorted(results["test"]["per_class_auc"]), sorted(test.class_names))
        report = open(os.path.join(project, "report.md")).read()
        self.assertIn("## Best model on the test set", report)
        ckpt = results["test"]["checkpoint"]
        self.assertEqual(ckpt["test_size"], len(test.y_test))
        self.assertIn(f"own checkpoint (trained on the training split only, the weights of "
                      f"its best validation epoch) on the same test photos: accuracy "
                      f"**{ckpt['accuracy']:.4f}**", report)
        if data == "fish":  # no test folder: the report says where the test photos came from
            self.assertIn("- No --test-dir: the test figures come from a held-out part of the "
                          "validation split, not from a separate test folder.", report)
            self.assertIn("No comparison with the hand recipe (--compare-run none).", report)
        for png in ("objective_per_trial.png", "hyperparameters_vs_objective.png"):
            self.assertGreater(os.path.getsize(os.path.join(project, png)), 1000)

    def test_the_best_trials_checkpoint_is_scored_quietly_or_the_error_said(self):
        def build(hp):
            model = keras.Sequential([keras.Input((4,)),
                                      keras.layers.Dense(hp.Int("units", 4, 8), "relu"),
                                      keras.layers.Dense(2, activation="softmax")])
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            return model

        rng = np.random.default_rng(0)
        x = rng.normal(size=(64, 4)).astype("float32")
        y = (x[:, 0] > 0).astype("int64")
        tuner = kt.RandomSearch(build, objective="val_accuracy", max_trials=1, seed=0,
                                directory=self.dir, project_name="ckpt")
        tuner.search(x, y, validation_data=(x, y), epochs=3, verbose=0)
        trial = tuner.oracle.get_best_trials(1)[0]
        data = SimpleNamespace(x_test=x, y_test=y, class_names=["neg", "pos"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scores = score_checkpoint(tuner, trial, data)
        # Adam's state is in the checkpoint too; a model that only predicts skips it quietly.
        self.assertEmpty([w for w in caught if "Skipping variable loading" in str(w.message)])
        expected = build(trial.hyperparameters)
        with warnings.catch_warnings():  # the same optimizer state, skipped here by hand
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
            expected.load_weights(os.path.join(self.dir, "ckpt", f"trial_{trial.trial_id}",
                                               "checkpoint.weights.h5"))
        correct = int(np.sum(expected.predict(x, verbose=0).argmax(1) == y))
        self.assertEqual((scores["correct"], scores["test_size"]), (correct, 64))
        self.assertAllClose(scores["accuracy"], correct / 64)
        os.remove(os.path.join(self.dir, "ckpt", f"trial_{trial.trial_id}",
                               "checkpoint.weights.h5"))
        self.assertRegex(score_checkpoint(tuner, trial, data)["error"],
                         rf"^trial {trial.trial_id}'s checkpoint could not be loaded: \w+")

    def test_the_checkpoint_paragraph_explains_the_gap_it_finds(self):
        from tuning.final import _checkpoint_text

        ckpt = {"accuracy": 0.95, "correct": 888, "test_size": 934, "mean_auc": 0.9931}
        worse = _checkpoint_text({"correct": 748, "checkpoint": ckpt}, "0022")
        self.assertIn("accuracy **0.9500** (888 of 934), mean AUC 0.9931. The retraining on "
                      "train + validation scores -140 photo(s) against it: it has more photos "
                      "but no validation split to stop on", worse)
        better = _checkpoint_text({"correct": 890, "checkpoint": ckpt}, "0022")
        self.assertIn("scores +2 photo(s) against it: the validation photos it also trains "
                      "on make up for having no split to stop on.", better)
        self.assertEqual(_checkpoint_text({"correct": 1, "checkpoint": {"error": "gone"}}, "7"),
                         "The search's own checkpoint was not scored: gone.")

    def test_trials_table_and_plots_from_an_oracle(self):
        hp = kt.HyperParameters()
        hp.Int("depth", 1, 3)
        hp.Choice("optimizer", ["sgd", "momentum"])
        with hp.conditional_scope("optimizer", ["momentum"]):
            hp.Choice("momentum", [0.9, 0.99])

        def trial(trial_id, status, values, score=None, best_step=None):
            t = kt.engine.trial.Trial(hp.copy(), trial_id=trial_id, status=status)
            t.hyperparameters.values = values
            t.score, t.best_step = score, best_step
            if score is not None:
                t.metrics.register("val_accuracy", direction="max")
                t.metrics.update("val_accuracy", score, step=best_step)
            return t

        trials = {
            "1": trial("1", "COMPLETED", {"depth": 3, "optimizer": "momentum", "momentum": 0.99,
                                          "tuner/epochs": 9, "tuner/initial_epoch": 3,
                                          "tuner/bracket": 1, "tuner/round": 1,
                                          "tuner/trial_id": "0"}, 0.9, 0),
            "0": trial("0", "COMPLETED", {"depth": 2, "optimizer": "sgd"}, 0.8, 2),
            "2": trial("2", "FAILED", {"depth": 1, "optimizer": "sgd"}),
        }
        oracle = SimpleNamespace(get_space=lambda: hp, trials=trials)
        os.makedirs(os.path.join(self.dir, "trial_1"))
        with open(os.path.join(self.dir, "trial_1", RECORD_NAME), "w") as f:
            json.dump({"worker": "worker1", "epochs_run": 6, "seconds": 12.5}, f)
        table = trials_table(oracle, self.dir)
        self.assertEqual(list(table.columns), [
            "trial_id", "status", "worker", "depth", "optimizer", "momentum", "hb_epochs",
            "hb_initial_epoch", "hb_bracket", "hb_round", "hb_from_trial", "best_objective",
            "best_epoch", "epochs_run", "seconds", "val_accuracy"])
        self.assertEqual(list(table["trial_id"]), ["0", "1", "2"])
        self.assertEqual(list(table["worker"]), ["", "worker1", ""])
        self.assertEqual(str(table["depth"].dtype), "Int64")
        self.assertAllClose(table["momentum"].to_numpy(dtype=float), [np.nan, 0.99, np.nan])
        # Best epoch counted from the model's first: a continued trial adds its start.
        self.assertEqual(table["best_epoch"].tolist()[:2], [3, 4])
        self.assertTrue(pd.isna(table["best_epoch"][2]))
        self.assertAllClose(table["best_objective"].to_numpy(dtype=float), [0.8, 0.9, np.nan])
        self.assertEqual(table["epochs_run"].tolist()[1], 6)
        fig = plot_hyperparameters(table, "val_accuracy")
        self.assertEqual([ax.get_title() for ax in fig.axes[:3]],
                         ["depth", "optimizer", "momentum"])
        fig = plot_objective(table, "val_accuracy", "max")
        running_best = fig.axes[0].lines[0].get_ydata()
        self.assertAllClose(running_best, [0.8, 0.9, 0.9])

    def test_evaluate_uses_the_recipes_auc(self):
        """The test-set AUC is recipes.metrics' Mann-Whitney AUC; NaN for an absent class."""

        def fixed_output_model(k):  # softmax(log p) = p: the model outputs these rows
            return keras.Sequential([keras.Input((k,)), keras.layers.Softmax()])

        def data(y, proba, names):
            x = np.log(np.asarray(proba, dtype="float32"))
            return TuningData(x, y, x, y, x, np.asarray(y), class_names=names)

        # Class 1's pairs (pos, neg): (0.35 > 0.1), (0.35 < 0.4), (0.8 > both): 3 of 4.
        p1 = np.array([0.1, 0.4, 0.35, 0.8])
        test = evaluate(fixed_output_model(2), data(np.array([0, 0, 1, 1]),
                                                    np.stack([1 - p1, p1], axis=1), ["a", "b"]))
        self.assertAllClose(list(test["per_class_auc"].values()), [0.75, 0.75], atol=1e-6)
        self.assertAllClose(test["accuracy"], 0.75)
        self.assertEqual(test["test_size"], 4)
        # Class "c" is absent from the test labels: its AUC is NaN, the mean skips it.
        y = np.array([0, 0, 1])
        test = evaluate(fixed_output_model(3), data(y, np.eye(3)[y] * 0.8 + 0.1,
                                                    ["a", "b", "c"]))
        aucs = test["per_class_auc"]
        self.assertAllClose([aucs["a"], aucs["b"]], [1.0, 1.0])
        self.assertTrue(np.isnan(aucs["c"]))
        self.assertAllClose(test["mean_auc"], 1.0)
        self.assertNotIn("note", test)

    def test_defaults_depend_on_data_and_tuner(self):
        a = search.parse_args(["--directory", self.dir])
        self.assertEqual((a.data, a.model, a.tuner, a.max_trials, a.max_epochs, a.subset),
                         ("mnist", "cnn", "random", 10, 5, 12000))
        self.assertEqual((a.objective, a.project_name, a.imbalance, a.tuner_id),
                         ("val_accuracy", "mnist_cnn_random", "none", "tuner0"))
        a = search.parse_args(["--quick", "--tuner", "hyperband", "--directory", self.dir])
        self.assertEqual((a.max_trials, a.max_epochs, a.subset, a.project_name),
                         (3, 3, 1200, "mnist_cnn_hyperband_quick"))
        a = search.parse_args(["--data", "fish", "--data-dir", self.dir, "--directory", self.dir])
        self.assertEqual((a.imbalance, a.image_size, a.subset), ("class_weight", (64, 96), None))
        # Fish: Hyperband over the hand recipe's family, 9 epochs at most, patience 4.
        self.assertEqual((a.tuner, a.max_trials, a.max_epochs, a.patience, a.project_name,
                          a.run_eagerly, a.compare_run),
                         ("hyperband", None, 9, 4, "fish_cnn_hyperband", False, "auto"))
        a = search.parse_args(["--data", "fish", "--data-dir", self.dir, "--quick",
                               "--directory", self.dir])
        self.assertEqual((a.image_size, a.max_trials, a.max_epochs, a.run_eagerly),
                         ((32,), 3, 3, False))
        a = search.parse_args(["--data", "fish", "--data-dir", self.dir, "--model", "mlp",
                               "--tuner", "random", "--image-size", "48", "--directory",
                               self.dir])
        self.assertEqual((a.image_size, a.max_epochs, a.patience), ((48,), 5, 4))
        a = search.parse_args(["--no-retrain", "--directory", self.dir])
        self.assertFalse(a.retrain)

    def test_config_made_in_python_follows_the_same_rules(self):
        with self.assertRaisesRegex(ValueError, r"^--train-dir is only read with --data fish, "
                                                r"not --data mnist\.$"):
            SearchConfig(train_dir="/x")
        self.assertEqual(SearchConfig(data="fish", image_size=[64, 96]).image_size, (64, 96))
        with self.assertRaisesRegex(ValueError, r"^Unknown tuner 'tpe'\. Valid: random, "
                                                r"hyperband, bayesian, grid\.$"):
            SearchConfig(tuner="tpe")
        with self.assertRaisesRegex(ValueError, r"^patience must be >= 1, got 0\.$"):
            SearchConfig(patience=0)
        with self.assertRaisesRegex(ValueError, r"must be HOST:PORT .*got 'h:0'"):
            SearchConfig(distributed="chief", oracle=("h", 0))
        config = SearchConfig(model="mlp", quick=True, directory=self.dir)
        resolved = config.resolved()
        self.assertEqual(resolved.resolved(), resolved)
        self.assertEqual(search.parse_args(["--model", "mlp", "--quick", "--directory",
                                            self.dir]), resolved)
        self.assertEqual((resolved.max_trials, resolved.max_epochs, resolved.run_eagerly),
                         (3, 1, True))
        worker = SearchConfig(distributed="worker", oracle=("127.0.0.1", 8000)).resolved()
        self.assertEqual(worker.tuner_id, f"worker-{os.getpid()}")
        chief = search.parse_args(["--distributed", "chief", "--oracle", "127.0.0.1:8000",
                                   "--tuner-id", "x", "--directory", self.dir])
        self.assertEqual((chief.tuner_id, chief.oracle), ("chief", ("127.0.0.1", 8000)))
        # search_config.json holds the config's fields, and reads back into the same config.
        saved = json.loads(write_json(os.path.join(self.dir, CONFIG_FILE), resolved).read_text())
        self.assertEqual(list(saved), [f.name for f in dataclasses.fields(SearchConfig)])
        self.assertEqual(SearchConfig(**saved), resolved)

    @parameterized.parameters(
        (["--tuner", "tpe"], r"argument --tuner: invalid choice: 'tpe' \(choose from "
                             r"'?random'?, '?hyperband'?, '?bayesian'?, '?grid'?\)"),
        (["--model", "rnn"], r"argument --model: invalid choice: 'rnn' \(choose from "
                             r"'?cnn'?, '?mlp'?\)"),
        (["--data", "cifar"], r"argument --data: invalid choice: 'cifar' \(choose from "
                              r"'?mnist'?, '?fish'?, '?synthetic'?\)"),
        (["--data", "fish", "--train-dir", "/no/such"], r"--train-dir '/no/such' is not a "
                                                        r"folder: give a folder with one "
                                                        r"subfolder of photos per class\."),
        (["--data", "fish", "--data-dir", "/tmp", "--test-dir", "/no/test"],
         r"--test-dir '/no/test' is not a folder"),
        (["--data", "fish", "--train-dir", "/tmp", "--val-dir", "/no/val"],
         r"--val-dir '/no/val' is not a folder"),
        (["--data", "fish", "--data-dir", "/tmp", "--image-size", "64", "12"],
         r"The fish CNN space needs --image-size 16 or more \(a stride-2 stem and 3 pooled "
         r"blocks\), got 12\."),
        (["--data", "fish", "--data-dir", "/tmp", "--image-size", "64", "64"],
         r"--image-size lists a size twice: \(64, 64\)\."),
        (["--data", "fish", "--data-dir", "/tmp", "--model", "mlp", "--image-size", "32", "64"],
         r"--model mlp searches one --image-size"),
        (["--data", "fish", "--data-dir", "/tmp", "--test-split", "1.5"],
         r"test_split must be in \[0, 1\), got 1\.5"),
        (["--data", "fish", "--data-dir", "/tmp", "--test-from", "test"],
         r"argument --test-from: invalid choice: 'test'"),
        (["--data", "fish", "--data-dir", "/tmp", "--compare-run", "/no/run"],
         r"--compare-run '/no/run' is neither a run folder nor a file in one"),
        (["--compare-run", "/no/run"], r"--compare-run is only read with --data fish, not "
                                       r"--data mnist"),
        (["--test-dir", "/tmp"], r"--test-dir is only read with --data fish"),
        (["--objective", "auc"], r"argument --objective: invalid choice: 'auc'"),
        (["--precision", "float16"], r"argument --precision: invalid choice: 'float16'"),
        (["--max-trials", "0"], r"max_trials must be >= 1, got 0\."),
        (["--max-trials", "1.5"], r"argument --max-trials: invalid int value: '1.5'"),
        (["--max-epochs", "x"], r"argument --max-epochs: invalid int value: 'x'"),
        (["--subset", "-1"], r"subset must be >= 0, got -1\."),
        (["--image-size", "4"], r"image_size must be >= 8, got 4\."),
        (["--resume", "--overwrite"], r"--resume and --overwrite exclude each other"),
        (["--distributed", "chief"], r"--distributed chief\|worker and --oracle HOST:PORT "
                                     r"go together"),
        (["--distributed", "worker", "--oracle", "localhost"],
         r"argument --oracle: must be HOST:PORT \(e.g. 127.0.0.1:8000\), got 'localhost'"),
        (["--distributed", "worker", "--oracle", "h:1", "--tuner-id", "chief2"],
         r"A worker's --tuner-id must not contain 'chief'"),
        (["--data-dir", "/x"], r"--data-dir is only read with --data fish, not --data mnist"),
        (["--data", "fish", "--data-dir", "/no/such/folder"],
         r"--data-dir '/no/such/folder' is not a folder"),
        (["--start-barrier", "/tmp", "2"], r"--start-barrier is for workers"),
        (["--distributed", "worker", "--oracle", "h:1", "--start-barrier", "/tmp", "x"],
         r"--start-barrier DIR N: N must be an integer, got 'x'"),
        (["--seed", "-1"], r"error: seed must be >= 0, got -1\."),
        (["--retrain-final"], r"--retrain-final goes with --resume"),
        (["--resume", "--retrain-final", "--no-retrain"],
         r"--retrain-final and --no-retrain exclude each other"),
    )
    def test_bad_input_messages(self, argv, message):
        code, err = _parse_error([*argv, "--directory", self.get_temp_dir()])
        self.assertEqual(code, 2)
        self.assertRegex(err, message)

    def test_existing_project_asks_resume_or_overwrite(self):
        project = os.path.join(self.dir, "mnist_cnn_random")
        os.makedirs(os.path.join(project, "trial_0"))
        open(os.path.join(project, "oracle.json"), "w").write("{}")
        code, err = _parse_error(["--directory", self.dir])
        self.assertEqual(code, 2)
        self.assertIn(f"Project {project} already exists (1 trial(s)). Choose: --resume to "
                      "continue it (completed trials are kept) or --overwrite", err)
        self.assertTrue(search.parse_args(["--directory", self.dir, "--resume"]).resume)
        self.assertTrue(search.parse_args(["--directory", self.dir, "--overwrite"]).overwrite)
        open(os.path.join(project, "search_config.json"), "w").write(
            json.dumps({"model": "mlp", "tuner": "random"}))
        code, err = _parse_error(["--directory", self.dir, "--resume"])
        self.assertIn("it was created with model='mlp'", err)

    def test_overwrite_when_there_is_nothing_to_overwrite(self):
        argv = ["--data", "synthetic", "--model", "mlp", "--quick", "--max-trials", "1",
                "--subset", "120", "--directory", os.path.join(self.dir, "new"), "--overwrite"]
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(search.main(argv), 0)
        self.assertTrue(os.path.isfile(os.path.join(self.dir, "new", "synthetic_mlp_random_quick",
                                                    "trials.csv")))

    def test_directory_under_a_file_or_unwritable(self):
        a_file = os.path.join(self.dir, "notes.txt")
        open(a_file, "w").write("x")
        for directory in (a_file, os.path.join(a_file, "runs", "tuning")):
            code, err = _parse_error(["--directory", directory])
            self.assertEqual(code, 2)
            self.assertIn(f"error: --directory {directory!r}: {a_file!r} is a file, not a "
                          "folder. Choose another --directory.", err)
            self.assertNotIn("Traceback", err)
        if os.geteuid() == 0:  # root writes anywhere permissions allow: use a kernel folder
            locked = "/sys"
        else:
            locked = os.path.join(self.dir, "locked")
            os.mkdir(locked, 0o500)
        code, err = _parse_error(["--directory", os.path.join(locked, "runs")])
        self.assertEqual(code, 2)
        self.assertRegex(err, rf"error: --directory '{locked}/runs': cannot create a folder "
                              rf"in '{locked}' \((Operation not permitted|Permission denied)\)\. "
                              r"Choose a writable --directory\.")
        # A folder that does not exist yet under a writable one is fine (and not created).
        fresh = os.path.join(self.dir, "new", "tuning")
        self.assertEqual(search.parse_args(["--directory", fresh]).directory, fresh)
        self.assertEqual(os.listdir(self.dir), ["notes.txt"])

    def test_a_data_mistake_found_while_running_exits_2(self):
        one_class = os.path.join(self.dir, "fish")
        _fish_folder(one_class)
        shutil.rmtree(os.path.join(one_class, "trout"))
        argv = ["--data", "fish", "--data-dir", one_class, "--quick", "--directory", self.dir]
        for debug in ("", "1"):
            err = io.StringIO()
            with mock.patch.dict(os.environ, {"RECIPES_DEBUG": debug}), \
                    contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                self.assertEqual(search.main(argv), 2)
            self.assertIn("error: Classification needs at least 2 classes, found 1", err.getvalue())
            self.assertEqual("Traceback" in err.getvalue(), bool(debug))

    def test_resume_refuses_another_seed(self):
        project = os.path.join(self.dir, "mnist_cnn_random")
        os.makedirs(os.path.join(project, "trial_0"))
        open(os.path.join(project, "oracle.json"), "w").write("{}")
        write_json(os.path.join(project, CONFIG_FILE),
                   search.parse_args(["--directory", self.dir, "--seed", "7", "--resume"]))
        self.assertEqual(search.parse_args(["--directory", self.dir, "--seed", "7",
                                            "--resume"]).seed, 7)
        code, err = _parse_error(["--directory", self.dir, "--resume", "--seed", "99"])
        self.assertEqual(code, 2)
        self.assertIn(f"Cannot resume {project}: it was created with seed=7. Resume with the "
                      "same options", err)

    def test_resume_refuses_a_finished_search(self):
        project = os.path.join(self.dir, "mnist_cnn_random")
        os.makedirs(os.path.join(project, "trial_0"))
        open(os.path.join(project, "oracle.json"), "w").write("{}")
        write_json(os.path.join(project, "results.json"), {"seed": 42})
        argv = ["--directory", self.dir, "--resume"]
        code, err = _parse_error(argv)
        self.assertEqual(code, 2)
        self.assertIn(f"error: Project {project} is a finished search (1 trial(s); its "
                      "results.json and report.md are written): --resume has nothing to "
                      "continue and would overwrite them. Add --retrain-final", err)
        self.assertTrue(search.parse_args([*argv, "--retrain-final"]).retrain_final)
        mark_unfinished(project)  # killed before its end: resumable
        self.assertTrue(search.parse_args(argv).resume)

    def test_help_documents_every_option(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            search.parse_args(["--help"])
        for option in ("--data", "--data-dir", "--model", "--tuner", "--max-trials",
                       "--max-epochs", "--executions-per-trial", "--objective", "--seed",
                       "--directory", "--project-name", "--resume", "--overwrite", "--quick",
                       "--distributed", "--oracle", "--strategy", "--imbalance", "--train-dir",
                       "--val-dir", "--test-dir", "--test-from", "--test-split",
                       "--validation-split", "--compare-run", "val_macro_auc",
                       "val_rare_recall", "../shared/data/fish-train", "--retrain-final",
                       "UNFINISHED", "RECIPES_DEBUG"):
            self.assertIn(option, out.getvalue())

    @pytest.mark.slow
    def test_mnist_quick_search(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = search.main(["--quick", "--max-trials", "2", "--directory", self.dir,
                                "--strategy", "mirrored"])
        self.assertEqual(code, 0)
        project = os.path.join(self.dir, "mnist_cnn_random_quick")
        table = pd.read_csv(os.path.join(project, "trials.csv"))
        self.assertEqual(list(table.columns[3:3 + 16]), _space("cnn", (28, 28)))
        self.assertEqual(list(table["status"]), ["COMPLETED"] * 2)
        results = json.loads(open(os.path.join(project, "results.json")).read())
        self.assertEqual(results["test"]["test_size"], 500)
        self.assertIn("MNIST: 1,000 training, 200 validation", out.getvalue())
        self.assertIn("MirroredStrategy with 1 replica(s)", out.getvalue())
        reloaded = keras.models.load_model(os.path.join(project, "best_model.keras"))
        data = load_data("mnist", subset=1200, test_size=500)
        proba = reloaded.predict(data.x_test, verbose=0)
        self.assertAllClose(results["test"]["accuracy"], np.mean(proba.argmax(1) == data.y_test))
        self.assertGreater(results["test"]["accuracy"], 0.2)  # above chance (0.1)


def _fish_splits(root, size=24):
    """train/ val/ test/ folders of the same three classes; 'bass' is the rare one."""
    counts = {"train": (6, 12, 12), "val": (3, 6, 6), "test": (3, 6, 6)}
    for k, (split, (bass, carp, trout)) in enumerate(counts.items()):
        _fish_folder(os.path.join(root, split), (("bass", bass, 0), ("carp", carp, 1),
                                                 ("trout", trout, 2)), size=size, seed=k)
    return [os.path.join(root, split) for split in counts]


def _hand_recipe_run(runs, folders, *, size=24, seed=42, name="20260101T000000Z_s42"):
    """A finished `make recipe-fish` run as ch11.fish leaves it: config.json (its own
    Config), a trained cnn.keras with its classes file, results.json."""
    from ch11.fish.config import Config
    from ch11.fish.predict import save_model_with_classes
    from recipes.builders import build_cnn
    from recipes.data.fish import load_fish_splits
    from recipes.specs import CNNSpec

    train, val, test = folders
    run = os.path.join(runs, "fish", name)
    os.makedirs(run)
    write_json(os.path.join(run, "config.json"),
               Config(train_dir=train, val_dir=val, test_dir=test, image_size=size, seed=seed,
                      quick=True, out_dir=runs))
    data = load_fish_splits(train, val, test, image_size=size, seed=seed)
    keras.utils.set_random_seed(seed)
    model = build_cnn(CNNSpec(filters=(8, 16), first_stride=2, dense_units=(),
                              global_pooling=True, input_norm="rescale"),
                      (size, size, 3), len(data.class_names))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(data.x["train"], data.y["train"], epochs=2, verbose=0)
    save_model_with_classes(model, os.path.join(run, "cnn.keras"), data.class_names)
    write_json(os.path.join(run, "results.json"), {
        "experiment": "fish", "metrics": {"cnn_test_acc": 0.5, "cnn_macro_auc": 0.75}})
    return run


class FishSearchTest(tf.test.TestCase):
    """The fish photo search: folders as ch11.fish reads them, objectives, the hand recipe."""

    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)
        self.dir = self.get_temp_dir()
        self.folders = _fish_splits(os.path.join(self.dir, "photos"))
        self.argv = ["--data", "fish", "--train-dir", self.folders[0], "--val-dir",
                     self.folders[1], "--test-dir", self.folders[2], "--directory", self.dir]

    def test_quick_search_per_class_auc_and_the_hand_recipe_on_the_same_photos(self):
        from recipes.data.fish import load_fish_splits

        run = _hand_recipe_run(os.path.join(self.dir, "runs"), self.folders)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = search.main([*self.argv, "--image-size", "16", "24", "--quick",
                                "--max-trials", "2", "--run-eagerly", "--objective",
                                "val_macro_auc", "--compare-run",
                                os.path.join(run, "results.json"), "--project-name", "fish"])
        self.assertEqual(code, 0, out.getvalue()[-2000:])
        project = os.path.join(self.dir, "fish")
        table = pd.read_csv(os.path.join(project, "trials.csv"))
        self.assertEqual(list(table["status"]), ["COMPLETED"] * 2)
        self.assertEqual(list(table.columns[3:6]), ["image_size", "conv_blocks", "base_filters"])
        self.assertContainsSubset(table["image_size"], [16, 24])
        self.assertEqual(set(table["conv_blocks"]), {3})  # 4 blocks need 32 pixels
        aucs = table[["val_auc_bass", "val_auc_carp", "val_auc_trout"]].to_numpy()
        self.assertAllInRange(aucs, 0.0, 1.0)
        # The objective is the macro AUC: the mean of the classes' AUC at the best epoch.
        self.assertAllClose(table["val_macro_auc"], aucs.mean(axis=1))
        self.assertAllClose(table["best_objective"], table["val_macro_auc"])
        self.assertAllInRange(table["val_rare_recall"].to_numpy(), 0.0, 1.0)
        results = json.loads(open(os.path.join(project, "results.json")).read())
        self.assertEqual((results["objective"], results["direction"], results["rare_class"]),
                         ("val_macro_auc", "max", "bass"))
        # The best model and the hand recipe's CNN, each re-scored here on the test folder.
        best_size = results["best_hyperparameters"]["image_size"]
        photos = {s: load_fish_splits(*self.folders, image_size=s) for s in {best_size, 24}}
        test = results["test"]
        self.assertEqual(test["test_size"], 15)
        best = keras.models.load_model(os.path.join(project, "best_model.keras"))
        proba = best.predict(photos[best_size].x["test"], verbose=0)
        self.assertEqual(test["correct"], int(np.sum(proba.argmax(1) ==
                                                     photos[best_size].y["test"])))
        hand = keras.models.load_model(os.path.join(run, "cnn.keras"))
        hand_correct = int(np.sum(hand.predict(photos[24].x["test"], verbose=0).argmax(1)
                                  == photos[24].y["test"]))
        self.assertAllClose(results["hand_recipe"]["accuracy"], hand_correct / 15)
        self.assertEqual([row["class"] for row in results["hand_recipe"]["per_class"]],
                         ["bass", "carp", "trout"])
        self.assertEqual([row["support"] for row in test["per_class"]], [3, 6, 6])
        report = open(os.path.join(project, "report.md")).read()
        self.assertIn("## Best trial vs the hand recipe", report)
        self.assertIn(f"The hand recipe is the CNN of `{run}` (--compare-run).", report)
        self.assertIn("| class | support | AUC best | AUC hand | recall best | recall hand |",
                      report)
        self.assertIn(f"({test['correct'] - hand_correct:+d} photo(s) of 15)", report)
        self.assertIn("On the same 15 test photos the best trial", report)
        self.assertIn("(its own report: test accuracy 0.5000, macro AUC 0.7500", report)
        self.assertIn("It was a `--quick` run", report)
        self.assertIn("The smallest class of the training split is **bass**: 6 training, 3 "
                      "validation and 3 test photo(s).", report)
        self.assertIn(f"- test: folder '{self.folders[2]}'", report)
        self.assertNotIn("No --test-dir", report)
        self.assertIn("On the same 15 test photos the best trial", out.getvalue())
        # The best trial's own checkpoint (training split only, best validation epoch): the
        # like-for-like column, scored on the same photos as the weights Keras Tuner kept.
        ckpt = test["checkpoint"]
        best.load_weights(os.path.join(project, f"trial_{results['best_trial']}",
                                       "checkpoint.weights.h5"))
        ckpt_correct = int(np.sum(best.predict(photos[best_size].x["test"], verbose=0)
                                  .argmax(1) == photos[best_size].y["test"]))
        self.assertEqual((ckpt["correct"], ckpt["test_size"]), (ckpt_correct, 15))
        self.assertIn("|  | best trial (retrained) | its checkpoint (training split) | hand "
                      "recipe |", report)
        self.assertIn("Like for like (the training split only, the best validation epoch, as "
                      "the hand recipe was trained), the trial's own checkpoint", report)
        self.assertIn(f"test accuracy ({ckpt_correct - hand_correct:+d} photo(s) of 15).",
                      report)
        self.assertIn(f"scores {test['correct'] - ckpt_correct:+d} photo(s) against it", report)

    def test_objectives_and_their_directions(self):
        from tuning.names import OBJECTIVES
        from tuning.tuners import make_tuner

        hypermodel = make_hypermodel("mlp", (4,), 2)
        for objective in OBJECTIVES:
            tuner = make_tuner("random", hypermodel, objective=objective, max_trials=1,
                               max_epochs=1, directory=self.dir, project_name=objective)
            self.assertEqual(tuner.oracle.objective.name, objective)
            self.assertEqual(tuner.oracle.objective.direction,
                             "min" if objective.endswith("loss") else "max")
        for objective in ("val_macro_auc", "val_rare_recall"):
            self.assertEqual(search.parse_args([*self.argv, "--objective", objective])
                             .objective, objective)

    def test_class_folders_that_differ_exit_2_with_one_message(self):
        for split, extra in ((1, "pike"), (2, "perch")):
            os.makedirs(os.path.join(self.folders[split], extra))
            _fish_folder(os.path.join(self.dir, f"more{split}"), ((extra, 2, 0),))
            for i in range(2):
                os.replace(os.path.join(self.dir, f"more{split}", extra, f"{i}.png"),
                           os.path.join(self.folders[split], extra, f"{i}.png"))
            err, out = io.StringIO(), io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                code = search.main([*self.argv, "--quick", "--image-size", "16",
                                    "--compare-run", "none", "--overwrite"])
            self.assertEqual(code, 2)
            lines = err.getvalue().strip().splitlines()
            self.assertLen(lines, 1, err.getvalue())
            self.assertRegex(lines[0], rf"^error: '{self.folders[split]}' has extra class "
                                       rf"folder\(s\) \['{extra}'\] that the training folder "
                                       rf"lacks; its class folders must be exactly those of "
                                       rf"'{self.folders[0]}' \(3 classes\)\.$")
            shutil.rmtree(os.path.join(self.folders[split], extra))

    def test_compare_run_must_split_the_photos_as_the_search_does(self):
        from tuning.compare import find_compare_run

        runs = os.path.join(self.dir, "runs")
        good = _hand_recipe_run(runs, self.folders, name="20260101T000000Z_s42")
        other = _hand_recipe_run(runs, [*self.folders[:2], None], seed=7,
                                 name="20260202T000000Z_s7")
        code, err = _parse_error([*self.argv, "--compare-run", other])
        self.assertEqual(code, 2)
        test_dir = os.path.realpath(self.folders[2])
        self.assertIn(f"--compare-run '{other}' split its photos otherwise than this search "
                      f"(test folder: run None, search '{test_dir}'; seed: run 7, search 42; "
                      "test_from: run 'val', search None; test_split: run 0.5, search None), so "
                      "its CNN may have seen test photos: run `make recipe-fish` with the same "
                      "folder options and seed, or give --compare-run none.", err)
        os.remove(os.path.join(good, "results.json"))  # an unfinished run
        code, err = _parse_error([*self.argv, "--compare-run", good])
        self.assertIn(f"--compare-run '{good}' has no results.json: it is not a finished "
                      "`make recipe-fish` run", err)
        config = search.parse_args(self.argv)
        self.assertEqual(find_compare_run(config, os.path.join(runs, "fish")),
                         (None, f"No comparison with the hand recipe: none of the 2 run(s) in "
                                f"{runs}/fish/ is finished with this search's splits. Run `make "
                                "recipe-fish` with the same folder options first (or give "
                                "--compare-run RUN)."))
        write_json(os.path.join(good, "results.json"), {"metrics": {}})
        folder, why = find_compare_run(config, os.path.join(runs, "fish"))
        self.assertEqual(str(folder), good)  # the newest run that matches, not the newest
        self.assertIn("the newest finished `make recipe-fish` run with this search's splits",
                      why)
        self.assertEqual(find_compare_run(config, os.path.join(self.dir, "none"))[1],
                         f"No comparison with the hand recipe: there is no run in "
                         f"{self.dir}/none/. Run `make recipe-fish` with the same folder "
                         "options first (or give --compare-run RUN).")
