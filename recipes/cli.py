"""Command lines from frozen config dataclasses, written once for ch11, tuning and bench.

A config is a frozen dataclass whose fields are declared with `option` (default, help
text, choices) and whose ``__post_init__`` checks them (`recipes.checks`). `build_parser`
turns its fields into ``--field-name`` options (listed in the ``--help`` section an
`option` names, if any), so every command line's ``--help`` looks alike; `run_cli`
parses, builds the config (a ``ValueError`` from its checks becomes argparse's usage
error, exit code 2), and only then imports TensorFlow and runs. So ``--help`` answers at
once and a bad option costs no TensorFlow start-up.

Every config gets two checks for free: a field named ``seed`` (or ``*_seed``, or a tuple
``seeds``) must be an integer in [0, 2**32 - 1], numpy's range; and a user's mistake ends
with one ``error:`` line and exit code 2, its traceback shown only with ``RECIPES_DEBUG=1``
(`print_error`).

Example:

```python
@dataclass(frozen=True)
class Config:
    epochs: int = option(5, "epochs per variant")
    optimizer: str = option("adam", "optimizer", OPTIMIZER_NAMES)

def main(argv=None) -> int:
    return run_cli(Config, "my_package.experiment:run", argv, prog="python -m my_package",
                   description=__doc__)
```

Reference: Flax's examples (configs as dataclasses, one shared CLI helper), as in
/work/shared/STYLE.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
import traceback
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from recipes.checks import InputError, check_at_least

__all__ = ["DEBUG_ENV", "MAX_SEED", "build_parser", "check_seeds", "debug", "module_prog",
           "option", "parse_config", "parse_known_config", "print_error", "resolve",
           "run_cli"]

DEBUG_ENV = "RECIPES_DEBUG"
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit


def debug() -> bool:
    """Whether ``RECIPES_DEBUG`` asks for tracebacks (set, and not ``0``).

    Returns:
        `True` when ``$RECIPES_DEBUG`` is set to anything but ``""`` or ``"0"``.
    """
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def print_error(error: BaseException, *, prefix: str = "error") -> None:
    """Print ``<prefix>: <message>`` on stderr; with ``RECIPES_DEBUG=1``, the traceback first.

    Args:
        error: the exception (a user's mistake: its message names the input and the fix).
        prefix: the line's start, e.g. ``"python -m ch11.diagnose: error"``. Defaults to
            `"error"`.
    """
    if debug():
        traceback.print_exception(error, file=sys.stderr)
    print(f"{prefix}: {error}", file=sys.stderr, flush=True)


def check_seeds(config: Any) -> Any:
    """Check every seed field of a config: integers in [0, 2**32 - 1].

    Seed fields are ``seed``, names ending in ``_seed`` and tuples named ``seeds`` or
    ``*_seeds`` (an int ``seeds`` is a count of seeds, checked by its config); `None` (a
    default filled later) passes.

    Args:
        config: a config dataclass (or anything with such attributes).

    Returns:
        The config.

    Raises:
        ValueError: ``"seed must be >= 0, got -1."`` or ``"seed must be <= 4294967295
            (numpy's limit), got ..."``.
    """
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value is None:
            continue
        if f.name == "seed" or f.name.endswith("_seed"):
            values = (value,)
        elif f.name == "seeds" or f.name.endswith("_seeds"):
            # a tuple of seeds; an int is a count of seeds (ch11.transfer), not a seed
            values = tuple(value) if isinstance(value, tuple | list) else ()
        else:
            continue
        for v in values:
            check_at_least(f.name, v, 0)
            if v > MAX_SEED:
                raise ValueError(f"{f.name} must be <= {MAX_SEED} (numpy's limit), got {v!r}.")
    return config


def option(default: Any, help: str, choices: Sequence[Any] | None = None, *,
           metavar: str | tuple[str, ...] | None = None, group: str | None = None,
           parse: Callable[[str], Any] | None = None, nargs: int | None = None,
           default_text: str | None = None, hidden: bool = False) -> Any:
    """A config field: its default, its ``--help`` text and, optionally, its choices.

    Example:
        ```python
        epochs: int = option(5, "epochs per variant")
        oracle: tuple[str, int] | None = option(None, "the chief", parse=parse_address,
                                                metavar="HOST:PORT", group="distributed")
        ```

    Args:
        default: the default (the book's value where it gives one); an immutable value.
        help: the ``--help`` text; `build_parser` appends ``(default: ...)``.
        choices: the valid values, listed by ``--help`` and checked by argparse. Defaults
            to `None` (any value of the field's type).
        metavar: the value's name in ``--help`` (a tuple with `nargs`). Defaults to `None`
            (argparse's).
        group: the ``--help`` section the option is listed in (sections appear in the
            order of their first field). Defaults to `None` (the general "options").
        parse: turns one command-line word into the field's value, for values the field's
            type cannot parse (``"HOST:PORT"`` -> ``("HOST", PORT)``, ``"0,1,2"`` ->
            ``(0, 1, 2)``); a ``ValueError`` it raises is argparse's ``argument --x:
            <message>``. Defaults to `None` (the field's type parses each word).
        nargs: a tuple field's exact number of words (with `parse`: each word parsed).
            Defaults to `None` (a tuple takes one or more words; with `parse`, one word).
        default_text: what ``--help`` shows as the default, for a default that depends on
            other options (the field then defaults to `None`). Defaults to `None` (the value).
        hidden: leave the option out of ``--help`` (plumbing between processes). Defaults
            to `False`.

    Returns:
        A ``dataclasses.field``.
    """
    metadata: dict[str, Any] = {"help": help}
    extra = {"choices": None if choices is None else tuple(choices), "metavar": metavar,
             "group": group, "parse": parse, "nargs": nargs, "default_text": default_text,
             "hidden": hidden or None}
    metadata.update({k: v for k, v in extra.items() if v is not None})
    return dataclasses.field(default=default, metadata=metadata)


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(inner type, optional?) for ``X | None`` annotations."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def _optional(tp: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.lower() in ("none", "") else tp(text)

    parse.__name__ = getattr(tp, "__name__", "value")
    return parse


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """`parse` whose ``ValueError`` argparse prints as ``argument --x: <message>``."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            if debug():
                traceback.print_exc()
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def build_parser(config_cls: type, *, prog: str, description: str | None = None,
                 epilog: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one option per field of a config dataclass.

    Every field becomes ``--field-name`` (booleans: ``--flag/--no-flag``; tuples: several
    values; fields with ``choices`` list them), listed under its `option` ``group``. Help
    texts end with the default (or the field's ``default_text``).

    Args:
        config_cls: the frozen config dataclass.
        prog: the command, e.g. ``"python -m ch11.batch_norm"``.
        description: the top of ``--help`` (often the module docstring).
        epilog: the bottom of ``--help``. Defaults to `None`.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    hints = typing.get_type_hints(config_cls)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in dataclasses.fields(config_cls):
        if not f.init:
            continue
        tp, optional = _unwrap(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
        shown = f.metadata.get("default_text", shown)
        help_text = f.metadata.get("help", "") + f" (default: {shown})"
        kwargs: dict[str, Any] = {"default": default, "help": help_text}
        if f.metadata.get("hidden"):
            kwargs["help"] = argparse.SUPPRESS
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        if "metavar" in f.metadata:
            kwargs["metavar"] = f.metadata["metavar"]
        target: Any = parser
        if "group" in f.metadata:
            name = f.metadata["group"]
            if name not in groups:
                groups[name] = parser.add_argument_group(name)
            target = groups[name]
        if tp is bool:
            target.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if "parse" in f.metadata:  # one word -> the value (or each of `nargs` words)
            kwargs["type"] = _argparse_type(f.metadata["parse"])
            if "nargs" in f.metadata:
                kwargs["nargs"] = f.metadata["nargs"]
        elif typing.get_origin(tp) is tuple:
            kwargs["type"] = typing.get_args(tp)[0]
            kwargs["nargs"] = f.metadata.get("nargs", "+")
        else:
            kwargs["type"] = tp if not optional else _optional(tp)
        target.add_argument(flag, **kwargs)
    return parser


def parse_config(config_cls: type, argv: Sequence[str] | None, *, prog: str,
                 description: str | None = None, epilog: str | None = None,
                 finish: Callable[[Any], Any] | None = None) -> Any:
    """Parse `argv` into a config; a bad value exits with argparse's message and code 2.

    Args:
        config_cls: the frozen config dataclass.
        argv: the arguments (``None``: ``sys.argv[1:]``).
        prog: the command shown in the usage line.
        description: the top of ``--help``.
        epilog: the bottom of ``--help``.
        finish: ``finish(config) -> config``, run after the config's own checks: for what
            a config alone cannot know (defaults read from other options, a folder that
            must exist). A ``ValueError`` it raises is a usage error too. Defaults to
            `None`.

    Returns:
        The config (`finish`'s result when given).

    Raises:
        SystemExit: ``--help`` (code 0) or a bad option or value (code 2).
    """
    parser = build_parser(config_cls, prog=prog, description=description, epilog=epilog)
    return _config(parser, config_cls, parser.parse_args(argv), finish)


def parse_known_config(config_cls: type, argv: Sequence[str] | None, *, prog: str,
                       description: str | None = None, epilog: str | None = None,
                       finish: Callable[[Any, list[str]], tuple[Any, list[str]]] | None = None
                       ) -> tuple[Any, list[str]]:
    """`parse_config` for a command that passes the options it does not know on.

    Args:
        config_cls: the frozen config dataclass.
        argv: the arguments (``None``: ``sys.argv[1:]``).
        prog: the command shown in the usage line.
        description: the top of ``--help``.
        epilog: the bottom of ``--help``.
        finish: ``finish(config, rest) -> (config, rest)``, as `parse_config`'s (e.g. to
            refuse options that must not be passed on); a ``ValueError`` it raises is a
            usage error. Defaults to `None`.

    Returns:
        ``(config, the other arguments in their order)``.

    Raises:
        SystemExit: ``--help`` (code 0) or a bad option or value (code 2).
    """
    parser = build_parser(config_cls, prog=prog, description=description, epilog=epilog)
    args, rest = parser.parse_known_args(argv)
    config = _config(parser, config_cls, args, None)
    if finish is None:
        return config, rest
    try:
        return finish(config, rest)
    except ValueError as e:
        _usage_error(parser, e)


def _config(parser: argparse.ArgumentParser, config_cls: type, args: argparse.Namespace,
            finish: Callable[[Any], Any] | None) -> Any:
    """The config of parsed arguments (seeds checked, ``finish``-ed); a ``ValueError`` is a
    usage error."""
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items()}
    try:
        config = check_seeds(config_cls(**values))
        return finish(config) if finish is not None else config
    except ValueError as e:
        _usage_error(parser, e)


def _usage_error(parser: argparse.ArgumentParser, error: ValueError) -> None:
    """argparse's usage error (exit code 2); with ``RECIPES_DEBUG=1``, the traceback first."""
    if debug():
        traceback.print_exception(error, file=sys.stderr)
    parser.error(str(error))


def resolve(target: str | Callable[..., Any]) -> Callable[..., Any]:
    """A callable, or ``"package.module:function"`` imported now.

    Args:
        target: the callable or its dotted path.

    Returns:
        The callable.
    """
    if callable(target):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def run_cli(config_cls: type, run: str | Callable[[Any], Any], argv: Sequence[str] | None, *,
            prog: str, description: str | None = None, epilog: str | None = None) -> int:
    """Parse, then import TensorFlow quietly, then ``run(config)``; bad input exits 2.

    Args:
        config_cls: the frozen config dataclass.
        run: ``run(config)`` or its ``"package.module:function"`` path (imported after the
            arguments are parsed, so ``--help`` does not wait for TensorFlow).
        argv: the arguments (``None``: ``sys.argv[1:]``).
        prog: the command shown in the usage line.
        description: the top of ``--help``.
        epilog: the bottom of ``--help``.

    Returns:
        The exit code: 0, or 2 when the run raised `recipes.checks.InputError` (its
        message is printed as ``error: ...`` on stderr, after its traceback with
        ``RECIPES_DEBUG=1``: `print_error`).
    """
    config = parse_config(config_cls, argv, prog=prog, description=description, epilog=epilog)
    from recipes._startup import import_tensorflow_quietly

    import_tensorflow_quietly()
    try:
        resolve(run)(config)
    except InputError as e:
        print_error(e)
        return 2
    return 0


def module_prog(module: str) -> str:
    """``"python -m <module>"``, with the real name when the module runs as ``__main__``.

    Args:
        module: a ``__name__``.

    Returns:
        The command.
    """
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec is not None else module
    if module.endswith(".__main__"):
        module = module[: -len(".__main__")]
    return f"python -m {module}"
