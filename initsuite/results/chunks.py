"""Append-only results directories: a sweep writes its cells in chunks, as it goes.

A chunk is a directory ``DIR/chunks/<name>/`` holding ``cells``, ``layers`` and ``timing``
parquet tables and a ``manifest.json`` (each table's row count, columns and SHA-256, and the
chunk's cell keys). It is written whole into a temporary sibling (``.tmp-…``) and renamed
into place, so a reader sees it complete or not at all; once there it is never modified. Its
name is a hash of the cell keys it holds (content-addressed): two writers that compute the
same cells produce the same name, the second rename fails, and the second writer drops its
copy. A killed writer leaves at most a temporary directory, which readers ignore.
``meta.json`` records the configuration, the grid's number of cells and whether every one is
stored (``complete``); every cell carries its ``cell_key`` (a hash of its configuration and
the versions that matter), which ``--resume`` compares to skip what is stored. The sweep's
theory tables (``theory``, ``phase_points``, ``phase_grid``, computed once from the
configuration) are one more chunk, in ``DIR/theory/``; meta.json names it (``theory_chunk``),
so a resumed sweep whose grid grew names a new one in its new meta.json, in one step.

Reading (:func:`read`) lists the chunks and checks each against the column schema and its
manifest (an unexpected entry, a damaged file, a missing or mistyped column, a row count or
checksum that differs is an error naming it, never a silently smaller table), concatenates
them, drops rows of cells stored twice (two writers that overlapped; the rows are equal, cells
being deterministic) and checks the total against meta.json. Never imports torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from initsuite.core.errors import Arg, InitsuiteError
from initsuite.results import columns as C
from initsuite.results.outputs import CHUNKS, SWEEP_TABLES, THEORY_DIR, THEORY_TABLES
from initsuite.results.store import META, first_line, fsync_dir, publish_mode

__all__ = [
    "CHUNKS", "MANIFEST", "TABLES", "THEORY_CHUNK", "THEORY_DIR", "Layout", "cell_key",
    "check_meta", "check_total", "chunk_name", "has_chunks", "layout", "read", "stored_keys",
    "theory_stored", "timed_keys", "write_chunk",
]  # fmt: skip

MANIFEST = "manifest.json"
TABLES: tuple[str, ...] = SWEEP_TABLES
THEORY_CHUNK = "theory_chunk"  # the key of meta.json naming the theory tables' chunk
_FORMAT = 1  # of the manifest
_NAME = re.compile(r"[0-9a-f]{24}")
_TMP = ".tmp-"
_META_TMP = f".{META}."  # store.atomic_write_text's temporary of meta.json (a killed writer's)

Layout = Literal["absent", "empty", "chunked", "whole", "foreign", "file"]


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


def layout(path: str | os.PathLike[str]) -> Layout:
    """What ``path`` holds: ``"absent"``; ``"empty"`` (a directory with nothing, or only the
    temporary meta.json of a writer killed before publishing it); ``"chunked"`` (a sweep
    written as it goes: meta.json and the chunks stored so far, maybe none); ``"whole"``
    (tables written at once, by ``save()``); ``"foreign"`` (a directory without meta.json);
    ``"file"`` (something that is not a directory)."""
    p = Path(path)
    if not p.is_dir():
        return "file" if p.exists() or p.is_symlink() else "absent"
    names = [e.name for e in p.iterdir()]
    if all(n.startswith(_META_TMP) for n in names):
        return "empty"
    if any(n.endswith(".parquet") for n in names):
        return "whole"
    if META in names or CHUNKS in names:
        return "chunked"
    return "foreign"


def write_chunk(out_dir: str | os.PathLike[str], name: str,
                tables: Mapping[str, pd.DataFrame]) -> bool:  # fmt: skip
    """Write one chunk and its manifest atomically; False when a chunk of that name is already
    there (another writer stored the same cells).

    Args:
        out_dir: the sweep's directory.
        name: the chunk's name (:func:`chunk_name`).
        tables: the cells, layers and timing of some cells, or the sweep's theory tables.
    """
    if set(tables) not in (set(TABLES), set(THEORY_TABLES)):
        raise ValueError(f"a chunk holds {TABLES} or {THEORY_TABLES}, not {tuple(tables)}")
    root = Path(out_dir) / (CHUNKS if set(tables) == set(TABLES) else THEORY_DIR)
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    if target.exists():
        return False
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP}{name}-", dir=root))
    try:
        for table in tables:
            tables[table].to_parquet(tmp / f"{table}.parquet", index=False)
        manifest = json.dumps(_manifest(tmp, tables), indent=1) + "\n"
        (tmp / MANIFEST).write_text(manifest, encoding="utf-8")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        publish_mode(tmp, directory=True)
        try:
            tmp.rename(target)
        except OSError:  # a concurrent writer got there first: same cells, same rows
            if target.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
                return False
            raise
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True


def _manifest(tmp: Path, tables: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """What a reader checks a chunk against: each table's rows, columns and checksum, and
    the chunk's cell keys."""
    listed = {
        t: {
            "rows": len(tables[t]),
            "sha256": _sha256((tmp / f"{t}.parquet").read_bytes()),
            "columns": {str(c): str(d) for c, d in tables[t].dtypes.items()},
        }
        for t in tables
    }
    keys = sorted(tables["cells"]["cell_key"].astype(str)) if "cells" in tables else []
    return {"format": _FORMAT, "tables": listed, "cell_keys": keys}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _chunk_dirs(path: Path, root_name: str = CHUNKS) -> list[Path]:
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
        if entry.name.startswith(_TMP):
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
    try:
        data = f.read_bytes()
        return pd.read_parquet(io.BytesIO(data)), _sha256(data)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise InitsuiteError(
            f"{str(f)!r} is not a readable parquet file ({first_line(exc)})"
        ) from None


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _manifest_of(entry: Path, holds: tuple[str, ...] = TABLES) -> dict[str, Any]:
    """A chunk's manifest, checked for shape (it lists exactly the tables ``holds``)."""
    f = entry / MANIFEST
    try:
        m = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InitsuiteError(
            f"{str(f)!r} is not valid JSON ({first_line(exc)}): the chunk is damaged"
        ) from None
    tables = m.get("tables") if isinstance(m, dict) else None
    ok = (
        isinstance(tables, dict) and m.get("format") == _FORMAT
        and isinstance(m.get("cell_keys"), list)
        and all(isinstance(k, str) for k in m["cell_keys"])
        and set(tables) == set(holds)
        and all(isinstance(tables.get(t), dict) and _is_count(tables[t].get("rows"))
                and isinstance(tables[t].get("sha256"), str) for t in holds)
    )  # fmt: skip
    if not ok:
        raise InitsuiteError(
            f"{str(f)!r} is not a chunk manifest of this initsuite (format {_FORMAT}): the "
            "chunk is damaged, or written by another version"
        )
    return m


