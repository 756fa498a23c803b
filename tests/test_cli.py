"""Tests of recipes.cli: option metadata (help sections, parsers, exact counts, hidden
options), the seed check every config gets, and RECIPES_DEBUG's tracebacks."""

import contextlib
import importlib
import io
import os
from dataclasses import dataclass
from unittest import mock

import pytest
import tensorflow as tf

from recipes.checks import InputError, check_at_least
from recipes.cli import build_parser, option, parse_config, parse_known_config, run_cli


def _pair(text):
    left, sep, right = text.partition(":")
    if not sep or not right.isdigit():
        raise ValueError(f"must be NAME:NUMBER, got {text!r}")
    return left, int(right)


@dataclass(frozen=True)
class _Grouped:
    seed: int = option(1, "seed")
    name: str = option("a", "the name", ("a", "b"), group="first")
    size: int | None = option(None, "the size", group="second", default_text="10; 2 with --quick")
    quick: bool = option(False, "smoke run", group="first")
    pair: tuple[str, int] | None = option(None, "a pair", parse=_pair, metavar="NAME:N",
                                          group="second")
    barrier: tuple[str, ...] | None = option(None, "a folder and a count", nargs=2,
                                             metavar=("DIR", "N"))
    secret: str | None = option(None, "set by a parent process", hidden=True)
    sizes: tuple[int, ...] = option((1, 2), "several sizes")

    def __post_init__(self):
        if self.size is not None:
            check_at_least("size", self.size, 1)


def _parse(argv, **kwargs):
    out, err = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result = parse_config(_Grouped, argv, prog="python -m grouped", **kwargs)
        except SystemExit as e:
            code, result = e.code, None
    return result, code, out.getvalue(), err.getvalue()


class OptionMetadataTest(tf.test.TestCase):
    def test_groups_are_help_sections_in_first_field_order(self):
        text = build_parser(_Grouped, prog="python -m grouped").format_help()
        self.assertLess(text.index("\nfirst:"), text.index("\nsecond:"))
        first = text[text.index("\nfirst:"):text.index("\nsecond:")]
        self.assertIn("--name {a,b}", first)
        self.assertIn("--quick, --no-quick", first)
        self.assertNotIn("--size", first)
        options = text[text.index("\noptions:"):text.index("\nfirst:")]
        for flag in ("--seed", "--barrier", "--sizes"):  # ungrouped: the general section
            self.assertIn(flag, options)

    def test_default_text_and_hidden(self):
        text = " ".join(build_parser(_Grouped, prog="python -m grouped").format_help().split())
        self.assertIn("the size (default: 10; 2 with --quick)", text)
        self.assertIn("several sizes (default: 1 2)", text)
        self.assertNotIn("--secret", text)
        self.assertNotIn("parent process", text)
        config, code, _, _ = _parse(["--secret", "s3"])
        self.assertEqual((config.secret, code), ("s3", None))

    def test_parse_and_nargs(self):
        config, code, _, _ = _parse(["--pair", "x:3", "--barrier", "/tmp", "2", "--sizes",
                                     "4", "5", "6"])
        self.assertIsNone(code)
        self.assertEqual(config.pair, ("x", 3))
        self.assertEqual(config.barrier, ("/tmp", "2"))
        self.assertEqual(config.sizes, (4, 5, 6))
        self.assertEqual(config, _Grouped(pair=("x", 3), barrier=("/tmp", "2"), sizes=(4, 5, 6)))
        _, code, _, err = _parse(["--pair", "x"])
        self.assertEqual(code, 2)
        self.assertIn("python -m grouped: error: argument --pair: must be NAME:NUMBER, got 'x'",
                      err)
        _, code, _, err = _parse(["--barrier", "/tmp"])
        self.assertEqual(code, 2)
        self.assertIn("argument --barrier: expected 2 arguments", err)

    def test_finish_returns_a_config_and_its_errors_exit_2(self):
        def finish(config):
            if config.quick and config.size is None:
                raise ValueError("--quick needs --size here.")
            return config

        config, code, _, _ = _parse(["--size", "3", "--quick"], finish=finish)
        self.assertEqual((config.size, config.quick, code), (3, True, None))
        _, code, _, err = _parse(["--quick"], finish=finish)
        self.assertEqual(code, 2)
        self.assertIn("python -m grouped: error: --quick needs --size here.", err)
        _, code, _, err = _parse(["--size", "0"], finish=finish)  # the config's own check first
        self.assertEqual(code, 2)
        self.assertIn("error: size must be >= 1, got 0.", err)

    def test_parse_known_config_passes_the_rest_on(self):
        config, rest = parse_known_config(_Grouped, ["--seed", "7", "--other", "x", "--quick"],
                                          prog="python -m grouped")
        self.assertEqual((config.seed, config.quick, rest), (7, True, ["--other", "x"]))

        def refuse(config, rest):
            if "--other" in rest:
                raise ValueError("--other: not here.")
            return config, rest

        err = io.StringIO()
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
            parse_known_config(_Grouped, ["--other", "x"], prog="python -m grouped",
                               finish=refuse)
        self.assertEqual(info.value.code, 2)
        self.assertIn("python -m grouped: error: --other: not here.", err.getvalue())
        self.assertEqual(parse_known_config(_Grouped, ["--y"], prog="p", finish=refuse)[1],
                         ["--y"])


