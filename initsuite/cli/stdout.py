"""Standard output as commands write it: text its encoding cannot hold spelt in ASCII, a failed
write named."""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Iterator
from typing import Any, TextIO

from initsuite.core.errors import InitsuiteError

__all__ = ["Stdout"]


# how text is spelt on a standard output whose encoding cannot hold it (PYTHONIOENCODING=ascii);
# Greek letters by name (σ → sigma), accents dropped, anything else escaped
_ASCII = {"—": "-", "–": "-", "−": "-", "±": "+/-", "√": "sqrt", "·": "*", "×": "x", "÷": "/",
          "²": "^2", "³": "^3", "⁴": "^4", "≈": "~", "≤": "<=", "≥": ">=", "≠": "!=",
          "→": "->", "←": "<-", "↦": "->", "↔": "<->", "…": "...", "‖": "||", "′": "'",
          "✓": "yes", "✗": "no"}  # fmt: skip


def _spell(char: str) -> str:
    """``char`` in ASCII: its spelling in :data:`_ASCII`, a Greek letter's name, the letter
    without its accent, or a backslash escape."""
    if char in _ASCII:
        return _ASCII[char]
    name = unicodedata.name(char, "")
    if name.startswith("GREEK"):
        letter = name.split()[-1].lower()
        return letter.capitalize() if "CAPITAL" in name else letter
    if "SUBSCRIPT" in name or "SUPERSCRIPT" in name:  # χ₁ → chi1
        digit = unicodedata.digit(char, None)
        if digit is not None:
            return str(digit)
    plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return plain or char.encode("ascii", "backslashreplace").decode()


@contextlib.contextmanager
def _named_stdout() -> Iterator[None]:
    """A failed write to standard output as an error naming it (a closed pipe: as it is)."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise InitsuiteError(f"cannot write standard output: {exc.strerror or exc}") from None


class Stdout:
    """What a command prints goes through this: text the stream's encoding cannot hold is
    spelt in ASCII (:func:`_spell`) instead of failing, and a failed write (a full device) is
    an error naming standard output; a closed pipe stays a ``BrokenPipeError``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        with _named_stdout():
            try:
                return self.stream.write(text)
            except UnicodeEncodeError:  # raised before anything is written
                return self.stream.write(self._encodable(text))

    def flush(self) -> None:
        with _named_stdout():
            self.stream.flush()

    def _encodable(self, text: str) -> str:
        encoding = self.stream.encoding or "ascii"
        out = []
        for char in text:
            try:
                char.encode(encoding)
            except UnicodeEncodeError:
                char = _spell(char)
            out.append(char)
        return "".join(out)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