# each table's columns, and the columns that identify a row (never null; a directory holds
# one sweep configuration)
_SCHEMA: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cells": (C.CELLS, C.CELL_KEYS),
    "layers": (C.LAYERS, (*C.CELL_KEYS, "layer")),
    "timing": (C.TIMING, C.TIMING_KEYS),
    "theory": (C.THEORY, C.THEORY_KEYS),
    "phase_points": (C.PHASE_POINTS, C.PHASE_POINTS_KEYS),
    "phase_grid": (C.PHASE_GRID, C.PHASE_GRID_KEYS),
}


def _read_chunk(
    entry: Path, holds: tuple[str, ...] = TABLES, names: tuple[str, ...] | None = None
) -> dict[str, pd.DataFrame]:
    """The named tables (default: all it ``holds``) of a chunk, each checked against the
    column schema and the chunk's manifest (rows, cell keys, checksum)."""
    manifest = _manifest_of(entry, holds)
    out = {}
    for t in holds if names is None else names:
        f = entry / f"{t}.parquet"
        where = repr(str(f))
        raw, digest = _read_table(f)
        columns, keys = _SCHEMA[t]
        df = C.conform(raw, columns, where, (*keys, "cell_key") if t == "cells" else keys)
        listed = manifest["tables"][t]
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


def stored_keys(path: str | os.PathLike[str]) -> set[str]:
    """The ``cell_key`` of every stored cell (each chunk's cells checked)."""
    keys: set[str] = set()
    for entry in _chunk_dirs(Path(path)):
        keys.update(_read_chunk(entry, names=("cells",))["cells"]["cell_key"])
    return keys


