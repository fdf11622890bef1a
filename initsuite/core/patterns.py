"""Shell-style patterns over scheme names (``"kaiming*"``, ``"keras:*"``), torch-free.

``:`` separates a framework from its scheme, and wildcards do not cross it (as ``/`` in a
path): ``"*_normal"`` and ``"*"`` match torch's vocabulary only, ``"keras:*"`` Keras'
schemes, ``"*:he_normal"`` every framework's ``he_normal``, ``"*:*"`` every framework's.
"""

from __future__ import annotations

import fnmatch

from initsuite.core.errors import InitsuiteError, InitsuiteTypeError

__all__ = ["check_pattern", "matches"]


def matches(name: str, pattern: str) -> bool:
    """Whether scheme ``name`` matches ``pattern``, part by part around ``:``."""
    if name.count(":") != pattern.count(":"):
        return False
    return all(map(fnmatch.fnmatchcase, name.split(":"), pattern.split(":")))


def check_pattern(pattern: object) -> None:
    """Refuse what :func:`fnmatch.fnmatchcase` would take without complaint but cannot mean:
    a non-string, an empty pattern, an unclosed ``[`` (``"kaiming["``).

    Raises:
        InitsuiteTypeError: a non-string.
        InitsuiteError: an empty pattern or an unclosed ``[``.
    """
    if not isinstance(pattern, str):
        raise InitsuiteTypeError(
            f"pattern must be a string such as 'kaiming*', got {type(pattern).__name__}"
        )
    if not pattern:
        raise InitsuiteError("empty pattern; e.g. 'kaiming*', or '*' for every scheme")
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            j = i + 1
            j += pattern[j : j + 1] == "!"
            j += pattern[j : j + 1] == "]"  # a ']' first in a set is a literal, as in fnmatch
            close = pattern.find("]", j)
            if close < 0:
                raise InitsuiteError(
                    f"pattern {pattern!r}: the '[' at position {i} is never closed (a set "
                    f"such as [abc] needs its ']'; e.g. 'kaiming*')"
                )
            i = close
        i += 1
