"""One error type for everything a user can get wrong, with "did you mean" hints."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Arg", "InitsuiteError", "InitsuiteTypeError", "did_you_mean", "run_module", "unknown",
]  # fmt: skip


@dataclass(frozen=True)
class Arg:
    """An argument of the Python API named in an error message.

    The message shows it as Python spells it (``allow_large=True``, or ``out`` when ``value``
    is omitted); the command line shows its flag instead (``--allow-large``, ``--out``).

    Args:
        name: the argument's name in the Python API, e.g. ``"allow_large"``.
        value: the value the message asks for (``True``: pass the flag), or ``None`` to name
            the argument itself.
    """

    name: str
    value: Any = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}={self.value!r}"


class InitsuiteError(ValueError):
    """Bad input: an unknown name, an out-of-range number, an unavailable device.

    The message is one line that names the problem and the nearest valid choice. It is built
    from text and :class:`Arg` parts, so that the CLI can show each argument as its flag
    (:meth:`render`); ``str(error)`` shows the Python spelling. The CLI prints it without a
    traceback and exits with status 2.

    Example:
        >>> err = InitsuiteError("pass ", Arg("resume", True), " to continue it")
        >>> str(err), err.arguments
        ('pass resume=True to continue it', ('resume',))
    """

    def __init__(self, *parts: str | Arg) -> None:
        super().__init__("".join(map(str, parts)))
        self.parts = parts

    @property
    def arguments(self) -> tuple[str, ...]:
        """The names of the arguments the message refers to, in order."""
        return tuple(p.name for p in self.parts if isinstance(p, Arg))

    def render(self, spell: Callable[[Arg], str]) -> str:
        """The message with each argument written by ``spell`` (e.g. as a command-line flag)."""
        return "".join(spell(p) if isinstance(p, Arg) else str(p) for p in self.parts)

    def __reduce__(self) -> tuple[Any, ...]:  # pickled whole (a Dask worker's error)
        return (type(self), self.parts)


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


def run_module(main: Callable[[], int], prog: str) -> None:
    """Exit with ``main()``'s status, or with 2 after one line ``PROG: error: MESSAGE`` where it
    raises :class:`InitsuiteError`: the ``python -m`` entry of a tool module."""
    try:
        sys.exit(main())
    except InitsuiteError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(2)
