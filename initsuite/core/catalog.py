"""The built-in schemes' table (``initsuite schemes``), shipped as JSON so that listing them
imports neither torch nor the registry.

``initsuite.schemes.table()`` is the source: :func:`initsuite.schemes.write_catalog` writes
it here, and a test checks that the two agree. Where a third-party package adds schemes
(the ``initsuite.schemes`` entry points), the live registry is read instead.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["ENTRY_POINT_GROUP", "PATH", "families", "load"]

PATH = Path(__file__).with_name("scheme_catalog.json")
"""The built-in schemes' table: a JSON list of ``initsuite.schemes.table()``'s rows."""
ENTRY_POINT_GROUP = "initsuite.schemes"
"""Where third-party schemes are declared (``initsuite.schemes.registry`` loads them)."""


def _read() -> list[dict[str, Any]] | None:
    """The shipped table's rows; None where the file is missing, unreadable or malformed."""
    try:
        rows = json.loads(PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return None
    return rows


def load() -> list[dict[str, Any]] | None:
    """The rows of the built-in schemes' table, sorted by name; None where the registry must
    be read instead: a package declares schemes (entry points), or the file is missing or
    unreadable."""
    if metadata.entry_points(group=ENTRY_POINT_GROUP):
        return None
    return _read()


def families() -> dict[str, str]:
    """Each built-in scheme's registry family (``SchemeInfo.family``: ``"normal"``,
    ``"orthogonal"``, ...) by name, from the shipped table whether or not a package adds
    schemes (theirs are not in it); empty where the file is missing or unreadable."""
    return {str(r["scheme"]): str(r["family"]) for r in _read() or []
            if "scheme" in r and "family" in r}  # fmt: skip
