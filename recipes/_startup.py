"""Start-up of the package: lazy public names, a quiet TensorFlow, registered custom objects.

``import recipes`` must be cheap, so that every command line answers ``--help`` without
importing TensorFlow (4-30 s), and it must still be enough for
``keras.models.load_model(path)`` to find the package's custom layers, schedules and
losses. Three pieces do that:

- `lazy_exports`: a package's public names are imported from their home module on first
  use (PEP 562 module ``__getattr__``), as scikit-image and SciPy do.
- `install_import_hooks`: when ``tensorflow`` is first imported (by anyone), its C++
  start-up INFO lines are dropped from stderr; when ``keras`` is first imported (by anyone),
  the modules that register custom objects are imported right after it. So
  ``import recipes; import keras; keras.models.load_model(path)`` works in either order.
- `import_tensorflow_quietly`: the quiet import itself, callable directly.

TensorFlow 2.21 writes INFO lines ("oneDNN custom operations are on", "Could not find
cuda drivers") straight to file descriptor 2 before absl logging is initialised, so
``TF_CPP_MIN_LOG_LEVEL`` does not hide them. The quiet import captures fd 2 while
``tensorflow`` is imported and its devices listed, and writes back every captured line that
is not one of those INFO lines (or the "failed call to cuInit" error that every CPU-only
machine prints): warnings and other errors still reach the user. Set
``RECIPES_TF_VERBOSE=1`` to see everything.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["REGISTERING_MODULES", "import_tensorflow_quietly", "install_import_hooks",
           "lazy_exports", "register_custom_objects"]

# Every module that defines a `register_keras_serializable` object.
REGISTERING_MODULES = (
    "recipes.activations",
    "recipes.callbacks",
    "recipes.losses",
    "recipes.regularization",
    "recipes.schedules",
)

# INFO lines, absl's preamble, and the CPU-only machine's "failed call to cuInit" (the
# device list is built inside the capture, so the line appears there or not at all).
_INFO_LINE = re.compile(
    r"^(I\d{4} |WARNING: All log messages before absl::InitializeLog"
    r"|E\d{4} .*cuda_platform\.cc:\d+\] failed call to cuInit)"
)


def _quiet_exec(exec_module: Callable[[Any], None], module: Any) -> None:
    """Run ``exec_module(module)`` (the tensorflow package) with fd 2 filtered."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (some notebook front-ends)
        exec_module(module)
        return
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            exec_module(module)
            module.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not _INFO_LINE.match(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


def register_custom_objects() -> None:
    """Import every module that registers a custom object with Keras (idempotent)."""
    for name in REGISTERING_MODULES:
        importlib.import_module(name)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Wraps the loader of one top-level package to run code around its execution."""

    def __init__(self, name: str, wrap: Callable[[Callable[[Any], None], Any], None]) -> None:
        self.name = name
        self.wrap = wrap

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # one shot; the import below uses the other finders
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        original = spec.loader.exec_module
        wrap = self.wrap

        def exec_module(module: Any) -> None:
            wrap(original, module)

        spec.loader.exec_module = exec_module  # this spec's own loader object only
        return spec


def _register_after(exec_module: Callable[[Any], None], module: Any) -> None:
    exec_module(module)
    register_custom_objects()


def install_import_hooks() -> None:
    """Quiet the first ``import tensorflow`` and register custom objects after ``keras``.

    Where either is imported already, its part happens now instead.
    """
    verbose = bool(os.environ.get("RECIPES_TF_VERBOSE"))
    if "tensorflow" not in sys.modules and not verbose:
        if not any(isinstance(f, _AfterImport) and f.name == "tensorflow" for f in sys.meta_path):
            sys.meta_path.insert(0, _AfterImport("tensorflow", _quiet_exec))
    if "keras" in sys.modules:
        register_custom_objects()
    elif not any(isinstance(f, _AfterImport) and f.name == "keras" for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport("keras", _register_after))


def import_tensorflow_quietly() -> None:
    """Import tensorflow once, dropping only its start-up INFO lines from stderr."""
    install_import_hooks()
    import tensorflow  # noqa: F401


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` that import each public name on first use.

    Example:
        ```python
        __getattr__, __dir__ = lazy_exports(__name__, {"load_mnist": "recipes.data.mnist"})
        ```

    Args:
        package: the package's ``__name__``.
        exports: public name -> the module that defines it.

    Returns:
        ``(__getattr__, __dir__)`` for the package's namespace.
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
