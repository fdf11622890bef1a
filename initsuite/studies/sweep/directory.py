"""A sweep's results directory: made ready for a new or a resumed sweep, its theory tables
stored once, and ``meta.json`` written once per state change, atomically.

The states: started (meta.json says ``"complete": false`` and names the theory chunk, stored
next), cells stored chunk by chunk, finished (meta.json rewritten with ``"complete"``, the
run's environment and times). A resumed sweep whose grid grew rewrites meta.json for the new
grid (and a new theory chunk) before computing any cell of it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from initsuite.core.errors import Arg, InitsuiteError
from initsuite.results import chunks, store
from initsuite.results.chunks import THEORY_CHUNK, chunk_name
from initsuite.results.grid import AXES
from initsuite.studies.sweep.config import SweepConfig
from initsuite.studies.sweep.theory import theory_tables

__all__ = ["prepare", "publish", "theory_chunk_name"]

# the axes of the grid a resumed sweep may grow
_AXES = tuple(AXES)


def theory_chunk_name(cfg: SweepConfig, fp: str) -> str:
    """The name of the chunk holding the theory tables of ``cfg`` (they depend on it alone)."""
    return chunk_name(["theory", fp, json.dumps(cfg.to_dict(), sort_keys=True, default=str)])


def publish(out: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    """Write ``meta`` as ``out``'s meta.json, atomically."""
    text = json.dumps(meta, indent=2, default=str) + "\n"
    store.atomic_write_text(Path(out) / store.META, text)


def prepare(
    out: str | os.PathLike[str], cfg: SweepConfig, fp: str, resume: bool, command: str | None
) -> set[str]:
    """Make ``out`` ready for chunks; the cell keys stored there (resume).

    Every state a killed sweep leaves is resumable: no directory, an empty one (or one with
    only the temporary of its first meta.json), meta.json and no chunk yet, some chunks (and
    temporary ones), all of them before meta.json says complete. Two writers that start
    together write the same meta.json (``command`` aside), atomically.

    Args:
        out: the results directory.
        cfg: the sweep.
        fp: its :func:`~initsuite.studies.sweep.cells.fingerprint`.
        resume: continue the sweep stored in ``out``.
        command: the command line that runs it, recorded in meta.json (None: not recorded).
    """
    path = Path(out)
    state = chunks.layout(path)
    if state in ("absent", "empty"):
        path.mkdir(parents=True, exist_ok=True)
        _start(path, cfg, fp, command)
        return set()
    if state == "chunked":
        if resume:
            return _resume(path, cfg, fp, command)
        raise InitsuiteError(
            f"{str(path)!r} holds a sweep: pass ",
            Arg("resume", True),
            " to continue it, or choose a new ",
            Arg("out"),
        )
    if not resume:
        store.check_target(path)  # raises: the directory holds something else
        raise InitsuiteError(f"{str(path)!r} already holds something: choose a new ", Arg("out"))
    if state == "whole":
        raise InitsuiteError(
            f"{str(path)!r} holds results written whole, by save(), not in chunks: it cannot "
            "be resumed (choose a new ",
            Arg("out"),
            ")",
        )
    elif state == "foreign":
        raise InitsuiteError(
            f"{str(path)!r} holds no initsuite sweep (no {store.META}): nothing to resume; "
            "choose a new ",
            Arg("out"),
        )
    elif state == "file":
        raise InitsuiteError(f"output path {str(path)!r} exists and is not a directory")
    else:
        raise InitsuiteError(f"unknown layout {state!r} of {str(path)!r}")


def _running_meta(cfg: SweepConfig, fp: str, command: str | None) -> dict[str, Any]:
    """meta.json while a sweep runs: its grid, settings, size, theory chunk, not complete."""
    meta = {"kind": "sweep", "config": cfg.to_dict(), "fingerprint": json.loads(fp),
            "cells": cfg.n_cells, "complete": False,
            THEORY_CHUNK: theory_chunk_name(cfg, fp)}  # fmt: skip
    return meta if command is None else {**meta, "command": command}