def _seeds(text):
    return tuple(int(s) for s in text.split(","))


@dataclass(frozen=True)
class _Seeded:
    seed: int = option(0, "seed")
    data_seed: int | None = option(None, "seed of the split")
    seeds: tuple[int, ...] | None = option(None, "seeds", parse=_seeds)


def _exit(main, argv, env=None):
    """(exit code, stderr) of ``main(argv)``, which may return or raise SystemExit."""
    err = io.StringIO()
    environ = {k: v for k, v in os.environ.items() if k != "RECIPES_DEBUG"}
    environ.update(env or {})
    with mock.patch.dict(os.environ, environ, clear=True), contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


def _run(config):
    if config.seed == 3:
        raise InputError("the photo folder 'x' is empty: add photos or choose another.")
    if config.seed == 4:
        raise KeyError("a bug")


def _main(argv):
    return run_cli(_Seeded, _run, argv, prog="python -m seeded")


class SeedTest(tf.test.TestCase):
    def test_negative_and_too_large_seeds_exit_2(self):
        for argv, message in (
                (["--seed", "-1"], "seed must be >= 0, got -1."),
                (["--seed", "4294967296"], "seed must be <= 4294967295 (numpy's limit), got "
                                           "4294967296."),
                (["--data-seed", "-5"], "data_seed must be >= 0, got -5."),
                (["--seeds", "0,1,-2"], "seeds must be >= 0, got -2.")):
            with self.subTest(argv):
                code, err = _exit(_main, argv)
                self.assertEqual(code, 2)
                self.assertIn(f"python -m seeded: error: {message}", err)
                self.assertNotIn("Traceback", err)
        config = parse_config(_Seeded, ["--seed", "4294967295", "--seeds", "0,7"], prog="p")
        self.assertEqual((config.seed, config.seeds), (4294967295, (0, 7)))
        code, err = _exit(lambda a: parse_known_config(_Seeded, a, prog="p"), ["--seed", "-1"])
        self.assertEqual(code, 2)
        self.assertIn("p: error: seed must be >= 0, got -1.", err)

    def test_a_list_of_seeds_is_checked_seed_by_seed(self):
        # ch11.transfer's `seeds` lists the seeds (it was a count before the evidence work).
        from ch11.transfer import Config

        config = parse_config(Config, ["--quick", "--seeds", "3", "4"], prog="p")
        self.assertEqual((config.quick, config.seeds), (True, (3, 4)))
        err = io.StringIO()
        with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(err):
            parse_config(Config, ["--seeds", "3", "-1"], prog="p")
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("must be >= 0, got -1.", err.getvalue())

    def test_every_command_line_refuses_a_negative_seed(self):
        for module, argv in (("tuning.search", ["--seed", "-1"]),
                             ("ch11.batch_norm", ["--seed", "-1"]),
                             ("ch11.fish", ["--seed", "-1"]),
                             ("bench.time_to_accuracy", ["--seeds", "0,-1"])):
            with self.subTest(module):
                code, err = _exit(importlib.import_module(module).main, argv)
                self.assertEqual(code, 2)
                self.assertRegex(err, r"error: seeds? must be >= 0, got -1\.")
                self.assertNotIn("Traceback", err)


class DebugTest(tf.test.TestCase):
    """One ``error:`` line for a user's mistake; RECIPES_DEBUG=1 adds its traceback."""

    def test_input_error_is_one_line_and_exit_2(self):
        code, err = _exit(_main, ["--seed", "3"])
        self.assertEqual(code, 2)
        self.assertEqual(err, "error: the photo folder 'x' is empty: add photos or choose "
                              "another.\n")
        code, err = _exit(_main, ["--seed", "3"], {"RECIPES_DEBUG": "0"})
        self.assertNotIn("Traceback", err)

    def test_recipes_debug_shows_the_traceback(self):
        code, err = _exit(_main, ["--seed", "3"], {"RECIPES_DEBUG": "1"})
        self.assertEqual(code, 2)
        self.assertIn("Traceback (most recent call last)", err)
        self.assertIn("in _run", err)
        self.assertIn("recipes.checks.InputError: the photo folder 'x' is empty", err)
        self.assertTrue(err.endswith("\nerror: the photo folder 'x' is empty: add photos or "
                                     "choose another.\n"), err)

    def test_recipes_debug_shows_a_usage_errors_traceback(self):
        code, err = _exit(_main, ["--seed", "-1"], {"RECIPES_DEBUG": "1"})
        self.assertEqual(code, 2)
        self.assertIn("Traceback (most recent call last)", err)
        self.assertIn("in check_at_least", err)
        self.assertIn("python -m seeded: error: seed must be >= 0, got -1.", err)
        code, err = _exit(_main, ["--seeds", "0,x"], {"RECIPES_DEBUG": "1"})
        self.assertEqual(code, 2)
        self.assertIn("Traceback", err)
        self.assertIn("invalid literal for int()", err)

    def test_a_bug_keeps_its_traceback(self):
        with self.assertRaisesRegex(KeyError, "a bug"):
            _main(["--seed", "4"])
