"""Run folders (and whether they finished), writers and seeding."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf

from recipes import runs


def _tiny_model() -> keras.Model:
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(3, activation="softmax")])


class RunsTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)
        self.root = Path(self.get_temp_dir())

    def test_run_dir_name_and_no_collision(self):
        a = runs.make_run_dir("exp", 7, root=self.root)
        b = runs.make_run_dir("exp", 7, root=self.root)
        self.assertRegex(a.name, r"^\d{8}T\d{6}Z_s7$")
        self.assertNotEqual(a, b)
        self.assertEqual(a.parent, self.root / "exp")
        self.assertTrue(a.is_dir() and b.is_dir())

    def test_json_handles_numpy_nan_paths_and_frames(self):
        path = runs.write_json(self.root / "r.json", {
            "a": np.float32(0.5), "b": np.arange(3), "c": float("nan"), "d": Path("x/y"),
            "e": pd.DataFrame({"v": [1, 2]})})
        self.assertEqual(json.loads(path.read_text()),
                         {"a": 0.5, "b": [0, 1, 2], "c": None, "d": "x/y",
                          "e": [{"v": 1}, {"v": 2}]})

    def test_history_csv(self):
        model = _tiny_model()
        model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
        x = np.random.rand(32, 4).astype("float32")
        y = np.random.randint(0, 3, 32)
        history = model.fit(x, y, epochs=2, verbose=0)
        path = runs.write_history(self.root, "bn before/act", history)
        self.assertEqual(path.name, "history_bn_before_act.csv")
        frame = pd.read_csv(path)
        self.assertEqual(list(frame["epoch"]), [1, 2])
        self.assertAllClose(frame["loss"], history.history["loss"])

    def test_read_history_of_every_source(self):
        model = _tiny_model()
        model.compile("sgd", "sparse_categorical_crossentropy")
        x = np.random.rand(8, 4).astype("float32")
        y = np.arange(8) % 3
        history = model.fit(x, y, epochs=4, initial_epoch=2, verbose=0)
        read = runs.read_history(history)
        self.assertEqual(read["epoch"], [3, 4])
        self.assertEqual(read["loss"], history.history["loss"])
        self.assertEqual(runs.read_history({"loss": [np.float32(0.5), 1]}), {"loss": [0.5, 1.0]})
        frame = pd.read_csv(runs.write_history(self.root, "late", history))
        self.assertEqual(runs.read_history(frame), read)
        self.assertEqual(runs.read_history(None), {})

    def test_runs_and_plots_import_no_tensorflow(self):
        root = Path(__file__).resolve().parents[1]
        proc = subprocess.run(
            [sys.executable, "-c", "import sys, recipes.runs, recipes.plots; "
             "print('tensorflow' in sys.modules, 'keras' in sys.modules)"],
            capture_output=True, text=True, timeout=120, cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "False False")

    def test_report_has_table_notes_and_figures(self):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        png = runs.save_figure(fig, self.root / "curve.png")
        self.assertEqual(png.read_bytes()[:8], b"\x89PNG\r\n\x1a\n")
        table = pd.DataFrame({"variant": ["a|b", "c"], "accuracy": [0.912345, 0.5]})
        report = runs.write_report(self.root, "Title", table, intro="Intro.",
                                   figures=[("Curves", "curve.png")], notes=["It works."])
        text = report.read_text()
        self.assertIn("# Title", text)
        self.assertIn("| variant | accuracy |", text)
        self.assertIn("| a\\|b | 0.9123 |", text)
        self.assertIn("- It works.", text)
        self.assertIn("![Curves](curve.png)", text)

    def test_library_versions(self):
        versions = runs.library_versions()
        self.assertEqual(versions["keras"], keras.__version__)
        self.assertRegex(versions["tensorflow"], r"^2\.\d+")

    def test_intra_op_threads(self):
        if tf.config.threading.get_intra_op_parallelism_threads():
            self.skipTest("this process set TensorFlow's thread count itself")
        env = {k: v for k, v in os.environ.items() if k != "TF_NUM_INTRAOP_THREADS"}
        with mock.patch.dict(os.environ, env, clear=True):
            self.assertEqual(runs.intra_op_threads(), len(os.sched_getaffinity(0)))
        for value, expected in (("3", 3), (" 5 ", 5), ("0", len(os.sched_getaffinity(0)))):
            with mock.patch.dict(os.environ, {"TF_NUM_INTRAOP_THREADS": value}):
                self.assertEqual(runs.intra_op_threads(), expected)

    def test_same_seed_same_weights(self):
        def weights(seed):
            keras.backend.clear_session(free_memory=False)
            runs.set_seed(seed)
            return [w.copy() for w in _tiny_model().get_weights()]

        first, again, other = weights(3), weights(3), weights(4)
        for a, b in zip(first, again):
            self.assertAllEqual(a, b)
        self.assertFalse(np.array_equal(first[0], other[0]))


class RunStatusTest(tf.test.TestCase):
    """A run folder is UNFINISHED from its creation until its last write."""

    def setUp(self):
        super().setUp()
        self.root = Path(self.get_temp_dir())

    def test_a_new_run_is_unfinished_until_marked_finished(self):
        run_dir = runs.make_run_dir("exp", 1, root=self.root)
        self.assertEqual([p.name for p in run_dir.iterdir()], [runs.UNFINISHED])
        marker = (run_dir / runs.UNFINISHED).read_text()
        self.assertIn(f"(pid {os.getpid()} on ", marker)
        self.assertIn("has not finished: it is still running, or it failed or was killed", marker)
        runs.write_json(run_dir / "config.json", {"seed": 1})
        self.assertFalse(runs.is_finished(run_dir))  # a failed run: config.json only
        runs.write_json(run_dir / "results.json", {"seed": 1})
        self.assertFalse(runs.is_finished(run_dir))  # killed before its last write
        self.assertEqual(runs.mark_finished(run_dir), run_dir)
        self.assertTrue(runs.is_finished(run_dir))
        self.assertEqual(sorted(p.name for p in run_dir.iterdir()),
                         ["config.json", "results.json"])
        runs.mark_finished(run_dir)  # twice is harmless
        runs.mark_unfinished(run_dir)  # a resumed run is unfinished again
        self.assertFalse(runs.is_finished(run_dir))

    def test_a_folder_from_before_the_marker(self):
        old = self.root / "old"
        old.mkdir()
        (old / "config.json").write_text("{}")
        self.assertFalse(runs.is_finished(old))  # it never wrote its results
        (old / "results.json").write_text("{}")
        self.assertTrue(runs.is_finished(old))
        self.assertFalse(runs.is_finished(self.root / "missing"))

    def test_json_is_written_whole_or_not_at_all(self):
        path = runs.write_json(self.root / "results.json", {"accuracy": 0.5})
        with mock.patch.object(Path, "replace", side_effect=OSError("disk full")):
            with self.assertRaisesRegex(OSError, "disk full"):
                runs.write_json(path, {"accuracy": 0.9})
        self.assertEqual(json.loads(path.read_text()), {"accuracy": 0.5})
        self.assertEqual([p.name for p in self.root.iterdir()], ["results.json"])

    def test_an_experiment_finishes_its_folder_last(self):
        from ch11 import _experiment as ex

        @dataclass(frozen=True)
        class Config:
            seed: int = 0
            out_dir: str = str(self.root)

        run_dir, started = ex.start("exp", Config())
        self.assertFalse(runs.is_finished(run_dir))
        self.assertTrue((run_dir / "config.json").exists())
        with mock.patch.object(ex, "write_report", side_effect=KeyboardInterrupt):
            with self.assertRaises(KeyboardInterrupt):  # killed while writing the report
                ex.finish("exp", Config(), run_dir, started, pd.DataFrame({"a": [1]}),
                          title="T")
        self.assertTrue((run_dir / "results.json").exists())
        self.assertFalse(runs.is_finished(run_dir))
        ex.finish("exp", Config(), run_dir, started, pd.DataFrame({"a": [1]}), title="T")
        self.assertTrue(runs.is_finished(run_dir))
        self.assertFalse((run_dir / runs.UNFINISHED).exists())
        results = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(results["precision"], {"every model": {
            "policy": "float32", "why": ex.MLP_PRECISION[1]}})
        self.assertIn("Dtype policy: every model float32 (MLPs of 100-300 units",
                      (run_dir / "report.md").read_text())
        run_dir, started = ex.start("exp", Config())
        ex.finish("exp", Config(), run_dir, started, pd.DataFrame({"a": [1]}), title="T",
                  precision={"CNN": ("mixed_bfloat16", "auto: bf16 here")})
        results = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(results["precision"],
                         {"CNN": {"policy": "mixed_bfloat16", "why": "auto: bf16 here"}})
