"""Reruns repeat their numbers: one quick experiment run twice with the same seed (issue 16).

The second run may use one core instead of all of them (``os.sched_setaffinity``) and one
inter-op thread: on one machine, the numbers depend only on the seed and on TensorFlow's
intra-op thread count (`recipes.runs.intra_op_threads`), pinned here with
``TF_NUM_INTRAOP_THREADS`` as a user repeating a run would. The regularization experiment
is the one checked: it trains dropout, MC dropout and max-norm variants (random masks at
every step) and reports weight norms, whose BLAS-computed last digits once changed with
the cores a run could use.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]

# Excluded from the comparison, because they measure the machine rather than the model:
# wall_time_s (the run's seconds), s_per_epoch (the table's seconds per epoch) and
# epoch_time (the history's, from recipes.callbacks.EpochTimer) vary with the load.
# The notes are not compared either: they are sentences written from the same table and
# metrics (some quote time ratios), and report.py's own tests check them.
TIMINGS = ("wall_time_s", "s_per_epoch", "epoch_time")


def without_timings(value):
    """`value` without the TIMINGS keys, NaN as the string "nan" (NaN != NaN)."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def run_quick(out_dir: Path, *, one_core: bool) -> Path:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           "MPLBACKEND": "Agg", "TF_NUM_INTRAOP_THREADS": "2"}
    preexec = None
    if one_core:
        env["TF_NUM_INTEROP_THREADS"] = "1"
        if hasattr(os, "sched_setaffinity"):
            first = min(os.sched_getaffinity(0))
            preexec = lambda: os.sched_setaffinity(0, {first})  # noqa: E731
    proc = subprocess.run(
        [sys.executable, "-m", "ch11.regularization", "--quick", "--seed", "7",
         "--train-size", "500", "--out-dir", str(out_dir)],
        cwd=ROOT, env=env, preexec_fn=preexec, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (out_dir / "regularization").iterdir()
    return run_dir


@pytest.mark.slow
class RerunTest(tf.test.TestCase):
    def test_a_rerun_on_one_core_repeats_every_number(self):
        root = Path(self.get_temp_dir())
        first = run_quick(root / "a", one_core=False)
        second = run_quick(root / "b", one_core=True)
        results = [json.loads((d / "results.json").read_text()) for d in (first, second)]
        for r in results:
            self.assertEqual(r["tf_intra_op_threads"], 2)
            self.assertEqual(r["seed"], 7)
        self.assertEqual(without_timings(results[0]["metrics"]),
                         without_timings(results[1]["metrics"]))
        self.assertEqual(without_timings(results[0]["table"]),
                         without_timings(results[1]["table"]))
        self.assertIn("kernel_norm", results[0]["table"][0])  # the weight norms are compared
        histories = sorted(p.name for p in first.glob("history_*.csv"))
        self.assertNotEmpty(histories)
        self.assertEqual(histories, sorted(p.name for p in second.glob("history_*.csv")))
        for name in histories:
            a, b = (pd.read_csv(d / name).drop(columns=list(TIMINGS), errors="ignore")
                    for d in (first, second))
            pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)
