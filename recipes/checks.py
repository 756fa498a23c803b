"""Argument checks, written once: every message names the argument, its value and the rule.

Specs, schedules, loaders and every command line's config check their inputs with these
functions. Numbers must be finite: ``nan`` and ``inf`` fail every check (``not value > 0``
alone lets ``inf`` through, and a diverged run then looks like a result). No TensorFlow
here, so configs can be checked before it is imported.

Example:

```python
check_positive("learning_rate", 1e-3)          # returns 0.001
check_choice("pooling", "median", ("max", "avg"))
# ValueError: Unknown pooling 'median'. Valid: max, avg.
```
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["InputError", "check_at_least", "check_choice", "check_finite", "check_fraction",
           "check_positive", "check_positive_int", "check_sizes"]


class InputError(ValueError):
    """A user's input that cannot work (a missing folder, a bad file, a bad option).

    Command lines print its message and exit with code 2, without a traceback.
    """


def _real(name: str, value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be {what}, got {value!r}.")
    return float(value)


def check_finite(name: str, value: Any) -> float:
    """A finite real number (not bool, NaN or infinite).

    Args:
        name: the argument's name, for the message.
        value: the value.

    Returns:
        ``float(value)``.

    Raises:
        ValueError: ``"<name> must be a finite number, got <value>."``
    """
    return _real(name, value, "a finite number")


def check_positive(name: str, value: Any) -> float:
    """A finite number > 0.

    Args:
        name: the argument's name, for the message.
        value: the value.

    Returns:
        ``float(value)``.

    Raises:
        ValueError: ``"<name> must be > 0, got <value>."`` (or ``"... must be a finite
            number > 0 ..."`` for NaN, infinities and non-numbers).
    """
    x = _real(name, value, "a finite number > 0")
    if not x > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}.")
    return x


def check_at_least(name: str, value: Any, minimum: float, *, integer: bool = True) -> Any:
    """A finite number (an integer by default) >= `minimum`.

    Args:
        name: the argument's name, for the message.
        value: the value.
        minimum: the smallest valid value.
        integer: require an integer value. Defaults to `True`.

    Returns:
        The value, as ``int`` when `integer`, else ``float``.

    Raises:
        ValueError: ``"<name> must be >= <minimum>, got <value>."`` (or ``"... must be an
            integer >= ..."`` for fractions, NaN, infinities and non-numbers).
    """
    what = f"{'an integer' if integer else 'a finite number'} >= {minimum:g}"
    x = _real(name, value, what)
    if integer and int(x) != x:
        raise ValueError(f"{name} must be {what}, got {value!r}.")
    if x < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value!r}.")
    return int(x) if integer else x


def check_positive_int(name: str, value: Any) -> int:
    """An integer >= 1.

    Args:
        name: the argument's name, for the message.
        value: the value.

    Returns:
        ``int(value)``.

    Raises:
        ValueError: ``"<name> must be an integer >= 1, got <value>."``
    """
    return check_at_least(name, value, 1)


def check_fraction(name: str, value: Any, *, low: float = 0.0, high: float = 1.0,
                   include_low: bool = True, include_high: bool = False) -> float:
    """A finite number in an interval, by default ``[0, 1)`` (a dropout rate, a split).

    Args:
        name: the argument's name, for the message.
        value: the value.
        low: the lower bound. Defaults to `0.0`.
        high: the upper bound. Defaults to `1.0`.
        include_low: ``low`` itself is valid. Defaults to `True`.
        include_high: ``high`` itself is valid. Defaults to `False`.

    Returns:
        ``float(value)``.

    Raises:
        ValueError: ``"<name> must be in [0, 1), got <value>."``
    """
    interval = f"{'[' if include_low else '('}{low:g}, {high:g}{']' if include_high else ')'}"
    x = _real(name, value, f"a finite number in {interval}")
    above = x >= low if include_low else x > low
    below = x <= high if include_high else x < high
    if not (above and below):
        raise ValueError(f"{name} must be in {interval}, got {value!r}.")
    return x


def check_choice(name: str, value: Any, valid: Iterable[Any]) -> Any:
    """One of the valid values.

    Args:
        name: what the value names (``"activation"``, ``"pooling"``), for the message.
        value: the value.
        valid: the valid values, listed in the message in this order.

    Returns:
        The value.

    Raises:
        ValueError: ``"Unknown <name> <value>. Valid: a, b, c."``
    """
    valid = tuple(valid)
    if value not in valid:
        raise ValueError(f"Unknown {name} {value!r}. Valid: {', '.join(map(str, valid))}.")
    return value


def check_sizes(name: str, values: Sequence[Any], *, allow_empty: bool = False) -> tuple[int, ...]:
    """Layer sizes: a sequence of integers >= 1 (non-empty unless `allow_empty`).

    Args:
        name: the argument's name, for the message.
        values: the sizes.
        allow_empty: accept an empty sequence. Defaults to `False`.

    Returns:
        The sizes as a tuple of ints.

    Raises:
        ValueError: ``"<name> must be integers >= 1, got <values>."``
    """
    if isinstance(values, str | bytes) or not isinstance(values, Sequence) \
            or (not values and not allow_empty):
        raise ValueError(f"{name} must be a {'' if allow_empty else 'non-empty '}sequence of "
                         f"integers >= 1, got {values!r}.")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be integers >= 1, got {tuple(values)!r}.")
    return tuple(int(v) for v in values)
