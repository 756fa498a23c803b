"""ch11.run_all: the index of reports and the CLI's choices."""

import contextlib
import importlib
import io
from pathlib import Path

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


@pytest.mark.slow
class RunAllMnistTest(tf.test.TestCase):
    def test_quick_run_of_one_recipe_writes_the_index(self):
        out = Path(self.get_temp_dir())
        with contextlib.redirect_stdout(io.StringIO()):
            code = run_all.main(["--quick", "--only", "losses", "--out-dir", str(out)])
        self.assertEqual(code, 0)
        text = (out / "index.md").read_text()
        run_dir = next((out / "losses").iterdir())
        self.assertIn("| losses | `make recipe-losses` | After 1 epoch(s) of sgd", text)
        self.assertIn(f"[report](losses/{run_dir.name}/report.md) |", text)
        self.assertTrue((run_dir / "results.json").is_file())
