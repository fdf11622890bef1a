"""One error type for everything a user can get wrong, with "did you mean" hints."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["InitsuiteError", "InitsuiteTypeError", "did_you_mean", "unknown"]


class InitsuiteError(ValueError):
    """Bad input: an unknown name, an out-of-range number, an unavailable device.

    The message is one line that names the problem and the nearest valid choice. The CLI prints
    it without a traceback and exits with status 2.
    """


class InitsuiteTypeError(InitsuiteError, TypeError):
    """An argument of the wrong type (a string where a count goes, a numpy array where a
    tensor goes); still an :class:`InitsuiteError`, so the CLI treats it alike."""


def did_you_mean(value: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to ``value``, or None when nothing is close."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if value.lower() in lowered:
        return lowered[value.lower()]
    match = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    if match:
        return match[0]
    prefixed = [c for c in choices if c.startswith(value) or value.startswith(c)]
    return prefixed[0] if prefixed else None


def unknown(kind: str, value: object, choices: Iterable[str], listing: str | None = None) -> str:
    """Message for an unknown ``kind`` (e.g. "scheme") with a suggestion and the valid values.

    ``listing`` names the command that lists every choice, for long vocabularies.
    """
    choices = list(choices)
    msg = f"unknown {kind} {value!r}"
    hint = did_you_mean(str(value), choices)
    if hint is not None:
        msg += f"; did you mean {hint!r}?"
    if listing is not None:
        msg += f" ({listing} lists all)"
    else:
        msg += f" (choose from {', '.join(choices)})"
    return msg
