"""Append-only results directories: a sweep writes its cells in chunks, as it goes.

A chunk is a directory ``DIR/chunks/<name>/`` holding ``cells``, ``layers`` and ``timing``
parquet tables and a ``manifest.json`` (each table's row count, columns and SHA-256, the
chunk's cell keys, and the fingerprint of the sweep that computed it: the settings and
versions its numbers depend on, as meta.json records them). It is written whole into a
temporary sibling (``.tmp-…``) and renamed into place, so a reader sees it complete or not at
all; once there it is never modified. Its name is a hash of the cell keys it holds
(content-addressed): two writers that compute the same cells produce the same name, the
second rename fails, and the second writer drops its copy. A killed writer leaves at most a
temporary directory, which readers ignore.
``meta.json`` records the configuration, the grid's number of cells and whether every one is
stored (``complete``); every cell carries its ``cell_key`` (a hash of its configuration and
the versions that matter), which ``--resume`` compares to skip what is stored. The sweep's
theory tables (``theory``, ``phase_points``, ``phase_grid``, computed once from the
configuration) are one more chunk, in ``DIR/theory/``; meta.json names it (``theory_chunk``),
so a resumed sweep whose grid grew names a new one in its new meta.json, in one step.

Reading (:func:`read`) lists the chunks and checks each against the column schema and its
manifest (:mod:`initsuite.results.chunk_files`: an unexpected entry, a damaged file, a missing,
extra or mistyped column, a row count or checksum that differs is an error naming it, never a
silently smaller table) and its fingerprint against meta.json's (a chunk of another sweep is
refused, naming the setting that differs), concatenates them, checks every row against the grid
meta.json describes (:mod:`initsuite.results.grid`), drops the second copy of a cell two
writers both stored (overlapping writers store equal rows, cells being deterministic; a cell
stored twice in one chunk, or twice with different values, is an error) and checks the total
against meta.json.
Never imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.results import columns as C
from initsuite.results.chunk_files import (
    MANIFEST,
    SCHEMA,
    TABLES,
    TMP_PREFIX,
    chunk_dirs,
    is_count,
    manifest,
    manifest_of,
    read_chunk,
)
from initsuite.results.gates import key_text
from initsuite.results.grid import Grid, check_unique, grid_of
from initsuite.results.layout import CHUNKS, META, THEORY_DIR, THEORY_TABLES
from initsuite.results.store import fsync_dir, publish_mode

__all__ = [
    "CHUNKS", "MANIFEST", "TABLES", "THEORY_CHUNK", "THEORY_DIR", "Layout", "cell_key",
    "check_meta", "chunk_name", "has_chunks", "layout", "read", "stored_keys",
    "theory_stored", "timed_keys", "write_chunk",
]  # fmt: skip

THEORY_CHUNK = "theory_chunk"  # the key of meta.json naming the theory tables' chunk
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
                tables: Mapping[str, pd.DataFrame], fingerprint: str) -> bool:  # fmt: skip
    """Write one chunk and its manifest atomically; False when a chunk of that name is already
    there (another writer stored the same cells).

    Args:
        out_dir: the sweep's directory.
        name: the chunk's name (:func:`chunk_name`).
        tables: the cells, layers and timing of some cells, or the sweep's theory tables.
        fingerprint: the sweep's fingerprint (JSON text of an object, as :func:`cell_key`
            takes it; meta.json holds the same object): recorded in the manifest, where a
            reader checks it against meta.json's.
    """
    if set(tables) not in (set(TABLES), set(THEORY_TABLES)):
        raise ValueError(f"a chunk holds {TABLES} or {THEORY_TABLES}, not {tuple(tables)}")
    root = Path(out_dir) / (CHUNKS if set(tables) == set(TABLES) else THEORY_DIR)
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    if target.exists():
        return False
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{name}-", dir=root))
    try:
        for table in tables:
            tables[table].to_parquet(tmp / f"{table}.parquet", index=False)
        listing = json.dumps(manifest(tmp, tables, fingerprint), indent=1) + "\n"
        (tmp / MANIFEST).write_text(listing, encoding="utf-8")
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


def stored_keys(path: str | os.PathLike[str], fingerprint: str) -> set[str]:
    """The ``cell_key`` of every stored cell (each chunk's cells checked, and the chunk
    against the sweep's ``fingerprint``: JSON text, as :func:`write_chunk` takes it)."""
    p = Path(path)
    expected, meta_path = json.loads(fingerprint), repr(str(p / META))
    keys: set[str] = set()
    for entry in chunk_dirs(p):
        keys.update(read_chunk(entry, expected, meta_path, names=("cells",))["cells"]["cell_key"])
    return keys


def timed_keys(path: str | os.PathLike[str], fingerprint: str) -> set[tuple[Any, ...]]:
    """The ``TIMING_KEYS`` (scheme, width, device, dtype) of every stored timing row (the
    chunks whose manifest lists timing rows, each checked against the sweep's
    ``fingerprint``, as in :func:`stored_keys`)."""
    p = Path(path)
    expected, meta_path = json.loads(fingerprint), repr(str(p / META))
    keys: set[tuple[Any, ...]] = set()
    for entry in chunk_dirs(p):
        if manifest_of(entry)["tables"]["timing"]["rows"]:
            timing = read_chunk(entry, expected, meta_path, names=("timing",))["timing"]
            keys.update(timing[list(C.TIMING_KEYS)].itertuples(index=False, name=None))
    return keys


def theory_stored(path: str | os.PathLike[str], name: str) -> bool:
    """Whether the theory chunk ``name`` is stored in ``path`` (complete, its files checked)."""
    return any(e.name == name for e in chunk_dirs(Path(path), THEORY_DIR))


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
    if not is_count(cells) or not isinstance(complete, bool):
        raise InitsuiteError(
            f"{meta_path} lacks the sweep's cell count or completeness ('cells': "
            f"{cells!r:.20}, 'complete': {complete!r:.20}): damaged, or written by an older "
            "initsuite"
        )
    return cells, complete


def read(path: str | os.PathLike[str], meta: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """Every chunk of a directory as one dataset per table, each row once, checked against
    the sweep ``meta`` (its meta.json) describes: each chunk's fingerprint, each row in its
    grid, the number of cells (at most the grid's; all of them when it says ``complete``);
    and the theory tables of the chunk it names (empty when it names none, a sweep stored
    before they were, or an unfinished sweep killed before storing them)."""
    p = Path(path)
    check_meta(p, meta)
    meta_path = repr(str(p / META))
    grid = grid_of(meta, meta_path)
    parts: dict[str, list[tuple[Path, pd.DataFrame]]] = {t: [] for t in TABLES}
    for entry in chunk_dirs(p):
        for table, df in read_chunk(entry, meta.get("fingerprint"), meta_path).items():
            if len(df):
                parts[table].append((entry / f"{table}.parquet", df))
    out = {table: _combine(table, frames, grid) for table, frames in parts.items()}
    grid.check_count(len(out["cells"]), repr(str(p / CHUNKS)))
    return {**out, **_theory(p, meta, grid)}


def _combine(table: str, frames: list[tuple[Path, pd.DataFrame]], grid: Grid) -> pd.DataFrame:
    """The chunks' rows of ``table`` (with the file each came from) as one table, every row
    checked against the ``grid``, each key once.

    Two chunks may hold one cell: writers that overlapped (a resume whose grid grew, beside
    another writer) each stored it, with equal rows (cells are deterministic); the first copy
    is kept. A key twice in one chunk, or cells whose copies differ, is an error. Timing rows
    are measurements: of two chunks' rows of one key (writers that each timed), the first is
    kept.
    """
    if not frames:
        return C.frame(SCHEMA[table][0], [])
    df = pd.concat([f for _, f in frames], ignore_index=True)
    origin = np.repeat(np.arange(len(frames)), [len(f) for _, f in frames])

    def where(i: int) -> str:
        return repr(str(frames[int(origin[i])][0]))

    grid.check_rows(table, df, where)
    keys = list(SCHEMA[table][1])
    dup = df.duplicated(keys, keep=False).to_numpy(bool)
    if dup.any():
        rows = np.flatnonzero(dup)
        sub = df.iloc[rows].assign(_chunk=origin[rows])
        twice = np.flatnonzero(sub.duplicated([*keys, "_chunk"]).to_numpy(bool))
        if len(twice):
            i = int(rows[twice[0]])
            raise InitsuiteError(
                f"{where(i)} holds two rows of {key_text(df.iloc[i], tuple(keys))}: every key "
                "is stored once; damaged, or not written by initsuite"
            )
        if table != "timing":
            distinct = sub.drop(columns="_chunk").drop_duplicates()
            differ = np.flatnonzero(distinct.duplicated(keys).to_numpy(bool))
            if len(differ):
                i = int(distinct.index[differ[0]])
                first = int(np.flatnonzero((df[keys] == df.loc[i, keys]).all(axis=1))[0])
                raise InitsuiteError(
                    f"{where(first)} and {where(i)} hold {key_text(df.iloc[i], tuple(keys))} "
                    "with different values: a chunk of another sweep, or an edited one; move "
                    "it away"
                )
        df = df[~df.duplicated(keys).to_numpy(bool)].reset_index(drop=True)
    if table == "cells":
        again = np.flatnonzero(df["cell_key"].duplicated().to_numpy(bool))
        if len(again):
            raise InitsuiteError(
                f"cell_key {df['cell_key'].iat[int(again[0])]!r} names two cells in "
                f"{str(Path(frames[0][0]).parents[1])!r}: damaged, or not written by initsuite"
            )
    return df


def _theory(path: Path, meta: Mapping[str, Any], grid: Grid) -> dict[str, pd.DataFrame]:
    """The theory tables of the chunk ``meta`` names (others are a smaller grid's, before a
    resume grew it), checked against the ``grid``; empty where there is none to read."""
    named = meta.get(THEORY_CHUNK)
    entry = next((e for e in chunk_dirs(path, THEORY_DIR) if e.name == named), None)
    if entry is not None:
        meta_path = repr(str(path / META))
        tables = read_chunk(entry, meta.get("fingerprint"), meta_path, THEORY_TABLES)
        for table, df in tables.items():
            where = repr(str(entry / f"{table}.parquet"))
            grid.check_rows(table, df, where)
            check_unique(df, SCHEMA[table][1], where)
        return tables
    if isinstance(named, str) and meta.get("complete") is True:
        raise InitsuiteError(
            f"{str(path / META)!r} names the theory chunk {named!r}, which "
            f"{str(path / THEORY_DIR)!r} lacks: a chunk is missing"
        )
    return {t: C.frame(SCHEMA[t][0], []) for t in THEORY_TABLES}
