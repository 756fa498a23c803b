"""The experiments' settings and their command line, written once.

- `ExperimentConfig`: the frozen base of every experiment's ``Config``, with the fields
  each one has first (``seed``, ``quick``) and the checks their ``__post_init__`` shares.
- `option(...)` (from `recipes.cli`) and friends: a ``Config`` field with its ``--help``
  text (and choices).
- `experiment_package`: an experiment package's ``main`` (the CLI `recipes.cli.run_cli`
  builds from the ``Config`` fields, parsed before TensorFlow is imported) and its lazy
  ``__getattr__``.
- `parse_variant` / `parse_variants`: ``"activation:initializer"`` variants, checked.
- `SeededConfig`, `seeds_option`, `headline_seeds`, `seeds_why`: the ``--seeds`` of an
  MNIST experiment's headline comparison (``--seed`` and the next two by default).

Nothing here imports TensorFlow: a ``config.py`` imports only this module, `recipes.names`,
`recipes.specs` and `recipes.checks`.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from recipes.checks import check_at_least, check_choice, check_positive, check_sizes
from recipes.cli import module_prog, option, run_cli
from recipes.names import OPTIMIZER_NAMES, PRECISIONS

__all__ = ["INPUT_NORMS", "MNIST_INTRA_OP_THREADS", "ExperimentConfig", "SeededConfig",
           "check_digit", "check_names", "experiment_package", "headline_seeds",
           "input_norm_option", "optimizer_option", "option", "out_dir_option",
           "parse_variant", "parse_variants", "precision_option", "seeds_option", "seeds_why"]

INPUT_NORMS = ("normalization", "none")
# TensorFlow's intra-op threads in an MNIST experiment's command line (unless
# TF_NUM_INTRAOP_THREADS says otherwise): their small matrix products run as fast on one
# thread as on two (2 cores, measured: a 20 x 100 MLP, two epochs of 20,000 images, 1.72 s
# vs 1.80 s; a small CNN, one epoch of 5,000, 1.16 s vs 1.26 s), so `make recipes` runs two
# experiments at once, and a run's numbers do not depend on the machine's cores (a
# convolution's sums do depend on the thread count).
MNIST_INTRA_OP_THREADS = 1


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


def precision_option(models: str) -> Any:
    """The ``precision`` option of an MNIST experiment with convolutional models.

    Args:
        models: which models it applies to, e.g. ``"CNN variants"``.

    Returns:
        A ``dataclasses.field`` defaulting to ``"auto"``, choices `recipes.names.PRECISIONS`
        (checked by `ExperimentConfig._check_precision`).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11 (mixed precision, in "Faster
    Optimizers"' sidebar on training speed); bench/precision.md (the measurement).
    """
    return option("auto", f"dtype policy of the {models} ('auto': mixed_bfloat16 where the "
                          "CPU computes bf16 natively, else float32); the MLPs stay float32 "
                          "(bf16 does not speed them up: bench/precision.md)", PRECISIONS)


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
            check_at_least(name, getattr(self, name), minimum)

    def _positive(self, *names: str) -> None:
        """Raise ``ValueError("<name> must be > 0, got <value>.")`` for the first of `names`
        that is not above 0 (NaN included)."""
        for name in names:
            check_positive(name, getattr(self, name))

    def _check_precision(self) -> None:
        """Raise ``ValueError`` naming the choices unless ``precision`` is one of
        `recipes.names.PRECISIONS`."""
        check_choice("precision", self.precision, PRECISIONS)

    def _positive_sizes(self, name: str) -> None:
        """Raise ``ValueError("<name> must be positive, got <value>.")`` unless the tuple
        `name` is non-empty with every entry >= 1 (layer sizes)."""
        check_sizes(name, getattr(self, name))


def experiment_package(package: str, config_cls: type) -> tuple[
        Callable[[Sequence[str] | None], int], Callable[[str], Any]]:
    """An experiment package's ``main`` and its lazy ``__getattr__``.

    Every experiment is a package ``ch11/<name>/`` with ``config.py`` (its ``Config``, no
    TensorFlow), ``experiment.py`` (``run(config) -> Results``), ``report.py`` (its figures
    and text) and a two-line ``__main__.py``. Its ``__init__.py`` is::

        from ch11._config import experiment_package
        from ch11.<name>.config import Config

        main, __getattr__ = experiment_package(__name__, Config)

    so ``python -m ch11.<name> --help`` parses before TensorFlow is imported, and
    ``ch11.<name>.run`` (and any other name of ``experiment.py``) is imported on first use.

    Args:
        package: the package's ``__name__``.
        config_cls: its ``Config``.

    Returns:
        ``(main, __getattr__)``: ``main(argv=None) -> int`` (for a `SeededConfig`, with
        `MNIST_INTRA_OP_THREADS` TensorFlow threads unless ``TF_NUM_INTRAOP_THREADS`` is
        set or TensorFlow already runs) parses `argv` into a
        ``Config`` and runs ``experiment.run`` (exit code 2 on bad input).
    """
    description = sys.modules[package].__doc__

    def main(argv: Sequence[str] | None = None) -> int:
        if issubclass(config_cls, SeededConfig) and "tensorflow" not in sys.modules:
            # read when TensorFlow starts: once it runs, its count stays (and is recorded)
            os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(MNIST_INTRA_OP_THREADS))
        return run_cli(config_cls, f"{package}.experiment:run", argv,
                       prog=module_prog(package), description=description)

    main.__doc__ = f"CLI: ``python -m {package} [options]`` (``--help`` lists them)."
    main.__module__ = package

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        import importlib

        module = importlib.import_module(f"{package}.experiment")
        try:
            return getattr(module, name)
        except AttributeError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    return main, __getattr__


def check_names(name: str, values: Sequence[str], valid: Sequence[str], item: str) -> None:
    """A ``Config`` field that lists names: at least one, each one of `valid`.

    Args:
        name: the field's name, e.g. ``"optimizers"``.
        values: its value, a tuple of names.
        valid: the valid names (from their owner: `recipes.names`, `recipes.specs`).
        item: what one name names, for the message, e.g. ``"optimizer"``.

    Raises:
        ValueError: ``"<name> must name at least one of a, b, c; got ()."`` or
            ``"Unknown <item> 'x'. Valid: a, b, c."`` (`recipes.checks.check_choice`).
    """
    if isinstance(values, str) or not values:
        raise ValueError(f"{name} must name at least one of {', '.join(valid)}; got {values!r}.")
    for value in values:
        check_choice(item, value, valid)


def check_digit(name: str, value: Any) -> int:
    """An MNIST digit: an integer 0-9 (not a bool, not a float such as 3.0).

    Args:
        name: the argument's name, for the message.
        value: the value.

    Returns:
        The digit.

    Raises:
        ValueError: ``"<name> must be an MNIST digit 0-9, got <value>."``
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or not 0 <= value <= 9:
        raise ValueError(f"{name} must be an MNIST digit 0-9, got {value!r}.")
    return int(value)


def parse_variant(text: str) -> tuple[str, str]:
    """Split an ``"activation:initializer"`` variant and check both names.

    Args:
        text: e.g. ``"relu:he_normal"``.

    Returns:
        ``(activation, initializer)``.

    Raises:
        ValueError: if the text has no single ``:`` or a name is unknown.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, Table 11-1.
    """
    from recipes.names import ACTIVATION_NAMES, INITIALIZER_NAMES

    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"Variant {text!r} must look like 'activation:initializer', "
                         "e.g. 'relu:he_normal'.")
    activation, initializer = parts
    if activation not in ACTIVATION_NAMES:
        raise ValueError(f"Unknown activation {activation!r} in variant {text!r}. "
                         f"Valid: {', '.join(ACTIVATION_NAMES)}.")
    if initializer not in INITIALIZER_NAMES:
        raise ValueError(f"Unknown initializer {initializer!r} in variant {text!r}. "
                         f"Valid: {', '.join(INITIALIZER_NAMES)}.")
    return activation, initializer


