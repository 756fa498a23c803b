"""`pip install .` (not editable) gives working `recipes`, `ch11`, `tuning` and their CLIs.

The package is built as a wheel from a copy of the sources (so nothing outside the
packaged files can help), installed without dependencies into a folder of its own
(`pip install --no-deps --target`: the environment's TensorFlow and the rest stand in for
the dependencies, so nothing is downloaded), and used from outside the checkout, with
only that folder on the path: the checkout (and an editable install of it) cannot shadow
the installed copy.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("recipes", "ch11", "tuning", "bench")
CLIS = ("recipes.data", "ch11.batch_norm", "ch11.fish", "ch11.run_all", "tuning.search",
        "tuning.distributed", "bench.time_to_accuracy")


def _run(args, cwd, env=None, timeout=300):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{args}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _source_packages() -> set[str]:
    """Every package of the sources: a folder with an __init__.py, dotted."""
    return {".".join(p.parent.relative_to(ROOT).parts)
            for name in PACKAGES for p in (ROOT / name).rglob("__init__.py")
            if "__pycache__" not in p.parts}


@pytest.mark.slow
class InstallTest(tf.test.TestCase):
    def test_wheel_holds_every_package_and_works_from_outside_the_checkout(self):
        tmp = Path(self.get_temp_dir())
        src = tmp / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, src / name)
        for name in PACKAGES:
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
              "--wheel-dir", str(tmp / "dist"), str(src)], cwd=tmp)
        (wheel,) = (tmp / "dist").glob("ch11_recipes-*.whl")
        with zipfile.ZipFile(wheel) as z:
            names = z.namelist()
        in_wheel = {os.path.dirname(n).replace("/", ".") for n in names
                    if n.endswith("/__init__.py")}
        self.assertEqual(in_wheel, _source_packages())  # every subpackage is discovered
        self.assertContainsSubset({"recipes.data", "recipes.diagnosis", "ch11.batch_norm",
                                   "ch11.fish", "tuning"}, in_wheel)
        py_files = {n for n in names if n.endswith(".py")}
        for name in PACKAGES:
            for path in (ROOT / name).rglob("*.py"):
                self.assertIn(path.relative_to(ROOT).as_posix(), py_files)

        site = tmp / "site"
        _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target",
              str(site), str(wheel)], cwd=tmp)
        outside = tmp / "elsewhere"
        outside.mkdir()
        env = {**os.environ, "PYTHONPATH": str(site), "TF_CPP_MIN_LOG_LEVEL": "2",
               "MPLBACKEND": "Agg"}
        code = ("import recipes, ch11, tuning, ch11.batch_norm.experiment, tuning.hypermodels\n"
                "from recipes import MLPSpec, build_mlp\n"
                "print(build_mlp(MLPSpec(), (28, 28), 10).count_params())\n"
                "for m in (recipes, ch11, tuning, ch11.batch_norm.experiment):\n"
                "    print(m.__file__)\n")
        out = _run([sys.executable, "-c", code], cwd=outside, env=env).stdout.split()
        self.assertEqual(out[0], "266610")
        for path in out[1:]:
            self.assertStartsWith(path, str(site))
        for module in CLIS:
            proc = _run([sys.executable, "-m", module, "--help"], cwd=outside, env=env)
            self.assertIn("usage:", proc.stdout)
