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
manifest (an unexpected entry, a damaged file, a missing, extra or mistyped column, a row
count or checksum that differs is an error naming it, never a silently smaller table) and
its fingerprint against meta.json's (a chunk of another sweep is refused, naming the setting
that differs), concatenates them, checks every row against the grid meta.json describes
(:mod:`initsuite.results.grid`), drops the second copy of a cell two writers both stored
(overlapping writers store equal rows, cells being deterministic; a cell stored twice in one
chunk, or twice with different values, is an error) and checks the total against meta.json.
Never imports torch.
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

import numpy as np
import pandas as pd

from initsuite.core.errors import Arg, InitsuiteError
from initsuite.results import columns as C
from initsuite.results.conform import conform
from initsuite.results.gates import key_text
from initsuite.results.grid import Grid, check_unique, grid_of
from initsuite.results.layout import CHUNKS, META, SWEEP_TABLES, THEORY_DIR, THEORY_TABLES
from initsuite.results.reading import first_line, read_json, read_regular
from initsuite.results.store import fsync_dir, publish_mode
from initsuite.results.sweep_tables import SWEEP

__all__ = [
    "CHUNKS", "MANIFEST", "TABLES", "THEORY_CHUNK", "THEORY_DIR", "Layout", "cell_key",
    "check_meta", "chunk_name", "has_chunks", "layout", "read", "stored_keys",
    "theory_stored", "timed_keys", "write_chunk",
]  # fmt: skip

MANIFEST = "manifest.json"
TABLES: tuple[str, ...] = SWEEP_TABLES
THEORY_CHUNK = "theory_chunk"  # the key of meta.json naming the theory tables' chunk
_FORMAT = 2  # of the manifest (1: before it carried the sweep's fingerprint)
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
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP}{name}-", dir=root))
    try:
        for table in tables:
            tables[table].to_parquet(tmp / f"{table}.parquet", index=False)
        manifest = json.dumps(_manifest(tmp, tables, fingerprint), indent=1) + "\n"
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


def _manifest(tmp: Path, tables: Mapping[str, pd.DataFrame], fingerprint: str) -> dict[str, Any]:
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
    data = read_regular(f)
    try:
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
        and all(isinstance(tables.get(t), dict) and _is_count(tables[t].get("rows"))
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


# each table's columns, and the columns that identify a row (never null; a directory holds
# one sweep configuration)
_SCHEMA = {t.name: (t.columns, t.keys) for t in SWEEP}


def _read_chunk(
    entry: Path,
    fingerprint: Any,
    meta_path: str,
    holds: tuple[str, ...] = TABLES,
    names: tuple[str, ...] | None = None,
) -> dict[str, pd.DataFrame]:
    """The named tables (default: all it ``holds``) of a chunk, each checked against the
    column schema (exactly its columns) and the chunk's manifest (rows, cell keys, checksum),
    the chunk against the ``fingerprint`` of the sweep in ``meta_path``."""
    manifest = _manifest_of(entry, holds)
    _check_fingerprint(entry, manifest["fingerprint"], fingerprint, meta_path)
    out = {}
    for t in holds if names is None else names:
        f = entry / f"{t}.parquet"
        where = repr(str(f))
        raw, digest = _read_table(f)
        columns, keys = _SCHEMA[t]
        df = conform(raw, columns, where, (*keys, "cell_key") if t == "cells" else keys,
                     strict=True)  # fmt: skip
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


def stored_keys(path: str | os.PathLike[str], fingerprint: str) -> set[str]:
    """The ``cell_key`` of every stored cell (each chunk's cells checked, and the chunk
    against the sweep's ``fingerprint``: JSON text, as :func:`write_chunk` takes it)."""
    p = Path(path)
    expected, meta_path = json.loads(fingerprint), repr(str(p / META))
    keys: set[str] = set()
    for entry in _chunk_dirs(p):
        keys.update(_read_chunk(entry, expected, meta_path, names=("cells",))["cells"]["cell_key"])
    return keys


def timed_keys(path: str | os.PathLike[str], fingerprint: str) -> set[tuple[Any, ...]]:
    """The ``TIMING_KEYS`` (scheme, width, device, dtype) of every stored timing row (the
    chunks whose manifest lists timing rows, each checked against the sweep's
    ``fingerprint``, as in :func:`stored_keys`)."""
    p = Path(path)
    expected, meta_path = json.loads(fingerprint), repr(str(p / META))
    keys: set[tuple[Any, ...]] = set()
    for entry in _chunk_dirs(p):
        if _manifest_of(entry)["tables"]["timing"]["rows"]:
            timing = _read_chunk(entry, expected, meta_path, names=("timing",))["timing"]
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
    for entry in _chunk_dirs(p):
        for table, df in _read_chunk(entry, meta.get("fingerprint"), meta_path).items():
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
        return C.frame(_SCHEMA[table][0], [])
    df = pd.concat([f for _, f in frames], ignore_index=True)
    origin = np.repeat(np.arange(len(frames)), [len(f) for _, f in frames])

    def where(i: int) -> str:
        return repr(str(frames[int(origin[i])][0]))

    grid.check_rows(table, df, where)
    keys = list(_SCHEMA[table][1])
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
    entry = next((e for e in _chunk_dirs(path, THEORY_DIR) if e.name == named), None)
    if entry is not None:
        meta_path = repr(str(path / META))
        tables = _read_chunk(entry, meta.get("fingerprint"), meta_path, THEORY_TABLES)
        for table, df in tables.items():
            where = repr(str(entry / f"{table}.parquet"))
            grid.check_rows(table, df, where)
            check_unique(df, _SCHEMA[table][1], where)
        return tables
    if isinstance(named, str) and meta.get("complete") is True:
        raise InitsuiteError(
            f"{str(path / META)!r} names the theory chunk {named!r}, which "
            f"{str(path / THEORY_DIR)!r} lacks: a chunk is missing"
        )
    return {t: C.frame(_SCHEMA[t][0], []) for t in THEORY_TABLES}
