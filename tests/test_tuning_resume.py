"""Resume: a search killed with SIGKILL after its first trial continues without redoing it;
a finished search is not redone (nor re-seeded) unless --retrain-final asks."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time

import keras
import pandas as pd
import pytest
import tensorflow as tf

from recipes.runs import UNFINISHED, is_finished
from tuning import search
from tuning.tuners import RECORD_NAME

TIMEOUT_S = 150


def _completed(project, trial_id):
    """Trial `trial_id` is complete on disk: its trial.json and the oracle's state say so."""
    try:
        trial = json.loads(open(os.path.join(project, f"trial_{trial_id}", "trial.json")).read())
        oracle = json.loads(open(os.path.join(project, "oracle.json")).read())
    except (OSError, ValueError):
        return False
    return trial.get("status") == "COMPLETED" and str(trial_id) in oracle.get("end_order", [])


class ResumeTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)
        self.proc = None

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        super().tearDown()

    def test_killed_search_resumes_without_rerunning_completed_trials(self):
        directory = self.get_temp_dir()
        argv = ["--data", "synthetic", "--model", "mlp", "--tuner", "random", "--quick",
                "--max-trials", "3", "--max-epochs", "2", "--subset", "240",
                "--directory", directory, "--project-name", "killed", "--no-retrain"]
        project = os.path.join(directory, "killed")
        log = open(os.path.join(directory, "first_run.log"), "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "tuning.search", *argv],
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + TIMEOUT_S
        while not _completed(project, 0):
            self.assertIsNone(self.proc.poll(), "the search ended before trial 0 completed")
            self.assertLess(time.monotonic(), deadline, "trial 0 did not complete in time")
            time.sleep(0.05)
        os.killpg(self.proc.pid, signal.SIGKILL)  # kill -9, mid-search
        self.assertEqual(self.proc.wait(timeout=10), -signal.SIGKILL)
        log.close()
        self.assertFalse(_completed(project, 2), "the search finished before the kill")
        self.assertTrue(os.path.exists(os.path.join(project, UNFINISHED)))
        trial0 = open(os.path.join(project, "trial_0", "trial.json")).read()
        record0 = json.loads(open(os.path.join(project, "trial_0", RECORD_NAME)).read())

        code, err = 0, io.StringIO()
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit):
            search.parse_args(argv)  # without --resume: asks which to choose
        self.assertIn("already exists", err.getvalue())
        self.assertIn("--resume to continue it", err.getvalue())

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = search.main([*argv, "--resume"])
        self.assertEqual(code, 0)
        printed = out.getvalue()
        self.assertIn("Reloading Tuner from", printed)
        self.assertNotIn("trial 0/3 start", printed)  # the completed trial is not rerun
        self.assertIn("trial 2/3 start", printed)
        # Trial 0 is untouched: same trial.json, same record (started by the killed pid).
        self.assertEqual(open(os.path.join(project, "trial_0", "trial.json")).read(), trial0)
        self.assertEqual(
            json.loads(open(os.path.join(project, "trial_0", RECORD_NAME)).read()), record0)
        self.assertNotEqual(record0["pid"], os.getpid())
        record2 = json.loads(open(os.path.join(project, "trial_2", RECORD_NAME)).read())
        self.assertEqual(record2["pid"], os.getpid())
        table = pd.read_csv(os.path.join(project, "trials.csv"))
        self.assertEqual(list(table["trial_id"]), [0, 1, 2])
        self.assertEqual(list(table["status"]), ["COMPLETED"] * 3)
        self.assertAllClose(table["best_objective"][0],
                            json.loads(trial0)["score"])
        self.assertTrue(is_finished(project))


class FinishedSearchTest(tf.test.TestCase):
    def _main(self, argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = search.main(argv)
            except SystemExit as e:
                code = e.code
        return code, out.getvalue(), err.getvalue()

    def test_resume_of_a_finished_search_changes_nothing_unless_asked(self):
        directory = self.get_temp_dir()
        argv = ["--data", "synthetic", "--model", "mlp", "--quick", "--max-trials", "1",
                "--subset", "120", "--seed", "7", "--directory", directory,
                "--project-name", "done"]
        project = os.path.join(directory, "done")
        code, _, err = self._main(argv)
        self.assertEqual(code, 0, err)
        self.assertTrue(is_finished(project))
        self.assertFalse(os.path.exists(os.path.join(project, UNFINISHED)))
        outputs = ("results.json", "best_model.keras", "report.md", "trials.csv")
        before = {name: open(os.path.join(project, name), "rb").read() for name in outputs}

        code, _, err = self._main([*argv, "--resume", "--seed", "99"])
        self.assertEqual(code, 2)
        self.assertIn(f"Cannot resume {project}: it was created with seed=7.", err)
        code, out, err = self._main([*argv, "--resume"])
        self.assertEqual(code, 2)
        self.assertIn(f"Project {project} is a finished search (1 trial(s)", err)
        self.assertIn("Add --retrain-final", err)
        self.assertNotIn("Traceback", err)
        self.assertEqual(out, "")
        for name in outputs:  # nothing was retrained or rewritten
            self.assertEqual(open(os.path.join(project, name), "rb").read(), before[name],
                             name)

        code, out, err = self._main([*argv, "--resume", "--retrain-final", "--max-trials", "2"])
        self.assertEqual(code, 0, err)
        self.assertIn("trial 1/2 start", out)
        self.assertNotIn("trial 0/2 start", out)  # the finished trial is kept
        table = pd.read_csv(os.path.join(project, "trials.csv"))
        self.assertEqual(list(table["trial_id"]), [0, 1])
        results = json.loads(open(os.path.join(project, "results.json")).read())
        self.assertEqual((results["seed"], results["trials"]), (7, 2))
        self.assertTrue(is_finished(project))


class KeepCompletedTest(tf.test.TestCase):
    def test_completed_trials_leave_the_retry_queue(self):
        from types import SimpleNamespace

        from tuning.tuners import _keep_completed

        trials = {"0": SimpleNamespace(status="COMPLETED"), "1": SimpleNamespace(status="RUNNING")}
        oracle = SimpleNamespace(trials=trials, _retry_queue=["0", "1"], end_order=[])
        _keep_completed(oracle)
        self.assertEqual(oracle._retry_queue, ["1"])  # trial 1 was running: retried
        self.assertEqual(oracle.end_order, ["0"])
