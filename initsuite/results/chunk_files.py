"""One chunk of a sweep's directory on disk: its manifest (:func:`manifest`: each table's
rows, columns and SHA-256, the chunk's cell keys and its sweep's fingerprint), and the chunk read
back checked against it (:func:`read_chunk`): an unexpected entry, a damaged file, a missing,
extra or mistyped column, a row count or checksum that differs, or a fingerprint of another
sweep is an error naming it. How chunks are named, written and combined is
:mod:`initsuite.results.chunks`. Never imports torch.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from initsuite.core.errors import Arg, InitsuiteError
from initsuite.results.columns import OPTIONAL
from initsuite.results.conform import conform
from initsuite.results.layout import CHUNKS, SWEEP_TABLES, THEORY_TABLES
from initsuite.results.reading import parse_parquet, read_json, read_regular
from initsuite.results.sweep_tables import SWEEP

__all__ = ["MANIFEST", "SCHEMA", "TABLES", "TMP_PREFIX", "chunk_dirs", "is_count", "manifest",
           "manifest_of", "read_chunk"]  # fmt: skip

MANIFEST = "manifest.json"
TABLES: tuple[str, ...] = SWEEP_TABLES  # a cells chunk's (a theory chunk holds THEORY_TABLES)
_FORMAT = 2  # of the manifest (1: before it carried the sweep's fingerprint)
_NAME = re.compile(r"[0-9a-f]{24}")
TMP_PREFIX = ".tmp-"  # a chunk being written, or left by a killed writer

# each table's columns, and the columns that identify a row (never null; a directory holds
# one sweep configuration)
SCHEMA = {t.name: (t.columns, t.keys) for t in SWEEP}


def manifest(tmp: Path, tables: Mapping[str, pd.DataFrame], fingerprint: str) -> dict[str, Any]:
    """What a reader checks a chunk against: each table's rows, columns and checksum, the
    chunk's cell keys and the fingerprint of its sweep."""
    listed = {
        t: {
            "rows": len(tables[t]),
            "sha256": _sha256((tmp / f"{t}.parquet").read_bytes()),
            "columns": {str(c): str(d) for c, d in tables[t].dtypes.items()},
        }
        for t in tables
    }
    keys = sorted(tables["cells"]["cell_key"].astype(str)) if "cells" in tables else []
    return {"format": _FORMAT, "fingerprint": json.loads(fingerprint), "tables": listed,
            "cell_keys": keys}  # fmt: skip


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk_dirs(path: Path, root_name: str = CHUNKS) -> list[Path]:
    """The complete chunks under ``path/root_name`` (``chunks``: the cells' tables;
    ``theory``: the theory tables), each entry checked; temporaries are skipped."""
    root = path / root_name
    if not (root.exists() or root.is_symlink()):
        return []  # a sweep killed before its first chunk
    if root.is_symlink() or not root.is_dir():
        raise InitsuiteError(
            f"{str(root)!r} is not a directory written by initsuite (a link or a file): move "
            "it away"
        )
    holds = TABLES if root_name == CHUNKS else THEORY_TABLES
    out = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(TMP_PREFIX):
            continue  # being written, or left by a killed writer: not part of the dataset
        if not (entry.is_dir() and not entry.is_symlink() and _NAME.fullmatch(entry.name)):
            raise InitsuiteError(
                f"{str(entry)!r} is not a chunk written by initsuite (a foreign file in "
                f"{str(root)!r}): move it away"
            )
        _check_files(entry, holds)
        out.append(entry)
    return out


def _check_files(entry: Path, holds: tuple[str, ...]) -> None:
    """Raise, naming what is wrong, unless the chunk ``entry`` holds the tables ``holds`` and
    its manifest, nothing else."""
    names = {f.name for f in entry.iterdir()}
    expected = {MANIFEST, *(f"{t}.parquet" for t in holds)}
    if names == expected - {MANIFEST}:
        raise InitsuiteError(
            f"chunk {str(entry)!r} has no {MANIFEST}: it was written by an older initsuite "
            "(chunks carry a manifest since), or damaged; rerun the sweep into a new ",
            Arg("out"),
        )
    missing = sorted(t for t in holds if f"{t}.parquet" not in names)
    extra = sorted(names - expected)
    if missing or extra or MANIFEST not in names:
        what = (f"lacks {missing}" if missing else f"holds unexpected {extra}" if extra
                else f"lacks its {MANIFEST}")  # fmt: skip
        raise InitsuiteError(f"chunk {str(entry)!r} {what}: it is damaged or foreign")


