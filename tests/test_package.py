"""The package's shape: public names, a cheap `import recipes`, no import circles, fast CLIs."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import tensorflow as tf

import recipes

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("recipes", "ch11", "tuning", "bench")

# Every name `from recipes import ...` gave before the house redesign (issue 15).
PUBLIC_BEFORE = (
    "ACTIVATION_NAMES", "INITIALIZER_NAMES", "LOSS_NAMES", "OPTIMIZER_NAMES", "SCHEDULE_NAMES",
    "AnyLabelCrossentropy", "CNNSpec", "CyclicalLR", "EpochTimer", "Finding", "FishData",
    "FocalLoss", "GradientMonitor", "LRFinderResult", "MCDropout", "MLPSpec", "OneCycle",
    "PowerSchedule", "RReLU", "SoftmaxMeanSquaredError", "Thresholds", "activation_stats",
    "build_cnn", "build_mlp", "build_selu_mlp", "class_report", "class_weights",
    "confusion_matrix", "count_params", "diagnose", "examine", "find_learning_rate",
    "fine_tune", "freeze", "gradient_norms", "layer_outputs", "layer_statistics", "load_fish",
    "load_mnist", "make_activation", "make_callbacks", "make_dataset", "make_initializer",
    "make_loss", "make_optimizer", "make_regularizer", "make_schedule", "mc_predict",
    "precision_recall_f1", "probe_learning_rate", "recommended_initializer", "reuse_layers",
    "roc_auc_per_class", "roc_curves", "saliency_map", "unfreeze", "weight_stats",
)

# Every command line; each must answer --help without importing TensorFlow.
CLIS = (
    "recipes.data",
    "ch11.gradients", "ch11.initialization", "ch11.activations", "ch11.selu", "ch11.clipping",
    "ch11.transfer", "ch11.optimizers", "ch11.schedules",
    "ch11.batch_norm", "ch11.regularization", "ch11.cnn_hparams", "ch11.gradient_descent",
    "ch11.losses", "ch11.imbalance", "ch11.residual", "ch11.diagnose", "ch11.run_all",
    "ch11.fish", "ch11.fish_imbalance", "ch11.fish_capacity", "ch11.fish_transfer",
    "tuning.search", "tuning.distributed",
    "bench.time_to_accuracy", "bench.overhead", "bench.fish_input", "bench.timings",
)


def _python(code: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def _module_imports(path: Path, module: str) -> set[str]:
    """The project modules `path` imports when it is imported (not inside functions)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return  # runs later, if ever
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                if path.name != "__init__.py":
                    parts = parts[:-1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m.split(".")[0] in PACKAGES}


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


class PublicApiTest(tf.test.TestCase):
    def test_every_name_that_worked_before_still_imports(self):
        for name in PUBLIC_BEFORE:
            self.assertIn(name, recipes.__all__, name)
            self.assertIsNotNone(getattr(recipes, name), name)

    def test_unknown_name_is_an_attribute_error(self):
        with self.assertRaisesRegex(AttributeError, "no attribute 'build_rnn'"):
            recipes.build_rnn  # noqa: B018

    def test_factory_names_are_the_factory_tables(self):
        from recipes import activations, initializers, optimizers
        from recipes.names import ACTIVATION_NAMES, INITIALIZER_NAMES, OPTIMIZER_NAMES

        self.assertEqual(tuple(activations._FACTORIES), ACTIVATION_NAMES)
        self.assertEqual(tuple(initializers._FACTORIES), INITIALIZER_NAMES)
        self.assertEqual(tuple(optimizers._SPECS), OPTIMIZER_NAMES)


class CheapImportTest(tf.test.TestCase):
    def test_import_recipes_does_not_import_tensorflow(self):
        proc = _python("import sys, recipes, recipes.names, recipes.specs, recipes.cli, "
                       "recipes.checks, recipes.data; "
                       "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "False False")

    def test_load_model_after_import_recipes_in_either_order(self):
        path = os.path.join(self.get_temp_dir(), "custom.keras")
        save = (
            "import recipes, keras\n"
            "from recipes import OneCycle, MCDropout, RReLU, FocalLoss\n"
            "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), RReLU(),\n"
            "                      MCDropout(0.1), keras.layers.Dense(2, activation='softmax')])\n"
            "m.compile(optimizer=keras.optimizers.SGD(OneCycle(total_steps=10, max_lr=0.1)),\n"
            "          loss=FocalLoss())\n"
            "m.save(__import__('sys').argv[1])\n")
        proc = _python(save, path)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        load = ("import sys\n{first}\n{second}\n"
                "m = keras.models.load_model(sys.argv[1])\n"
                "print(type(m.optimizer.learning_rate).__name__ if False else\n"
                "      type(m.loss).__name__, [type(x).__name__ for x in m.layers][1:3])\n")
        for first, second in (("import recipes", "import keras"),
                              ("import keras", "import recipes")):
            proc = _python(load.format(first=first, second=second), path)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(proc.stdout.strip(), "FocalLoss ['RReLU', 'MCDropout']")

    def test_tensorflow_start_up_lines_are_dropped(self):
        proc = _python("import recipes, keras; keras.ops.ones((1,))")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("Could not find cuda drivers", proc.stderr)
        self.assertNotIn("oneDNN custom operations", proc.stderr)


class HelpTest(tf.test.TestCase):
    def test_every_cli_answers_help_without_tensorflow(self):
        code = ("import runpy, sys\n"
                "sys.argv = [sys.argv[1], '--help']\n"
                "try:\n"
                "    runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
                "except SystemExit as e:\n"
                "    code = e.code\n"
                "print('EXIT', code, 'tensorflow' in sys.modules)\n")
        for module in CLIS:
            proc = _python(code, module)
            self.assertEqual(proc.returncode, 0, f"{module}: {proc.stderr}")
            self.assertIn("usage: python -m " + module, proc.stdout, module)
            self.assertEqual(proc.stdout.strip().splitlines()[-1], "EXIT 0 False", module)


class LayeringTest(tf.test.TestCase):
    def test_no_import_circles(self):
        modules = _modules()
        graph = {name: {m for m in _module_imports(path, name) if m in modules} - {name}
                 for name, path in modules.items()}
        state: dict[str, int] = {}

        def visit(node: str, stack: list[str]) -> None:
            state[node] = 1
            for nxt in sorted(graph[node]):
                if state.get(nxt) == 1:
                    cycle = stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt]
                    self.fail("import circle: " + " -> ".join(cycle))
                if nxt not in state:
                    visit(nxt, stack + [nxt])
            state[node] = 2

        for name in sorted(graph):
            if name not in state:
                visit(name, [name])

    def test_recipes_imports_nothing_above_it(self):
        for name, path in _modules().items():
            if name.split(".")[0] != "recipes":
                continue
            above = {m for m in _module_imports(path, name) if m.split(".")[0] != "recipes"}
            self.assertEmpty(above, f"{name} imports {above}")

    def test_no_experiment_imports_another(self):
        experiments = {p.name for p in (ROOT / "ch11").iterdir()
                       if p.is_dir() and (p / "__init__.py").exists()}
        for name, path in _modules().items():
            parts = name.split(".")
            if parts[0] != "ch11":
                continue
            own = parts[1] if len(parts) > 1 else None
            for imported in _module_imports(path, name):
                target = imported.split(".")
                if target[0] == "ch11" and len(target) > 1 and target[1] in experiments \
                        and target[1] != own:
                    self.fail(f"{name} imports the experiment {imported}")
