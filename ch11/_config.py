"""The experiments' settings and their command line, written once.

- `ExperimentConfig`: the frozen base of every experiment's ``Config``, with the fields
  each one has first (``seed``, ``quick``) and the checks their ``__post_init__`` shares.
- `option(...)` and friends: a ``Config`` field with its ``--help`` text (and choices).
- `cli(Config, run, argv)`: the argparse CLI built from the ``Config`` fields, so
  ``--help`` lists every one of them; `make_main` wraps it as a module's ``main``.

Import these from `ch11._experiment`, which re-exports them.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from recipes.optimizers import OPTIMIZER_NAMES

__all__ = ["INPUT_NORMS", "ExperimentConfig", "cli", "input_norm_option", "make_main",
           "optimizer_option", "option", "out_dir_option"]

INPUT_NORMS = ("normalization", "none")


def option(default: Any, help: str, choices: Sequence[Any] | None = None) -> Any:
    """A ``Config`` field: its default, its ``--help`` text and, optionally, its choices.

    Example:
        ```python
        epochs: int = option(5, "epochs per variant")
        ```

    Args:
        default: the default (the book's value where it gives one); an immutable value.
        help: the ``--help`` text; `cli` appends ``(default: ...)``.
        choices: the valid values, listed by ``--help`` and checked by argparse. Defaults
            to `None` (any value of the field's type).

    Returns:
        A ``dataclasses.field``.

    Reference: Flax's examples (configs as dataclasses), as in /work/shared/STYLE.md.
    """
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["choices"] = choices
    return field(default=default, metadata=metadata)


def optimizer_option(default: str, help: str) -> Any:
    """An `option` whose choices are `recipes.optimizers.OPTIMIZER_NAMES`.

    Args:
        default: the optimizer's name.
        help: the ``--help`` text.

    Returns:
        A ``dataclasses.field``.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "Faster Optimizers".
    """
    return option(default, help, OPTIMIZER_NAMES)


def input_norm_option(why: str) -> Any:
    """The ``input_norm`` option: a Normalization layer adapted on training data, or none.

    Args:
        why: the parenthesis of the help text, e.g. ``"SELU needs it"``.

    Returns:
        A ``dataclasses.field`` defaulting to ``"normalization"``, choices `INPUT_NORMS`.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "SELU".
    """
    return option("normalization", "inputs of every variant: standardized by a Normalization "
                                   f"layer adapted on the training set ({why}) or pixels in "
                                   "[0, 1]", INPUT_NORMS)


def out_dir_option() -> Any:
    """The ``out_dir`` option every experiment ends with: where run folders go.

    Returns:
        A ``dataclasses.field`` defaulting to ``"runs"``.

    Reference: /work/shared/DESIGN.md, "Experiments are data".
    """
    return option("runs", "where run folders go")


@dataclass(frozen=True)
class ExperimentConfig:
    """The fields every experiment's ``Config`` starts with, and the checks they share.

    A subclass is a frozen dataclass that adds its own fields and ends with
    ``out_dir: str = out_dir_option()``; it may declare ``seed`` or ``quick`` again with
    another help text (they keep their place, first and second).

    Args:
        seed: seed, re-applied before each variant. Defaults to `42`.
        quick: a small slice of the data and one or two epochs (tests). Defaults to `False`.
    """

    seed: int = option(42, "seed, re-applied before each variant")
    quick: bool = option(False, "small slice, one epoch (tests)")

    def _at_least(self, minimum: int, *names: str) -> None:
        """Raise ``ValueError("<name> must be >= <minimum>, got <value>.")`` for the first
        of `names` below `minimum`."""
        for name in names:
            if getattr(self, name) < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {getattr(self, name)}.")

    def _positive(self, *names: str) -> None:
        """Raise ``ValueError("<name> must be > 0, got <value>.")`` for the first of `names`
        that is not above 0 (NaN included)."""
        for name in names:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}.")

    def _positive_sizes(self, name: str) -> None:
        """Raise ``ValueError("<name> must be positive, got <value>.")`` unless the tuple
        `name` is non-empty with every entry >= 1 (layer sizes)."""
        values = getattr(self, name)
        if not values or min(values) < 1:
            raise ValueError(f"{name} must be positive, got {values}.")


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(inner type, optional?) for ``X | None`` annotations."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def cli(config_cls: type, run: Callable[[Any], Any], argv: Sequence[str] | None,
        description: str) -> int:
    """Build an argparse CLI from a Config dataclass, run the experiment and return 0.

    Every field becomes ``--field-name`` (booleans: ``--flag/--no-flag``; tuples: several
    values; fields with a ``choices`` metadata entry list them).

    Args:
        config_cls: the frozen Config dataclass.
        run: the experiment's ``run(config)``.
        argv: arguments (``None``: ``sys.argv[1:]``).
        description: the module docstring.

    Returns:
        The exit code.

    Reference: /work/shared/STYLE.md (Flax's examples: one shared CLI helper).
    """
    module = run.__module__
    if module == "__main__":  # run as `python -m ch11.x`: the spec has the real name
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec is not None else module
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}", description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        tp, optional = _unwrap(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_text = f.metadata.get("help", "") + f" (default: {default})"
        kwargs: dict[str, Any] = {"default": default, "help": help_text}
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif typing.get_origin(tp) is tuple:
            inner = typing.get_args(tp)[0]
            parser.add_argument(flag, nargs="+", type=inner, **kwargs)
        else:
            parser.add_argument(flag, type=tp if not optional else _optional(tp), **kwargs)
    args = parser.parse_args(argv)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items()}
    try:
        config = config_cls(**values)
    except ValueError as e:
        parser.error(str(e))
    run(config)
    return 0


def _optional(tp: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.lower() in ("none", "") else tp(text)

    parse.__name__ = getattr(tp, "__name__", "value")
    return parse


def make_main(config_cls: type, run: Callable[[Any], Any], description: str,
              usage: str) -> Callable[[Sequence[str] | None], int]:
    """An experiment module's ``main(argv=None) -> int``: `cli` on its Config and run.

    Example:
        ```python
        main = make_main(Config, run, __doc__, "python -m ch11.selu [--quick] ...")
        ```

    Args:
        config_cls: the frozen Config dataclass.
        run: the experiment's ``run(config)``.
        description: the module docstring (the top of ``--help``).
        usage: the command line shown in ``main``'s docstring.

    Returns:
        ``main``, which parses `argv` (``None``: ``sys.argv[1:]``), runs the experiment and
        returns the exit code.

    Reference: /work/shared/STYLE.md (Flax's examples: a ~10-line ``main``).
    """

    def main(argv: Sequence[str] | None = None) -> int:
        return cli(config_cls, run, argv, description)

    main.__doc__ = f"CLI: ``{usage}``."
    main.__module__ = run.__module__
    return main