def parse_variants(texts: Sequence[str]) -> list[tuple[str, str]]:
    """`parse_variant` for each of a non-empty list of variants.

    Args:
        texts: e.g. ``("sigmoid:glorot_uniform", "relu:he_normal")``.

    Returns:
        One ``(activation, initializer)`` per variant, in order.

    Raises:
        ValueError: if `texts` is empty, or as `parse_variant`.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, Table 11-1.
    """
    if not texts:
        raise ValueError("variants must name at least one 'activation:initializer' pair.")
    return [parse_variant(text) for text in texts]


def seeds_option(count: int = 3, why: str = "") -> Any:
    """The ``seeds`` option: the seeds the headline comparison is trained with.

    Args:
        count: how many seeds by default: ``--seed`` and the next ``count - 1``.
        why: why the default is fewer than 3 (the run's time), shown by ``--help`` and
            next to the figure in the report. Defaults to `""`.

    Returns:
        A ``dataclasses.field`` defaulting to `None` (filled by `headline_seeds`).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 2 (the spread of a measurement).
    """
    default = "--seed only" if count == 1 else f"--seed and the next {count - 1}"
    field = option(None, "seeds of the headline comparison: its variants are trained once per "
                         "seed and reported as mean ± std (--quick: --seed only)",
                   default_text=default + (f"; {why}" if why else ""), metavar="SEED")
    return dataclasses.field(default=None, metadata={**field.metadata, "seed_count": count,
                                                     "seeds_why": why})