def timed_keys(path: str | os.PathLike[str]) -> set[tuple[Any, ...]]:
    """The ``TIMING_KEYS`` (scheme, width, device, dtype) of every stored timing row (the
    chunks whose manifest lists timing rows, each checked)."""
    keys: set[tuple[Any, ...]] = set()
    for entry in _chunk_dirs(Path(path)):
        if _manifest_of(entry)["tables"]["timing"]["rows"]:
            timing = _read_chunk(entry, names=("timing",))["timing"]
            keys.update(timing[list(C.TIMING_KEYS)].itertuples(index=False, name=None))
    return keys


def theory_stored(path: str | os.PathLike[str], name: str) -> bool:
    """Whether the theory chunk ``name`` is stored in ``path`` (complete, its files checked)."""
    return any(e.name == name for e in _chunk_dirs(Path(path), THEORY_DIR))


def check_meta(path: str | os.PathLike[str], meta: Mapping[str, Any]) -> tuple[int, bool]:
    """The grid's number of cells and whether all are stored, from the meta.json of a
    chunked sweep in ``path``; an error naming it when it lacks them."""
    meta_path = repr(str(Path(path) / META))
    if meta.get("kind") != "sweep":
        raise InitsuiteError(
            f"{meta_path} describes {meta.get('kind')!r:.30} results, not a sweep in chunks: "
            "damaged, or not written by initsuite"
        )
    cells: Any = meta.get("cells")
    complete: Any = meta.get("complete")
    if not _is_count(cells) or not isinstance(complete, bool):
        raise InitsuiteError(
            f"{meta_path} lacks the sweep's cell count or completeness ('cells': "
            f"{cells!r:.20}, 'complete': {complete!r:.20}): damaged, or written by an older "
            "initsuite"
        )
    return cells, complete


def check_total(path: str | os.PathLike[str], meta: Mapping[str, Any], stored: int) -> None:
    """Raise unless ``stored`` cells agree with the sweep ``meta`` describes: at most its
    ``cells``, and all of them when it says ``complete``."""
    cells, complete = check_meta(path, meta)
    meta_path = repr(str(Path(path) / META))
    where = repr(str(Path(path) / CHUNKS))
    if stored > cells:
        raise InitsuiteError(
            f"{where} holds {stored} cells, more than the {cells} of the sweep {meta_path} "
            "describes: chunks of another sweep were added"
        )
    if complete and stored < cells:
        raise InitsuiteError(
            f"{meta_path} describes a complete sweep of {cells} cells, but {where} holds "
            f"{stored}: a chunk is missing or was emptied"
        )


def read(
    path: str | os.PathLike[str], meta: Mapping[str, Any] | None = None
) -> dict[str, pd.DataFrame]:
    """Every chunk of a directory as one dataset per table, each row once; with ``meta``
    (its meta.json), the number of cells checked against it (:func:`check_total`) and the
    theory tables read from the chunk it names (empty when it names none, a sweep stored
    before they were, or an unfinished sweep killed before storing them)."""
    p = Path(path)
    parts: dict[str, list[pd.DataFrame]] = {t: [] for t in TABLES}
    for entry in _chunk_dirs(p):
        for table, df in _read_chunk(entry).items():
            if len(df):
                parts[table].append(df)
    out = {}
    for table, frames in parts.items():
        if not frames:
            out[table] = C.frame(_SCHEMA[table][0], [])
            continue
        df = pd.concat(frames, ignore_index=True)
        keys = list(_SCHEMA[table][1])
        out[table] = df.drop_duplicates(keys, keep="first").reset_index(drop=True)
    if meta is not None:
        check_total(p, meta, len(out["cells"]))
    return {**out, **_theory(p, meta)}


def _theory(path: Path, meta: Mapping[str, Any] | None) -> dict[str, pd.DataFrame]:
    """The theory tables of the chunk ``meta`` names (others are a smaller grid's, before a
    resume grew it); empty where there is none to read."""
    named = meta.get(THEORY_CHUNK) if meta is not None else None
    entry = next((e for e in _chunk_dirs(path, THEORY_DIR) if e.name == named), None)
    if entry is not None:
        return _read_chunk(entry, THEORY_TABLES)
    if isinstance(named, str) and meta is not None and meta.get("complete") is True:
        raise InitsuiteError(
            f"{str(path / META)!r} names the theory chunk {named!r}, which "
            f"{str(path / THEORY_DIR)!r} lacks: a chunk is missing"
        )
    return {t: C.frame(_SCHEMA[t][0], []) for t in THEORY_TABLES}
