"""Distributed search: a chief and two workers on loopback, Keras Tuner's own engine."""

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys

import keras
import pandas as pd
import pytest
import tensorflow as tf
from test_tuning_search import _fish_splits

from tuning import distributed

TIMEOUT_S = 200


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class DistributedTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)
        self.proc = None

    def tearDown(self):
        if self.proc is not None and _group_alive(self.proc.pid):
            os.killpg(self.proc.pid, signal.SIGKILL)  # leftovers of the launcher's group
            self.proc.wait(timeout=10)
        super().tearDown()

    def test_chief_and_two_workers_on_loopback(self):
        directory = self.get_temp_dir()
        cmd = [sys.executable, "-m", "tuning.distributed", "--workers", "2",
               "--timeout", str(TIMEOUT_S - 20), "--data", "synthetic", "--model", "mlp",
               "--quick", "--max-trials", "2", "--subset", "120", "--directory", directory,
               "--project-name", "dist", "--no-retrain"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        out, _ = self.proc.communicate(timeout=TIMEOUT_S)
        self.assertEqual(self.proc.returncode, 0, out[-3000:])
        # Every process ended by itself: nothing is left in the launcher's process group.
        self.assertFalse(_group_alive(self.proc.pid))
        self.assertRegex(out, r"\[chief\] oracle serving on 127\.0\.0\.1:\d+")
        self.assertIn("launcher: chief on 127.0.0.1:", out)
        self.assertNotRegex(out, r"(?m)^\s+\w+ \| (momentum|0\.\d)$")  # no stray prints
        table = pd.read_csv(os.path.join(directory, "dist", "trials.csv"))
        self.assertLen(table, 2)
        self.assertEqual(list(table["status"]), ["COMPLETED"] * 2)
        self.assertEqual(sorted(table["worker"]), ["worker0", "worker1"])  # both ran one
        self.assertEqual(list(table["epochs_run"]), [1, 1])
        for worker in ("worker0", "worker1"):
            self.assertIn(f"[{worker}] no more trials: done", out)
        self.assertTrue(os.path.exists(os.path.join(directory, "dist", "report.md")))

    def _launch(self, argv):
        self.proc = subprocess.Popen([sys.executable, "-m", "tuning.distributed", *argv],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        out, _ = self.proc.communicate(timeout=TIMEOUT_S)
        self.assertFalse(_group_alive(self.proc.pid))
        return self.proc.returncode, out

    def test_fish_search_with_a_chief_and_two_workers(self):
        directory = self.get_temp_dir()
        train, val, test = _fish_splits(os.path.join(directory, "photos"))
        code, out = self._launch([
            "--workers", "2", "--timeout", str(TIMEOUT_S - 20), "--data", "fish",
            "--train-dir", train, "--val-dir", val, "--test-dir", test, "--quick",
            "--max-trials", "2", "--image-size", "16", "--run-eagerly", "--objective",
            "val_rare_recall", "--compare-run", "none", "--directory", directory,
            "--project-name", "fish"])
        self.assertEqual(code, 0, out[-3000:])
        for name in ("chief", "worker0", "worker1"):  # each read the photos itself
            self.assertRegex(out, rf"{name} \| \[{name}\] fish photos: 3 classes, 30/15/15 "
                                  r"train/validation/test photos at 16x16")
        self.assertIn("hyperband search of the fish CNN space", out)
        table = pd.read_csv(os.path.join(directory, "fish", "trials.csv"))
        self.assertEqual(list(table["status"]), ["COMPLETED"] * 2)
        self.assertEqual(sorted(table["worker"]), ["worker0", "worker1"])
        self.assertAllClose(table["best_objective"], table["val_rare_recall"])
        self.assertAllInRange(table[["val_auc_bass", "val_auc_carp", "val_auc_trout"]]
                              .to_numpy(), 0.0, 1.0)
        report = open(os.path.join(directory, "fish", "report.md")).read()
        self.assertIn("workers: worker0, worker1", report)
        self.assertIn("The smallest class of the training split is **bass**", report)
        self.assertTrue(os.path.exists(os.path.join(directory, "fish", "best_model.keras")))
        # The chief scores the best trial's checkpoint, which a worker wrote.
        with open(os.path.join(directory, "fish", "results.json")) as f:
            checkpoint = json.load(f)["test"]["checkpoint"]
        self.assertEqual(checkpoint["test_size"], 15)
        self.assertIn(f"on the same test photos: accuracy **{checkpoint['accuracy']:.4f}**",
                      report)

    def test_fish_class_folders_that_differ_stop_the_launch_with_exit_2(self):
        directory = self.get_temp_dir()
        train, val, test = _fish_splits(os.path.join(directory, "photos"))
        os.rename(os.path.join(test, "carp"), os.path.join(test, "pike"))
        code, out = self._launch([
            "--workers", "2", "--timeout", str(TIMEOUT_S - 20), "--data", "fish",
            "--train-dir", train, "--val-dir", val, "--test-dir", test, "--quick",
            "--image-size", "16", "--compare-run", "none", "--directory", directory])
        self.assertEqual(code, 2, out[-3000:])
        errors = [line for line in out.splitlines() if "error" in line.lower()]
        self.assertEqual(errors, [
            f"   chief | error: '{test}' has missing class folder(s) ['carp'] and extra class "
            f"folder(s) ['pike'] that the training folder lacks; its class folders must be "
            f"exactly those of '{train}' (3 classes)."], out[-3000:])
        self.assertNotIn("worker0 |", out)  # no worker was started

    def test_free_port_is_bindable_on_loopback(self):
        port = distributed.free_port()
        self.assertBetween(port, 1, 65535)
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))

    def test_launcher_bad_input(self):
        for argv, message in (
            (["--workers", "0"], r"workers must be >= 1, got 0"),
            (["--port", "70000"], r"port must be in \[0, 65535\], got 70000"),
            (["--oracle", "127.0.0.1:1"], r"--oracle: the launcher sets these itself"),
            (["--tuner", "tpe"], r"argument --tuner: invalid choice: 'tpe'"),
        ):
            err = io.StringIO()
            with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
                distributed.main([*argv, "--directory", self.get_temp_dir()])
            self.assertEqual(info.value.code, 2)
            self.assertRegex(err.getvalue(), message)