def _read_table(f: Path) -> tuple[pd.DataFrame, str]:
    """A parquet file's table and the SHA-256 of its bytes (one read)."""
    data = read_regular(f)
    return parse_parquet(data, f), _sha256(data)


def is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def manifest_of(entry: Path, holds: tuple[str, ...] = TABLES) -> dict[str, Any]:
    """A chunk's manifest, checked for shape (it lists exactly the tables ``holds``)."""
    f = entry / MANIFEST
    try:
        m = read_json(f)
    except InitsuiteError as exc:
        raise InitsuiteError(f"{exc}: the chunk is damaged") from None
    if isinstance(m, dict) and m.get("format") == 1:
        raise InitsuiteError(
            f"{str(f)!r} is of format 1, written by an older initsuite before chunks carried "
            "their sweep's fingerprint: its cells cannot be shown to belong to this sweep; "
            "rerun the sweep into a new ",
            Arg("out"),
        )
    tables = m.get("tables") if isinstance(m, dict) else None
    ok = (
        isinstance(tables, dict) and m.get("format") == _FORMAT
        and isinstance(m.get("fingerprint"), dict)
        and isinstance(m.get("cell_keys"), list)
        and all(isinstance(k, str) for k in m["cell_keys"])
        and set(tables) == set(holds)
        and all(isinstance(tables.get(t), dict) and is_count(tables[t].get("rows"))
                and isinstance(tables[t].get("sha256"), str) for t in holds)
    )  # fmt: skip
    if not ok:
        raise InitsuiteError(
            f"{str(f)!r} is not a chunk manifest of this initsuite (format {_FORMAT}): the "
            "chunk is damaged, or written by another version"
        )
    return m


def _check_fingerprint(entry: Path, found: dict[str, Any], expected: Any, meta_path: str) -> None:
    """Raise unless the chunk ``entry``'s fingerprint is ``expected`` (meta.json's), naming
    the first setting that differs."""
    if not isinstance(expected, dict):
        raise InitsuiteError(
            f"{meta_path} has no well-formed fingerprint: the chunks in it cannot be shown to "
            "belong to its sweep; damaged, or written by an older initsuite"
        )
    if found == expected:
        return
    diff = next((k for k in sorted(set(found) | set(expected))
                 if found.get(k, _ABSENT) != expected.get(k, _ABSENT)), "?")  # fmt: skip
    show = lambda v: "absent" if v is _ABSENT else json.dumps(v)[:30]  # noqa: E731
    raise InitsuiteError(
        f"chunk {str(entry)!r} was computed with {diff}={show(found.get(diff, _ABSENT))}, the "
        f"sweep {meta_path} describes has {diff}={show(expected.get(diff, _ABSENT))}: a chunk "
        "of another sweep; move it away"
    )


_ABSENT = object()


def read_chunk(
    entry: Path,
    fingerprint: Any,
    meta_path: str,
    holds: tuple[str, ...] = TABLES,
    names: tuple[str, ...] | None = None,
) -> dict[str, pd.DataFrame]:
    """The named tables (default: all it ``holds``) of a chunk, each checked against the
    column schema (exactly its columns) and the chunk's manifest (rows, cell keys, checksum),
    the chunk against the ``fingerprint`` of the sweep in ``meta_path``."""
    manifest = manifest_of(entry, holds)
    _check_fingerprint(entry, manifest["fingerprint"], fingerprint, meta_path)
    out = {}
    for t in holds if names is None else names:
        f = entry / f"{t}.parquet"
        where = repr(str(f))
        raw, digest = _read_table(f)
        columns, keys = SCHEMA[t]
        listed = manifest["tables"][t]
        # an optional column added after the chunk's writer: the manifest lists what it wrote
        written = listed.get("columns")
        lacking = (OPTIONAL.intersection(columns).difference(written)
                   if isinstance(written, dict) else frozenset())  # fmt: skip
        df = conform(raw, columns, where, (*keys, "cell_key") if t == "cells" else keys,
                     strict=True, lacking=frozenset(lacking))  # fmt: skip
        if len(df) != listed["rows"]:
            raise InitsuiteError(
                f"{where} holds {len(df)} rows, its chunk's {MANIFEST} {listed['rows']}: the "
                "file was changed after initsuite wrote it"
            )
        if t == "cells" and sorted(df["cell_key"]) != sorted(manifest["cell_keys"]):
            raise InitsuiteError(
                f"{where} holds other cells than its chunk's {MANIFEST} lists: the file was "
                "changed after initsuite wrote it"
            )
        if digest != listed["sha256"]:
            raise InitsuiteError(
                f"{where} differs from the checksum in its chunk's {MANIFEST}: the file was "
                "changed after initsuite wrote it"
            )
        out[t] = df
    return out