@dataclass(frozen=True)
class SeededConfig(ExperimentConfig):
    """`ExperimentConfig` with ``seeds``: the MNIST experiments' headline is run per seed.

    The full run (every variant, figure and diagnostic) uses ``seed``; the headline
    comparison's variants are trained again with each other seed of `headline_seeds`. A
    subclass redeclares ``seeds = seeds_option(n, why)`` for another default count, and
    calls ``self._check_seeds()`` in its ``__post_init__``.

    Args:
        seeds: the headline's seeds. Defaults to `None` (`headline_seeds`: ``seed`` and
            the next two).
    """

    seeds: tuple[int, ...] | None = seeds_option(3)

    def _check_seeds(self) -> None:
        """Raise ``ValueError`` unless ``seeds`` is `None` or distinct seeds, at least one."""
        if self.seeds is None:
            return
        if isinstance(self.seeds, (str, int)) or not self.seeds:
            raise ValueError(f"seeds must list at least one seed, got {self.seeds!r}.")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must not repeat a seed, got {tuple(self.seeds)}.")
        for seed in self.seeds:
            check_at_least("seeds", seed, 0)


def _seeds_field(config: Any) -> Any:
    return {f.name: f for f in dataclasses.fields(config)}["seeds"]


def headline_seeds(config: Any) -> tuple[int, ...]:
    """The seeds a config's headline comparison runs with.

    Args:
        config: a `SeededConfig`.

    Returns:
        ``config.seeds`` when given; otherwise ``seed``, ``seed + 1``, ... as many as its
        ``seeds_option`` count (only ``seed`` with ``quick``: a quick run checks the
        plumbing, not the spread; pass ``seeds`` to rerun the headline in a quick run).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 2 (the spread of a measurement).
    """
    if config.seeds is not None:
        return tuple(int(s) for s in config.seeds)
    count = _seeds_field(config).metadata.get("seed_count", 3)
    if config.quick:
        count = 1
    return tuple(config.seed + i for i in range(count))


def seeds_why(config: Any) -> str:
    """Why a config's default runs fewer than 3 seeds (`""` when it does not).

    Args:
        config: a `SeededConfig`.

    Returns:
        The reason given to `seeds_option`, or `""` when ``seeds`` was given explicitly.
    """
    return "" if config.seeds is not None else _seeds_field(config).metadata.get("seeds_why", "")