class ClusterTest(tf.test.TestCase):
    def test_distributed_env_sets_and_restores(self):
        from tuning.cluster import distributed_env

        names = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
        saved = {n: os.environ.pop(n, None) for n in names}
        try:
            os.environ["KERASTUNER_TUNER_ID"] = "stale"
            with distributed_env("worker", "worker3", ("127.0.0.1", 8123)):
                self.assertEqual([os.environ[n] for n in names],
                                 ["worker3", "127.0.0.1", "8123"])
            self.assertEqual(os.environ["KERASTUNER_TUNER_ID"], "stale")
            with distributed_env(None, "tuner0", None):  # a local search: none set
                self.assertFalse(any(n in os.environ for n in names))
            self.assertNotIn("KERASTUNER_ORACLE_IP", os.environ)
        finally:
            for n, v in saved.items():
                os.environ.pop(n, None)
                if v is not None:
                    os.environ[n] = v

    def test_barrier_waits_for_every_worker(self):
        from tuning.cluster import wait_at_barrier

        folder = os.path.join(self.get_temp_dir(), "barrier")
        wait_at_barrier(folder, 1, "worker0", timeout_s=1)  # alone: passes at once
        with self.assertRaisesRegex(TimeoutError, r"Only 1 of 2 workers ready after 0 s: "
                                                  r"worker0\."):
            wait_at_barrier(folder, 2, "worker0", timeout_s=0.2)
        open(os.path.join(folder, "worker1.ready"), "w").write("1")
        wait_at_barrier(folder, 2, "worker0", timeout_s=1)
