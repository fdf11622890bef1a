"""Append-only results directories: a sweep writes its cells in chunks, as it goes.

A chunk is a directory ``DIR/chunks/<name>/`` holding ``cells``, ``layers`` and ``timing``
parquet tables. It is written whole into a temporary sibling (``.tmp-…``) and renamed into
place, so a reader sees it complete or not at all; once there it is never modified. Its name
is a hash of the cell keys it holds (content-addressed): two writers that compute the same
cells produce the same name, the second rename fails, and the second writer drops its copy.
A killed writer leaves at most a temporary directory, which readers ignore. ``meta.json``
records the configuration; every cell carries its ``cell_key`` (a hash of its configuration
and the versions that matter), which ``--resume`` compares to skip what is stored.

Reading (:func:`read`) lists the chunks, checks each (an unexpected entry or a damaged file
is an error naming it, never a silently smaller table), concatenates them and drops rows of
cells stored twice (two writers that overlapped; the rows are equal, cells being
deterministic). Never imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from . import columns as C
from .errors import InitsuiteError
from .store import _fsync_dir, _publish_mode

__all__ = [
    "CHUNKS", "TABLES", "cell_key", "chunk_name", "has_chunks", "has_timing", "read",
    "stored_keys", "write_chunk",
]  # fmt: skip

CHUNKS = "chunks"
TABLES: tuple[str, ...] = ("cells", "layers", "timing")
_NAME = re.compile(r"[0-9a-f]{24}")
_TMP = ".tmp-"


def cell_key(cell: Mapping[str, Any], fingerprint: str) -> str:
    """A stable hash of one cell's key columns and the sweep's ``fingerprint`` (the settings
    and versions every cell's numbers depend on)."""
    text = json.dumps({"cell": {k: _plain(v) for k, v in cell.items()}, "of": fingerprint},
                      sort_keys=True)  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def chunk_name(keys: Iterable[str]) -> str:
    """The content-addressed name of a chunk holding these cell (or timing) keys."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:24]


def has_chunks(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / CHUNKS).is_dir()


def write_chunk(out_dir: str | os.PathLike[str], name: str,
                tables: Mapping[str, pd.DataFrame]) -> bool:  # fmt: skip
    """Write one chunk atomically; False when a chunk of that name is already there (another
    writer stored the same cells)."""
    root = Path(out_dir) / CHUNKS
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    if target.exists():
        return False
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP}{name}-", dir=root))
    try:
        for table in TABLES:
            tables[table].to_parquet(tmp / f"{table}.parquet", index=False)
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        _publish_mode(tmp, directory=True)
        try:
            tmp.rename(target)
        except OSError:  # a concurrent writer got there first: same cells, same rows
            if target.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
                return False
            raise
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True


def _chunk_dirs(path: Path) -> list[Path]:
    """The complete chunks under ``path``, checked; temporary directories are skipped."""
    root = path / CHUNKS
    out = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(_TMP):
            continue  # being written, or left by a killed writer: not part of the dataset
        if not (entry.is_dir() and _NAME.fullmatch(entry.name)):
            raise InitsuiteError(
                f"{str(entry)!r} is not a chunk written by initsuite (a foreign file in "
                f"{str(root)!r}): move it away"
            )
        missing = [t for t in TABLES if not (entry / f"{t}.parquet").is_file()]
        extra = sorted({f.name for f in entry.iterdir()} - {f"{t}.parquet" for t in TABLES})
        if missing or extra:
            what = f"lacks {missing}" if missing else f"holds unexpected {extra}"
            raise InitsuiteError(f"chunk {str(entry)!r} {what}: it is damaged or foreign")
        out.append(entry)
    return out


def _read_table(f: Path, columns: list[str] | None = None) -> pd.DataFrame:
    try:
        return pd.read_parquet(f, columns=columns)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise InitsuiteError(f"{str(f)!r} is not a readable parquet file ({exc})") from None


def stored_keys(path: str | os.PathLike[str]) -> set[str]:
    """The ``cell_key`` of every stored cell."""
    p = Path(path)
    if not has_chunks(p):
        return set()
    keys: set[str] = set()
    for entry in _chunk_dirs(p):
        cells = _read_table(entry / "cells.parquet")
        if "cell_key" in cells.columns:
            keys.update(cells["cell_key"].dropna().astype(str))
    return keys


def has_timing(path: str | os.PathLike[str]) -> bool:
    """Whether a stored chunk holds timing rows."""
    p = Path(path)
    return has_chunks(p) and any(len(_read_table(e / "timing.parquet")) for e in _chunk_dirs(p))


# the columns that identify a row of each table (a directory holds one sweep configuration)
_ROW_KEYS = {"cells": list(C.CELL_KEYS), "layers": [*C.CELL_KEYS, "layer"],
             "timing": list(C.TIMING_KEYS)}  # fmt: skip
_DECLARED = {"cells": C.CELLS, "layers": C.LAYERS, "timing": C.TIMING}


def read(path: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """Every chunk of a directory as one dataset per table, each row once."""
    p = Path(path)
    parts: dict[str, list[pd.DataFrame]] = {t: [] for t in TABLES}
    for entry in _chunk_dirs(p):
        for table in TABLES:
            df = _read_table(entry / f"{table}.parquet")
            if len(df):
                parts[table].append(df)
    out = {}
    for table in TABLES:
        if not parts[table]:
            out[table] = C.frame(_DECLARED[table], [])
            continue
        df = pd.concat(parts[table], ignore_index=True)
        key = [k for k in _ROW_KEYS[table] if k in df.columns]
        out[table] = df.drop_duplicates(key, keep="first").reset_index(drop=True)
    return out