def _start(path: Path, cfg: SweepConfig, fp: str, command: str | None) -> None:
    """A new sweep in ``path``: meta.json first, then the theory chunk it names."""
    meta = _running_meta(cfg, fp, command)
    publish(path, meta)
    _store_theory(path, cfg, fp, meta[THEORY_CHUNK])


def _store_theory(path: Path, cfg: SweepConfig, fp: str, name: str) -> None:
    """Store the theory tables of ``cfg`` as the chunk ``name``, unless it is there (a writer
    killed after meta.json and before the chunk left it out)."""
    if not chunks.theory_stored(path, name):
        chunks.write_chunk(path, name, theory_tables(cfg), fp)


def _resume(path: Path, cfg: SweepConfig, fp: str, command: str | None) -> set[str]:
    """The cells stored in ``path``, after checking that ``cfg`` may continue its sweep: the
    same settings and versions, and a grid that contains the stored one. meta.json then
    describes ``cfg``'s grid (not complete) and its theory chunk before any cell of it is
    computed."""
    meta = store.read(path, ())[1]
    chunks.check_meta(path, meta)
    _check_fingerprint(path, meta.get("fingerprint"), json.loads(fp))
    _check_grid(path, meta.get("config"), cfg)
    # every stored chunk checked (its fingerprint, its rows in this grid); a missing one is
    # recomputed, and a concurrent writer may have stored cells of this grid already:
    # bounded by this grid, not the stored meta's
    now = _running_meta(cfg, fp, command)
    keys = set(chunks.read(path, now)["cells"]["cell_key"])
    if any(meta.get(k) != now[k] for k in ("config", "cells", THEORY_CHUNK)):
        publish(path, now)
    _store_theory(path, cfg, fp, now[THEORY_CHUNK])
    return keys


def _check_fingerprint(path: Path, old: Any, new: dict[str, Any]) -> None:
    """Raise unless the stored fingerprint is present, well formed and ``new``'s."""
    meta_path = repr(str(path / store.META))
    if not isinstance(old, dict):
        what = "has no fingerprint" if old is None else "has a malformed fingerprint"
        raise InitsuiteError(
            f"{meta_path} {what}: the settings its cells were computed with are unknown, so it "
            "cannot be resumed (choose a new ",
            Arg("out"),
            ")",
        )
    if set(old) != set(new):
        odd = sorted(set(old) ^ set(new))
        raise InitsuiteError(
            f"{meta_path} has a fingerprint with other keys ({odd}): written by another "
            "initsuite version, or damaged; it cannot be resumed (choose a new ",
            Arg("out"),
            ")",
        )
    diff = next((k for k in sorted(new) if old[k] != new[k]), None)
    if diff is not None:
        raise InitsuiteError(
            f"{str(path)!r} holds a sweep with {diff}={old[diff]!r}, this one has "
            f"{diff}={new[diff]!r}: resume only the same settings and versions "
            "(choose a new ",
            Arg("out"),
            ")",
        )


def _check_grid(path: Path, old: Any, cfg: SweepConfig) -> None:
    """Raise unless ``cfg``'s grid contains the stored one on every axis (same batch)."""
    meta_path = repr(str(path / store.META))
    if not (isinstance(old, dict) and all(isinstance(old.get(a), list) for a in _AXES)):
        raise InitsuiteError(
            f"{meta_path} has no well-formed config (lists of {', '.join(_AXES)}): damaged, "
            "or not written by initsuite; it cannot be resumed (choose a new ",
            Arg("out"),
            ")",
        )
    for axis in _AXES:
        values = list(getattr(cfg, axis))
        gone = [v for v in old[axis] if v not in values]
        if gone:
            raise InitsuiteError(
                f"{str(path)!r} holds a sweep with {axis} {gone} not in this one: resume only "
                f"a grid that contains the stored one (add them to the {axis}, or choose a "
                "new ",
                Arg("out"),
                ")",
            )
    if old.get("batch") != cfg.batch:
        raise InitsuiteError(
            f"{str(path)!r} holds a sweep with batch={old.get('batch')!r}, this one has "
            f"batch={cfg.batch!r}: resume only the same batch (choose a new ",
            Arg("out"),
            ")",
        )
