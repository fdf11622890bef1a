"""Validators for the values a user passes: counts, sizes, seeds, flags, numbers. One rule
everywhere.

An integer argument is a Python ``int`` or a NumPy integer scalar, never a bool, a float
(``3.0`` included: a float where a count goes is more often a slip than a count) or a string.
The CLI parses its integers itself; these checks are for the Python API.

    >>> count("depth", 30)
    30
    >>> seeds(3)
    (0, 1, 2)
    >>> seeds([4, 1])
    (4, 1)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence, Sized
from numbers import Integral, Number
from typing import Any

from initsuite.core.errors import InitsuiteError, InitsuiteTypeError, unknown

__all__ = [
    "MAX_SEED",
    "MAX_SEEDS",
    "as_tuple",
    "choice",
    "count",
    "counts",
    "flag",
    "number",
    "seed",
    "seeds",
]

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a 64-bit seed
# A count above this is a slip, not a study: the seeds are listed in the configuration (and
# meta.json) before the size budget can look at the grid, so a huge count must stop here.
MAX_SEEDS = 100_000


def _as_int(value: object) -> int | None:
    """``value`` as an int if it is an integer (not a bool), else None."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        return operator.index(value)
    return None


def count(name: str, value: object, low: int = 1) -> int:
    """``value`` as an int, checked to be an integer >= ``low``."""
    out = _as_int(value)
    if out is None:
        raise InitsuiteTypeError(f"{name} must be an integer >= {low}, got {value!r}")
    if out < low:
        raise InitsuiteError(f"{name} must be >= {low}, got {out}")
    return out


def counts(name: str, values: object, low: int = 1) -> tuple[int, ...]:
    """One integer or an iterable of them, each >= ``low``: a non-empty tuple, duplicates
    dropped (first occurrence kept)."""
    if isinstance(values, Iterable) and not isinstance(values, (str, bytes)):
        items = _list(name, values)
    else:
        items = [values]
    if not items:
        raise InitsuiteError(f"{name} must not be empty")
    return tuple(dict.fromkeys(count(name, v, low) for v in items))


def seed(value: object, name: str = "seed") -> int:
    """A single seed: an integer in [0, 2**63 - 1]."""
    out = count(name, value, low=0)
    if out > MAX_SEED:
        raise InitsuiteError(f"{name} must be at most 2**63 - 1, got {out}")
    return out


def seeds(value: object, name: str = "seeds") -> tuple[int, ...]:
    """A count (``3`` → seeds 0, 1, 2) or an iterable of seeds (integers >= 0), duplicates
    dropped; anything else raises."""
    n = _as_int(value)
    if n is not None:
        if n < 1:
            raise InitsuiteError(f"{name} must be >= 1 (a count), got {n}")
        if n > MAX_SEEDS:
            raise InitsuiteError(f"{name}={n} is more than {MAX_SEEDS} seeds: give a smaller count")
        return tuple(range(n))
    what = f"{name} must be an int count or a list of ints, got"
    if isinstance(value, (str, bytes, Number)) or not isinstance(value, Iterable):
        raise InitsuiteTypeError(f"{what} {value!r}")
    if isinstance(value, Sized) and len(value) > MAX_SEEDS:  # before listing a huge range
        raise InitsuiteError(f"{name} lists {len(value)} seeds, more than {MAX_SEEDS}")
    items = _list(name, value)
    if not items:
        raise InitsuiteError(f"{name} must not be empty")
    out = []
    for v in items:
        s = _as_int(v)
        if s is None:
            raise InitsuiteTypeError(f"{what} {v!r} in {_short(items)}")
        if s < 0:
            raise InitsuiteError(f"{name} must be integers >= 0, got {s}")
        if s > MAX_SEED:
            raise InitsuiteError(f"{name} must be at most 2**63 - 1, got {s}")
        out.append(s)
    return tuple(dict.fromkeys(out))


def choice(
    name: str,
    value: object,
    choices: Sequence[str],
    *,
    kind: str | None = None,
    none: bool = False,
) -> str:
    """``value`` checked to be one of ``choices`` (a string); an unknown one names the
    nearest. ``kind``: what the message calls it (default ``name``); ``none``: None is a
    choice too, handled by the caller, and named in the messages."""
    shown = ", ".join(choices)
    if not isinstance(value, str):
        either = "None or one of" if none else "one of"
        raise InitsuiteTypeError(f"{name} must be {either} {shown}, got {type(value).__name__}")
    if value not in choices:
        raise InitsuiteError(unknown(kind or name, value, ["None", *choices] if none else choices))
    return value


def flag(name: str, value: object) -> bool:
    """``value`` checked to be ``True`` or ``False`` (not 1, 0 or a string)."""
    if not isinstance(value, bool):
        raise InitsuiteTypeError(f"{name} must be True or False, got {value!r}")
    return value


def number(
    name: str,
    value: object,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """``value``, an int or a float (not a bool), checked to lie between ``low`` and ``high``
    (each bound included unless ``open_low``/``open_high``); returned as given. NaN never
    passes; ±inf only where its bound is infinite and included."""
    if low == 0 and open_low and high == math.inf:
        what = "a positive finite number" if open_high else "a positive number"
    else:
        what = f"a number in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InitsuiteTypeError(f"{name} must be {what}, got {value!r}")
    above = value > low if open_low else value >= low
    below = value < high if open_high else value <= high
    if not (above and below):
        raise InitsuiteError(f"{name} must be {what}, got {value!r}")
    return value


def as_tuple(value: object) -> tuple[Any, ...]:
    """One value (a string or number) as a 1-tuple; any other iterable as a tuple of its items."""
    if isinstance(value, (str, int, float)) or not isinstance(value, Iterable):
        return (value,)
    return tuple(value)


def _list(name: str, values: Iterable[object]) -> list[object]:
    try:
        return list(values)
    except TypeError:  # e.g. a 0-d array, iterable in type only
        raise InitsuiteTypeError(f"{name} must be integers, got {values!r}") from None


def _short(items: list[object]) -> str:
    text = repr(items)
    return text if len(text) <= 60 else text[:57] + "...]"
