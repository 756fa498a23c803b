"""notebooks/chapter11.ipynb: generated from notebooks/build.py, and it runs top to bottom.

The slow test executes the notebook in quick mode in a real Jupyter kernel started with
this Python (nbclient), as `make notebook ARGS=--quick` does; any cell that raises fails
it with that cell's error.
"""

import importlib.util
import os
from pathlib import Path

import nbformat
import pytest
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]


def _build():
    spec = importlib.util.spec_from_file_location("notebook_build", ROOT / "notebooks" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _build()

# The chapter's sections, in the book's order.
SECTIONS = ("The data", "1. The vanishing/exploding gradients", "2. Initialization",
            "3. Better activation functions", "4. SELU", "5. Batch normalization",
            "6. Gradient clipping", "7. Reusing pretrained layers", "8. Faster optimizers",
            "9. Learning rate scheduling", "10. Avoiding overfitting", "11. The training doctor",
            "12. A small Keras Tuner search", "13. Fish photographs", "TensorBoard")


class NotebookFileTest(tf.test.TestCase):
    def test_the_committed_notebook_is_the_builders_without_outputs(self):
        self.assertTrue(build.is_current(), "run: python notebooks/build.py")
        nb = nbformat.read(str(build.NOTEBOOK), as_version=4)
        nbformat.validate(nb)
        self.assertEqual(nb.metadata.kernelspec.name, "python3")
        for cell in nb.cells:
            if cell.cell_type == "code":
                self.assertEqual((cell.outputs, cell.execution_count), ([], None))

    def test_sections_in_the_chapters_order(self):
        titles = [line[3:] for kind, text in build.CELLS if kind == "markdown"
                  for line in text.splitlines() if line.startswith("## ")]
        self.assertLen(titles, len(SECTIONS))
        for title, expected in zip(titles, SECTIONS):
            self.assertStartsWith(title, expected)

    def test_first_code_cell_installs_the_package_when_it_is_missing(self):
        first = next(text for kind, text in build.CELLS if kind == "code")
        self.assertIn('importlib.util.find_spec("recipes") is None', first)
        self.assertIn('"pip", "install", "--quiet", f"git+{REPO_URL}"', first)


@pytest.mark.slow
class NotebookRunTest(tf.test.TestCase):
    def test_quick_run_top_to_bottom_in_a_kernel(self):
        runs = Path(self.get_temp_dir()) / "runs"
        output = Path(self.get_temp_dir()) / "executed.ipynb"
        # The kernel inherits the environment: TensorBoard at its default level (on).
        saved = os.environ.pop("RECIPES_TENSORBOARD", None)
        if saved is not None:
            self.addCleanup(os.environ.__setitem__, "RECIPES_TENSORBOARD", saved)
        nb, seconds = build.execute(quick=True, runs=runs, output=output, timeout=600)
        print(f"quick notebook: {seconds:.0f} s, kernel CPU "
              f"{nb.metadata.ch11.kernel_cpu_seconds} s")
        code = [c for c in nb.cells if c.cell_type == "code"]
        self.assertTrue(all(c.execution_count for c in code))  # every cell ran
        outputs = [o for c in code for o in c.outputs]
        self.assertEmpty([o for o in outputs if o.output_type == "error"])
        stderr = "".join(o.text for o in outputs if o.get("name") == "stderr")
        self.assertNotIn("Warning", stderr)  # a clean console
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        self.assertGreaterEqual(len(images), 15)  # the figures show inline
        text = "".join(o.get("text", "") for o in outputs)
        self.assertIn("QUICK = True", text)
        # TensorBoard logs of the notebook's models and of the search's trials.
        self.assertTrue(list((runs / "notebook" / "tb" / "bn_before" / "train").iterdir()))
        self.assertTrue(list((runs / "notebook" / "tb" / "bn_before" / "gradients").iterdir()))
        trials = runs / "notebook" / "tuning" / "notebook_mlp" / "tb"
        self.assertLen(list(trials.iterdir()), 2)
        self.assertTrue(output.is_file())
        if os.path.isdir(ROOT.parent / "shared" / "data" / "fish-train"):
            fish = next(c for c in code if "FISH_DIR" in c.source and "train_cnn" in c.source)
            self.assertIn("test accuracy", "".join(o.get("text", "") for o in fish.outputs))
