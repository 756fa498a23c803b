"""ch11.run_all: the index of reports and the CLI's choices."""

import contextlib
import importlib
import io
import json
import os
import re
from pathlib import Path
from unittest import mock

import pytest
import tensorflow as tf

from ch11 import run_all
from recipes.cli import parse_config


class RunAllTest(tf.test.TestCase):
    def test_index_links_reports_and_marks_failures(self):
        out = Path(self.get_temp_dir())
        report = out / "batch_norm" / "x_s42" / "report.md"
        rows = [
            {"target": "bn", "module": "batch_norm", "status": "ok", "report": report,
             "headline": "BN a|b", "wall_s": 12.4},
            {"target": "selu", "module": "selu", "status": "failed", "report": None,
             "headline": "FAILED: ValueError: boom", "wall_s": 1.0},
        ]
        text = run_all.write_index(rows, out).read_text()
        self.assertIn("| bn | `make recipe-bn` | BN a\\|b | 12 s | "
                      "[report](batch_norm/x_s42/report.md) |", text)
        self.assertIn("| selu | `make recipe-selu` | FAILED: ValueError: boom | 1 s | failed |",
                      text)
        self.assertNotIn("Not finished", text)
        rows[1].update(status="running", headline="", wall_s=None)
        rows.append({"target": "gd", "module": "gradient_descent", "status": "pending",
                     "report": None, "headline": "", "wall_s": None})
        text = run_all.write_index(rows, out).read_text()
        self.assertIn("| selu | `make recipe-selu` |  | - | running |", text)
        self.assertIn("Not finished (yet): selu, gd", text)

    def test_unknown_recipe_is_refused_with_the_choices(self):
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            run_all.main(["--only", "nope"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("invalid choice: 'nope'", err.getvalue())

    def test_every_recipe_module_has_config_and_run(self):
        for module in run_all.RECIPES.values():
            mod = importlib.import_module(f"ch11.{module}")
            self.assertTrue(callable(mod.run), module)
            self.assertTrue(mod.Config(quick=True).quick, module)

    def test_options_become_the_config(self):
        config = parse_config(run_all.Config, ["--quick", "--only", "losses", "bn",
                                               "--out-dir", "elsewhere"], prog="run_all")
        self.assertEqual(config, run_all.Config(quick=True, only=("losses", "bn"),
                                                out_dir="elsewhere"))
        self.assertEqual(parse_config(run_all.Config, [], prog="run_all"), run_all.Config())
        self.assertIsNone(run_all.Config().only)
        with self.assertRaisesRegex(ValueError, "Unknown recipe 'nope'. Valid: gradients, "):
            run_all.Config(only=("nope",))
        with self.assertRaisesRegex(ValueError, "only must name at least one of gradients, "):
            run_all.Config(only=())
        self.assertEqual(parse_config(run_all.Config, ["--group", "fish"], prog="run_all"),
                         run_all.Config(group="fish"))
        with self.assertRaisesRegex(ValueError, "Unknown group 'mnist'. Valid: chapter, fish, all"):
            run_all.Config(group="mnist")

    def test_make_recipes_runs_the_chapter_and_make_recipes_fish_the_photos(self):
        chapter, index = run_all.plan(run_all.Config())
        self.assertEqual(index, "index.md")
        self.assertLen(chapter, 15)
        self.assertEqual((chapter[0], chapter[4], chapter[-1]), ("gradients", "bn", "residual"))
        fish, index = run_all.plan(run_all.Config(group="fish"))
        self.assertEqual(fish, ["fish", "fish-imbalance", "fish-capacity", "fish-transfer"])
        self.assertEqual(index, "index-fish.md")  # the chapter's index stays
        self.assertEqual(run_all.plan(run_all.Config(group="all"))[0], chapter + fish)
        self.assertEqual(run_all.plan(run_all.Config(group="fish", only=("bn", "fish"))),
                         (["bn", "fish"], "index.md"))
        self.assertEqual(list(run_all.RECIPES), chapter + fish)

    def test_bad_group_exits_2_with_the_choices(self):
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            run_all.main(["--group", "mnist"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("invalid choice: 'mnist'", err.getvalue())
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            run_all.main(["--jobs", "0"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("error: jobs must be >= 1, got 0.", err.getvalue())


@pytest.mark.slow
class RunAllMnistTest(tf.test.TestCase):
    def test_quick_run_of_one_recipe_writes_the_index(self):
        out = Path(self.get_temp_dir())
        with contextlib.redirect_stdout(io.StringIO()), mock.patch.dict(os.environ):
            os.environ.pop("TF_NUM_INTRAOP_THREADS", None)  # the experiment's default
            code = run_all.main(["--quick", "--only", "losses", "--out-dir", str(out)])
        self.assertEqual(code, 0)
        text = (out / "index.md").read_text()
        run_dir = next((out / "losses").iterdir())
        self.assertIn("| losses | `make recipe-losses` | After 1 epoch(s) of sgd", text)
        self.assertIn(f"[report](losses/{run_dir.name}/report.md) |", text)
        results = json.loads((run_dir / "results.json").read_text())
        self.assertTrue(results["quick"])
        self.assertEqual(results["tf_intra_op_threads"], 1)

    def test_two_at_a_time_with_logs_and_a_failure_listed(self):
        out = Path(self.get_temp_dir())
        printed = []
        # "gradients" points at a module that does not exist: its process exits 1 at once.
        with mock.patch.dict(run_all.RECIPES, {"gradients": "no_such_experiment"}):
            rows = run_all.run(run_all.Config(quick=True, only=("losses", "gradients"), jobs=2,
                                              out_dir=str(out)), log=printed.append)
        self.assertEqual([r["status"] for r in rows], ["ok", "failed"])
        self.assertEqual(rows[1]["headline"], "FAILED: exit code 1")
        text = "\n".join(printed)
        self.assertIn("[1/2] losses started (python -m ch11.losses; log: ", text)
        self.assertRegex(text, r"\[1/2\] losses finished in (\d+ min )?\d+ s: After 1 epoch")
        self.assertIn("[2/2] gradients FAILED (exit code 1)", text)
        self.assertIn("No module named ch11.no_such_experiment", text)  # the log's tail
        self.assertIn("1 of 2 recipes finished in ", text)
        self.assertIn("After 1 epoch(s) of sgd", (out / "logs" / "losses.log").read_text())
        index = (out / "index.md").read_text()
        self.assertIn("| gradients | `make recipe-gradients` | FAILED: exit code 1 |", index)
        self.assertNotIn("Not finished (yet)", index)


def _run_folder(root: Path, module: str, name: str, results: dict, config: dict | None = None,
                unfinished: bool = False) -> Path:
    run_dir = root / module / name
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(json.dumps(results))
    (run_dir / "config.json").write_text(json.dumps(config or {}))
    if unfinished:
        (run_dir / "UNFINISHED").write_text("running")
    return run_dir


_BN = {
    "experiment": "batch_norm", "seed": 42, "quick": False, "notes": ["old headline"],
    "metrics": {"wall_time_s": 263.4}, "commit": "0123456789abcdef0123", "machine": {
        "cpu": "AMD EPYC", "cpus": 2, "load_1min": 0.3},
    "evidence": {
        "headline": "MLP at rate 0.05: BN before 0.943 ± 0.004 vs without 0.871 ± 0.050: +0.072 "
                    "(an effect).",
        "seeds": [42, 43, 44], "seeds_note": "3 seeds (42, 43, 44)",
        "book": {"figure": "BN after the activation 0.8650, BN before it 0.8646",
                 "claim": "BN trains"},
        "agrees": "agrees: the book's placements differ by 0.0004; here +0.0030.",
    },
}


class ReadmeTableTest(tf.test.TestCase):
    def _runs(self) -> Path:
        out = Path(self.get_temp_dir()) / "runs"
        _run_folder(out, "batch_norm", "20250101T120000Z_s42", _BN)
        _run_folder(out, "batch_norm", "20250102T120000Z_s42", {**_BN, "quick": True})
        _run_folder(out, "batch_norm", "20250103T120000Z_s42", _BN, unfinished=True)
        _run_folder(out, "selu", "20240101T000000Z_s7", {
            "seed": 7, "quick": False, "notes": ["SELU 0.33 vs ReLU 0.69"],
            "metrics": {"wall_time_s": 80.0}})
        _run_folder(out, "fish_imbalance", "20250105T080000Z_s42", {
            "seed": 42, "quick": False, "notes": ["rare AUC 0.72 ± 0.05"],
            "metrics": {"wall_time_s": 900.0}, "commit": "fedcba9876543210"},
            config={"seeds": [0, 1, 2]})
        return out

    def test_the_longest_recipes_start_first(self):
        out = self._runs()  # bn 263 s (the finished full run), selu 80 s, fish-imbalance 900 s
        _run_folder(out, "losses", "20250101T000000Z_s42", {"quick": False, "metrics": {}})
        self.assertEqual(
            run_all.start_order(["selu", "bn", "losses", "fish-imbalance", "gd"], out),
            ["losses", "gd", "fish-imbalance", "bn", "selu"])  # never run (or no time) first
        self.assertEqual(run_all.start_order(["gd", "selu"], out / "nowhere"), ["gd", "selu"])

    def test_newest_finished_full_run_is_read(self):
        out = self._runs()
        self.assertEqual(run_all.newest_run(out, "batch_norm").name, "20250101T120000Z_s42")
        self.assertIsNone(run_all.newest_run(out, "losses"))
        records = run_all.collect_records(out, ("bn", "selu", "fish-imbalance", "losses"))
        bn, selu, fish, losses = records
        self.assertEqual(bn["run"], "batch_norm/20250101T120000Z_s42")
        self.assertEqual(bn["started"], "2025-01-01 12:00")
        self.assertEqual(bn["seeds"], [42, 43, 44])
        self.assertEqual(selu["headline"], "SELU 0.33 vs ReLU 0.69")  # before the evidence
        self.assertEqual(selu["seeds"], [7])
        self.assertEqual(selu["commit"], "unknown")
        self.assertEqual(fish["seeds_note"], "seeds 0, 1, 2")
        self.assertEqual(selu["seeds_note"], "seed 7")
        self.assertIsNone(losses["run"])

    def test_every_figure_in_the_table_is_in_the_results_it_read(self):
        out = self._runs()
        records = run_all.collect_records(out, ("bn", "selu", "fish-imbalance", "losses"))
        table = run_all.readme_table(records)
        for record in records:
            if not record["run"]:
                self.assertIn("| losses | `make recipe-losses` | no finished full run |", table)
                continue
            source = ((out / record["run"] / "results.json").read_text()
                      + (out / record["run"] / "config.json").read_text())
            for field in ("headline", "seeds_note", "book", "agrees"):
                text = str(record[field])
                self.assertIn(text.replace("|", "\\|"), table)
                for number in re.findall(r"\d+(?:\.\d+)?", text):
                    self.assertIn(number, source, f"{record['target']} {field}: {number}")
        self.assertIn("| 4 min 23 s | `0123456` |", table)
        self.assertIn("runs started 2024-01-01 00:00 to 2025-01-05 08:00 UTC", table)
        self.assertIn("AMD EPYC, 2 cores", table)

    def test_links_in_a_report_sentence_become_plain_text_in_the_table(self):
        record = {"target": "imbalance", "run": "imbalance/20260101T000000Z_s42",
                  "started": "2026-01-01 00:00", "headline": "AUC 0.995 | recall 0.55",
                  "seeds_note": "3 seeds (42, 43, 44)", "book": "the book gives no figure",
                  "agrees": "tested by `make recipe-fish-imbalance` (reports in "
                            "[runs/fish_imbalance/](../../fish_imbalance/)).",
                  "wall_time_s": 61.0, "commit": "0123456789",
                  "machine": {"cpu": "AMD EPYC", "cpus": 2, "load_1min": 1.0}}
        row = run_all.readme_table([record]).splitlines()[2]
        self.assertEqual(row, "| imbalance | `make recipe-imbalance` | AUC 0.995 \\| recall 0.55 "
                              "| 3 seeds (42, 43, 44) | the book gives no figure | tested by "
                              "`make recipe-fish-imbalance` (reports in runs/fish_imbalance/). "
                              "| 1 min 1 s | `0123456` |")

    def test_the_block_between_the_markers_is_replaced_and_the_records_saved(self):
        out = self._runs()
        readme = Path(self.get_temp_dir()) / "README.md"
        readme.write_text(f"# T\n\nbefore\n{run_all.README_START}\nold\n{run_all.README_END}\n"
                          "after\n")
        records = run_all.collect_records(out, ("bn", "selu"))
        run_all.write_readme(records, readme)
        text = readme.read_text()
        self.assertNotIn("\nold\n", text)
        self.assertIn(run_all.readme_table(records), text)
        self.assertTrue(text.startswith("# T\n\nbefore\n") and text.endswith("after\n"))
        saved = json.loads(readme.with_name(run_all.SNAPSHOT).read_text())
        self.assertEqual(saved, records)
        run_all.write_readme(records, readme)
        self.assertEqual(readme.read_text(), text)  # idempotent
        readme.write_text("no markers\n")
        with self.assertRaisesRegex(ValueError, "has no results-table markers"):
            run_all.write_readme(records, readme)
        self.assertIn("No finished full run recorded yet", run_all.readme_table(
            [{"target": "bn", "module": "batch_norm", "run": None}]))

    def _readme(self, folder: str) -> Path:
        """A README holding only the table's markers, in a folder of its own."""
        readme = Path(self.get_temp_dir()) / folder / "README.md"
        readme.parent.mkdir()
        readme.write_text(f"{run_all.README_START}\n{run_all.README_END}\n")
        return readme

    def test_the_cli_writes_the_readme_without_training(self):
        out = self._runs()
        readme = self._readme("cli")
        with mock.patch.object(run_all, "README", readme), \
                contextlib.redirect_stdout(io.StringIO()) as printed:
            code = run_all.main(["--readme", "--only", "bn", "--out-dir", str(out)])
        self.assertEqual(code, 0)
        self.assertIn("from 1 of 1 recipes' runs", printed.getvalue())
        self.assertIn("BN before 0.943 ± 0.004", readme.read_text())

    def test_rows_without_a_run_are_kept_from_the_saved_records(self):
        out = self._runs()  # runs of bn, selu and fish-imbalance; none of losses or gd
        snapshot = Path(self.get_temp_dir()) / "kept" / run_all.SNAPSHOT
        snapshot.parent.mkdir()
        old = {"target": "losses", "module": "losses", "run": "losses/20240101T000000Z_s42",
               "started": "2024-01-01 00:00", "headline": "cross-entropy 0.965 vs MSE 0.877",
               "seeds_note": "3 seeds (42, 43, 44)", "book": "the book gives no figure",
               "agrees": "agrees", "wall_time_s": 64.0, "commit": "abcdef0123",
               "machine": {"cpu": "Intel Xeon", "cpus": 2}}
        newer_selu = {**old, "target": "selu", "module": "selu", "started": "2026-01-01 00:00",
                      "run": "selu/20260101T000000Z_s42", "headline": "newer SELU row"}
        snapshot.write_text(json.dumps([
            old, {**old, "target": "bn", "module": "batch_norm", "headline": "old BN row"},
            newer_selu, {"target": "gd", "module": "gd", "run": None}]))
        fresh = run_all.collect_records(out, ("losses", "bn", "selu", "gd"))
        records = run_all.keep_recorded(fresh, snapshot)
        self.assertEqual([r["target"] for r in records], ["selu", "bn", "gd", "losses"])
        selu, bn, gd, losses = records
        self.assertEqual(losses, {**old, "kept": True})  # no run here: the saved row
        # the saved row is newer (2026) than the run here (2024): it stays
        self.assertEqual(selu, {**newer_selu, "kept": True})
        self.assertNotIn("kept", bn)  # a newer run here (2025 vs 2024): the run's row
        self.assertEqual(bn["run"], "batch_norm/20250101T120000Z_s42")
        self.assertIsNone(gd["run"])  # neither a run nor a saved row with one
        table = run_all.readme_table(records)
        self.assertIn("| losses | `make recipe-losses` | cross-entropy 0.965 vs MSE 0.877 |",
                      table)
        self.assertIn("| gd | `make recipe-gd` | no finished full run |", table)
        self.assertTrue(table.endswith(
            " 2 row(s) kept from `readme_runs.json` because the runs folder held no newer "
            "run of theirs when the table was written: selu, losses."))
        from_runs = [fresh[2], bn, gd, {"target": "losses", "module": "losses", "run": None}]
        self.assertEqual(run_all.keep_recorded(fresh, snapshot.with_name("absent.json")),
                         from_runs)
        snapshot.write_text('{"not": "a list of records"}')
        with contextlib.redirect_stderr(io.StringIO()) as err:
            self.assertEqual(run_all.keep_recorded(fresh, snapshot), from_runs)
        self.assertIn(f"warning: {snapshot} is not a list of table records", err.getvalue())
        self.assertIn("Restore it with `git checkout readme_runs.json`.", err.getvalue())

    def test_the_cli_keeps_the_rows_only_leaves_out(self):
        out = self._runs()
        readme = self._readme("cli_kept")
        with mock.patch.object(run_all, "README", readme), \
                contextlib.redirect_stdout(io.StringIO()):
            run_all.main(["--readme", "--only", "selu", "bn", "--out-dir", str(out)])
            with contextlib.redirect_stdout(io.StringIO()) as printed:
                code = run_all.main(["--readme", "--only", "selu", "--out-dir", str(out)])
        self.assertEqual(code, 0)
        self.assertIn("from 1 of 1 recipes' runs, 1 row(s) kept from readme_runs.json (bn)",
                      printed.getvalue())
        text = readme.read_text()
        self.assertIn("BN before 0.943 ± 0.004", text)
        self.assertIn("SELU 0.33 vs ReLU 0.69", text)
        saved = json.loads(readme.with_name(run_all.SNAPSHOT).read_text())
        self.assertEqual([(r["target"], r.get("kept", False)) for r in saved],
                         [("selu", False), ("bn", True)])

    def test_the_readme_table_is_what_its_records_give(self):
        readme = run_all.README
        text = readme.read_text()
        start = text.index(run_all.README_START) + len(run_all.README_START)
        block = text[start:text.index(run_all.README_END)].strip("\n")
        records = json.loads(readme.with_name(run_all.SNAPSHOT).read_text())
        self.assertEqual(block, run_all.readme_table(records))
