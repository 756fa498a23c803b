"""bench.timings: the table of every long command's time (issue 18, item 5)."""

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from bench import timings

ROOT = Path(__file__).resolve().parents[1]
CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu avx2 fma avx512f avx512_bf16 amx_tile amx_bf16 sse4_2
"""


def _row(step, seconds=10.0, **extra):
    return {"step": step, "make": f"make {step}", "quick": False, "seconds": seconds,
            "returncode": 0, "load_before": 0.5, "commit": "0123456789abcdef",
            "when": "2026-12-02 19:00 UTC", "machine": "m", **extra}


class TableTest(tf.test.TestCase):
    def test_steps_are_every_recipe_then_the_tests_and_the_fish_input(self):
        from ch11.run_all import RECIPES

        self.assertEqual(list(timings.DEFAULT_STEPS),
                         [f"recipe-{t}" for t in RECIPES] + ["test", "bench-fish"])
        self.assertEqual(list(timings.STEPS), [*timings.DEFAULT_STEPS, "recipes", "recipes-fish"])
        total = timings.steps()["recipes"]
        self.assertEqual((total.argv, total.make, total.default),
                         (("ch11.run_all", "--group", "chapter"), "make recipes", False))
        self.assertEqual(timings.steps()["recipes-fish"].quick_argv,
                         ("ch11.run_all", "--group", "fish", "--quick"))
        bn = timings.steps()["recipe-bn"]
        self.assertEqual((bn.argv, bn.make, bn.quick_argv),
                         (("ch11.batch_norm",), "make recipe-bn", ("ch11.batch_norm", "--quick")))

    def test_merge_replaces_a_step_keeps_the_others_in_the_steps_order(self):
        old = [_row("test", 600), _row("recipe-bn", 100), _row("gone", 1)]
        merged = timings.merge_rows(old, [_row("recipe-bn", 80)])
        self.assertEqual([(r["step"], r["seconds"]) for r in merged],
                         [("recipe-bn", 80), ("test", 600), ("gone", 1)])

    def test_machine_key_names_the_cpu_and_its_speed_flags(self):
        key, info = timings.machine_key(CPUINFO)
        self.assertEqual(info["speed_flags"],
                         ["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"])
        self.assertStartsWith(key, "Intel(R) Xeon(R) Processor / ")
        self.assertEndsWith(key, " cores / avx2+fma+avx512f+avx512_bf16+amx_tile+amx_bf16")
        old_key, old = timings.machine_key("model name\t: AMD EPYC 7571\nflags\t\t: fpu sse2\n")
        self.assertEqual(old["speed_flags"], [])
        self.assertEndsWith(old_key, " cores / -")

    def test_markdown_rows_minutes_and_the_fish_input(self):
        fish = {"first_run": {"photos": 7317, "decoded_per_s": 812.4, "first_step_s": 19.46},
                "cached_run": {"photos": 7317, "decoded_per_s": 0.0, "first_step_s": 8.04}}
        key, info = timings.machine_key(CPUINFO)
        text = timings.markdown({"rows": [_row("recipe-bn", 754.4, machine=key),
                                          _row("bench-fish", 59.0, machine=key, fish_input=fish)],
                                 "machines": {key: info}})
        self.assertIn(f"| recipe-bn | `make recipe-bn` | 12 min 34 s | 0 | 0.5 | {key} | "
                      "0123456789 | 2026-12-02 19:00 UTC |  |", text)
        self.assertIn("| bench-fish | `make bench-fish` | 59 s | 0 | 0.5 |", text)
        self.assertIn("7,317 photos decoded at 812/s; first training step 19.5 s after start "
                      "(cached: 8.0 s)", text)
        self.assertIn(f"- `{key}`: Intel(R) Xeon(R) Processor, ", text)
        self.assertIn("flags avx2, fma, avx512f, avx512_bf16, amx_tile, amx_bf16", text)

    def test_an_unknown_step_is_a_usage_error(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as cm:
            timings.main(["--only", "recipe-nope"])
        self.assertEqual(cm.exception.code, 2)
        self.assertIn("error: Unknown step 'recipe-nope'. Valid: recipe-gradients, ",
                      err.getvalue())


@pytest.mark.slow
class RunTest(tf.test.TestCase):
    def _timings(self, *args):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return subprocess.run([sys.executable, "-m", "bench.timings", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=600)

    def test_a_quick_recipe_is_timed_merged_and_a_failure_exits_1(self):
        out = Path(self.get_temp_dir()) / "bench"
        out.mkdir()
        (out / "timings.json").write_text(json.dumps(
            {"rows": [_row("test", 600.0)], "machines": {"m": {"cpu": "old", "cores": 2,
                                                               "speed_flags": [],
                                                               "python": "3.11"}}}))
        runs = Path(self.get_temp_dir()) / "runs"
        proc = self._timings("--only", "recipe-losses", "--quick", "--out-dir", str(out),
                             "--runs-dir", str(runs))
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("recipe-losses: python -m ch11.losses --quick --out-dir", proc.stdout)
        table = json.loads((out / "timings.json").read_text())
        self.assertEqual([r["step"] for r in table["rows"]], ["recipe-losses", "test"])
        row = table["rows"][0]
        self.assertEqual((row["returncode"], row["quick"]), (0, True))
        self.assertGreater(row["seconds"], 1.0)
        self.assertLen(row["commit"].split("-")[0], 40)
        self.assertIn(row["machine"], table["machines"])
        self.assertEqual(table["machines"]["m"]["cpu"], "old")  # the kept row's machine
        self.assertTrue(list((runs / "losses").glob("*/results.json")))  # a real run
        self.assertIn("`make recipe-losses ARGS=--quick`", (out / "timings.md").read_text())
        # A step that fails (its run folder cannot be made) is recorded and exits 1.
        blocked = Path(self.get_temp_dir()) / "a_file"
        blocked.write_text("not a folder")
        proc = self._timings("--only", "recipe-losses", "--quick", "--out-dir", str(out),
                             "--runs-dir", str(blocked))
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn("error: These steps failed: recipe-losses (their rows say so).",
                      proc.stderr)
        row = json.loads((out / "timings.json").read_text())["rows"][0]
        self.assertNotEqual(row["returncode"], 0)
