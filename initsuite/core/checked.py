"""The library versions whose laws the live tests last confirmed.

``checked_versions.json`` beside this module maps a library (``jax``, ``transformers``...) to
the version that ``tests/test_frameworks_live.py`` and ``tests/test_conventions_live.py`` last
passed against. Scheme and convention metadata quote it (``"jax 0.10.2"``). The file changes in
one way only: a test run with ``INITSUITE_RECORD_CHECKED=1`` (``make lock``, ``make
test-latest``) rewrites a library's entry after every live test of that library passed. A
newer installed version is therefore never a failure by itself: the laws are compared with
whatever is installed, and the record says which version last agreed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

__all__ = ["NOT_CHECKED_LIVE", "PATH", "checked", "load", "write"]

PATH = Path(__file__).with_name("checked_versions.json")
"""``{library: version}`` of the last confirming run."""
NOT_CHECKED_LIVE = "not checked live"
"""The ``checked`` value of a law that follows a library's source, not a live comparison."""


def load(path: Path = PATH) -> dict[str, str]:
    """The recorded ``{library: version}``; raises ValueError naming the file if it is not a
    JSON object of strings."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in data.items()
    ):
        raise ValueError(f"{path}: expected a JSON object of library -> version strings")
    return data


def checked(*libraries: str) -> str:
    """``"jax 0.10.2"``, or ``"flax 0.12.8, jax 0.10.2"`` for several libraries, from the
    record; :data:`NOT_CHECKED_LIVE` when no library is given."""
    if not libraries:
        return NOT_CHECKED_LIVE
    versions = load()
    return ", ".join(f"{lib} {versions[lib]}" for lib in libraries)


def write(updates: Mapping[str, str], path: Path = PATH) -> dict[str, str]:
    """Merge ``updates`` into the record at ``path`` (written atomically: a temporary file,
    then a rename) and return the new record."""
    record = load(path) if path.exists() else {}
    record.update(updates)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dict(sorted(record.items())), indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return record
