"""Running a sweep: in memory, or stored in a results directory as it goes (skip the groups
stored already, run the rest, time the schemes, write meta.json), in process or on workers."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Set
from typing import Any

from initsuite.core.env import environment
from initsuite.core.errors import InitsuiteError
from initsuite.engine.timing import time_layer
from initsuite.results import chunks, store
from initsuite.results import columns as C
from initsuite.results.chunks import chunk_name
from initsuite.results.sweep import SweepResult
from initsuite.studies.sweep import budget, directory
from initsuite.studies.sweep.cells import (
    GroupKey,
    Predictions,
    Rows,
    compute,
    fingerprint,
    frames,
    group_cell_keys,
    groups,
    highest_precision,
)
from initsuite.studies.sweep.config import SweepConfig
from initsuite.studies.sweep.theory import theory_tables

__all__ = ["run", "run_group"]

log = logging.getLogger("initsuite")


def run_group(cfg: SweepConfig, key: GroupKey, out: str | None = None) -> int:
    """Compute one group of ``cfg`` and, with ``out``, store it as a chunk there; the number
    of cells it holds. What distributed workers run (they rebuild ``cfg`` from its dict)."""
    fp = fingerprint(cfg)
    plans = next((p for k, p in groups(cfg) if k == key), None)
    if plans is None:
        raise ValueError(f"group {key!r} is not part of this sweep")
    with highest_precision():
        rows = compute(cfg, plans, Predictions(cfg), fp)
    if out is not None:
        _store(out, rows, fp)
    return len(rows.cells)


def _store(out: str | os.PathLike[str], rows: Rows, fp: str,
           have: set[str] | None = None) -> None:  # fmt: skip
    """Store a group's cells as a chunk, leaving out the cells in ``have`` (default: read
    from ``out``): a resumed sweep whose grid grew recomputes whole groups, and the cells
    stored before keep their first rows."""
    cells, layers = frames([rows])
    if have is None:
        have = chunks.stored_keys(out, fp)
    if have:
        old = cells["cell_key"].astype(str).isin(have).to_numpy()
        if old.all():
            return
        if old.any():
            gone = cells.loc[old, list(C.CELL_KEYS)]
            mask = layers[list(C.CELL_KEYS)].merge(gone, how="left", indicator=True)["_merge"]
            layers = layers[(mask == "left_only").to_numpy()].reset_index(drop=True)
            cells = cells[~old].reset_index(drop=True)
    name = chunk_name(cells["cell_key"].astype(str))
    written = chunks.write_chunk(out, name, {"cells": cells, "layers": layers,
                                             "timing": C.frame(C.TIMING, [])}, fp)  # fmt: skip
    log.info("%s chunk %s (%d cells)", "wrote" if written else "already had", name, len(cells))


def run(
    cfg: SweepConfig,
    progress: bool | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    executor: Any = None,
    allow_large: bool = False,
    overwrite: bool = False,
    command: str | None = None,
) -> SweepResult:
    """Run a validated :class:`SweepConfig`, in memory or stored in ``out`` as it goes.

    A sweep too large for this machine, or estimated to take over an hour without
    ``allow_large``, is refused before anything is computed or written
    (:func:`initsuite.studies.sweep.budget.check`).

    Args:
        cfg: the sweep.
        progress: show a progress bar on stderr (default: when stderr is a terminal).
        out: a results directory: each group of cells is stored there as a chunk as soon as
            it is computed (:mod:`initsuite.results.chunks`), so an interrupted sweep loses at
            most the groups in flight. Default: in memory.
        resume: skip the groups already stored in ``out`` (same settings and versions).
        executor: None (in process) or a
            :class:`~initsuite.studies.sweep.executors.DaskExecutor` (needs ``out``, reachable
            by every worker).
        allow_large: run a sweep estimated to take over an hour.
        overwrite: replace ``out``, a directory initsuite wrote: the sweep is stored in a
            temporary sibling, in chunks like any sweep, and swapped into place at the end.
        command: the command line, recorded in meta.json.
    """
    budget.check(cfg, allow_large=allow_large, stored=out is not None)
    _check_out(out, resume, overwrite, executor)
    show = sys.stderr.isatty() if progress is None else progress
    if out is None:
        return _in_memory(cfg, show, command)
    if overwrite:
        with store.replacing(out, overwrite=True) as tmp:
            _stored(cfg, tmp, False, executor, show, command)
    else:
        _stored(cfg, out, resume, executor, show, command)
    return SweepResult.load(out)


def _check_out(
    out: str | os.PathLike[str] | None, resume: bool, overwrite: bool, executor: Any
) -> None:
    """Raise for ``run`` arguments that need an output directory, or contradict."""
    if resume and overwrite:
        raise InitsuiteError("resume continues a sweep and overwrite replaces it: pick one")
    if out is not None:  # the one output check (a path of the wrong type is a type error)
        store.check_output(out, "replace" if overwrite else "append" if resume else "new")
        return
    if executor is not None:
        raise InitsuiteError("a distributed sweep needs an output directory (out_dir=...)")
    if resume or overwrite:
        what = "resume continues" if resume else "overwrite replaces"
        raise InitsuiteError(f"{what} the sweep stored in a directory: give out_dir=...")


def _bar(cfg: SweepConfig, show: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=cfg.n_cells, disable=not show, unit="cell", file=sys.stderr, desc="sweep")


def _in_memory(cfg: SweepConfig, show: bool, command: str | None) -> SweepResult:
    """Run every cell of ``cfg`` and return the tables (nothing written)."""
    theory = theory_tables(cfg)
    fp = fingerprint(cfg)
    started = time.perf_counter()
    with highest_precision(), _bar(cfg, show) as bar:
        rows, n_layers = _execute(cfg, fp, _group_keys(cfg), None, set(), bar)
        sweep_s = time.perf_counter() - started
        timing = _timing(cfg) if _timed(cfg) else []
    meta = _final_meta(cfg, fp, started, sweep_s, 0, n_layers, command)
    cells, layers = frames(rows)
    return SweepResult(cells, layers, C.frame(C.TIMING, timing), meta, **theory)


def _stored(cfg: SweepConfig, out: str | os.PathLike[str], resume: bool, executor: Any,
            show: bool, command: str | None) -> None:  # fmt: skip
    """Run the cells of ``cfg`` not stored in ``out`` yet, storing each group as it is done;
    meta.json says at the end whether every cell of the grid is there."""
    fp = fingerprint(cfg)
    stored = directory.prepare(out, cfg, fp, resume, command)
    started = time.perf_counter()
    with highest_precision(), _bar(cfg, show) as bar:
        todo, skipped = _skip(cfg, fp, stored, bar)
        if skipped:
            log.info("resume: %d cells already stored in %s", skipped, out)
        n_layers = 0
        if executor is not None:
            for n in executor.map_groups(cfg, todo, str(out)):
                bar.update(n)
        else:
            n_layers = _execute(cfg, fp, todo, out, stored, bar)[1]
        sweep_s = time.perf_counter() - started
        _store_timing(cfg, fp, out)
    meta = _final_meta(cfg, fp, started, sweep_s, skipped, n_layers, command, out)
    directory.publish(out, meta)


def _skip(cfg: SweepConfig, fp: str, stored: set[str], bar: Any) -> tuple[list[GroupKey], int]:
    """The groups of the grid still to run, and the number of cells already ``stored``."""
    todo: list[GroupKey] = []
    skipped = 0
    for key in _group_keys(cfg):
        if stored and set(group_cell_keys(cfg, key, fp)) <= stored:
            n = len(cfg.schemes) * len(cfg.activations) * len(cfg.depths)
            skipped += n
            bar.update(n)
        else:
            todo.append(key)
    return todo, skipped


def _execute(cfg: SweepConfig, fp: str, todo: list[GroupKey], out: str | os.PathLike[str] | None,
             stored: set[str], bar: Any) -> tuple[list[Rows], int]:  # fmt: skip
    """Compute the groups ``todo`` in process: stored in ``out`` (their rows not kept), or
    kept in memory without it; the rows kept and the number of layers computed."""
    predict = Predictions(cfg)
    wanted = set(todo)
    rows: list[Rows] = []
    n_layers = 0
    for key, plans in groups(cfg):
        if key not in wanted:
            continue
        group = compute(cfg, plans, predict, fp)
        n_layers += group.n_layers
        if out is not None:
            _store(out, group, fp, stored)
        else:
            rows.append(group)
        bar.update(len(group.cells))
    return rows, n_layers


def _store_timing(cfg: SweepConfig, fp: str, out: str | os.PathLike[str]) -> None:
    """Time what ``out`` holds no timing of yet, (scheme, width, device, dtype) of the grid:
    all of it in a new sweep, what a resume added to the grid (a scheme, a width), and
    store the rows as a chunk (timing is per Linear layer: only for a grid with the mlp
    arch)."""
    if not _timed(cfg):
        return
    rows = _timing(cfg, skip=chunks.timed_keys(out, fp))
    if rows:
        tables = {"cells": C.frame(C.CELLS, []), "layers": C.frame(C.LAYERS, []),
                  "timing": C.frame(C.TIMING, rows)}  # fmt: skip
        keys = [json.dumps([row[k] for k in C.TIMING_KEYS]) for row in rows]
        chunks.write_chunk(out, chunk_name(["timing", fp, *keys]), tables, fp)


def _final_meta(cfg: SweepConfig, fp: str, started: float, sweep_s: float, skipped: int,
                n_layers: int, command: str | None,
                out: str | os.PathLike[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """meta.json of a finished run: configuration, environment, times; stored in ``out``,
    whether every cell of the grid is there (a concurrent writer, or a worker, may have
    stored some; none may be missing) and the theory chunk."""
    rate = sweep_s > 0
    meta: dict[str, Any] = {
        "kind": "sweep",
        "config": cfg.to_dict(),
        "fingerprint": json.loads(fp),
        "environment": environment(cfg.devices),
        "cells": cfg.n_cells,
        "resumed_cells": skipped,
        "sweep_seconds": round(sweep_s, 3),
        "cells_per_second": round((cfg.n_cells - skipped) / sweep_s, 1) if rate else None,
        "layers_per_second": round(n_layers / sweep_s, 1) if rate and n_layers else None,
        "timing_seconds": round(time.perf_counter() - started - sweep_s, 3),
        "complete": True,
    }
    if out is not None:
        meta["complete"] = _grid_keys(cfg, fp) <= chunks.stored_keys(out, fp)
        meta[chunks.THEORY_CHUNK] = directory.theory_chunk_name(cfg, fp)
    return meta if command is None else {**meta, "command": command}


def _grid_keys(cfg: SweepConfig, fp: str) -> set[str]:
    """The ``cell_key`` of every cell of the grid."""
    return {k for key in _group_keys(cfg) for k in group_cell_keys(cfg, key, fp)}


def _group_keys(cfg: SweepConfig) -> list[GroupKey]:
    """Every group of the grid, in run order, without building its streams."""
    return [(a, d, t, w, s) for a in cfg.archs for d in cfg.devices for t in cfg.dtypes
            for w in cfg.widths for s in cfg.seeds]  # fmt: skip


def _timed(cfg: SweepConfig) -> bool:
    """Whether the sweep times layers: timing is per Linear layer of an arch that supports
    it (the MLP)."""
    return cfg.timing and any(a.supports("timing") for a in cfg.arch_objects)


def _timing(cfg: SweepConfig, skip: Set[tuple[Any, ...]] = frozenset()) -> list[dict[str, Any]]:
    """Timing rows of the grid, but for the keys in ``skip`` (``TIMING_KEYS``: timed
    already); a scheme that raises gets none (its cells already carry the error)."""
    first = cfg.activation_objects[0].at_depth(max(cfg.depths))
    rows = []
    for device in cfg.devices:
        for dtype in cfg.dtypes:
            for scheme in cfg.scheme_objects:
                params = scheme.resolve(first)
                for width in cfg.widths:
                    if (scheme.spec, width, device, dtype) in skip:  # TIMING_KEYS order
                        continue
                    try:
                        row = time_layer(scheme, params, width, cfg.batch, device, dtype,
                                         cfg.timing_repeats, activation=first)  # fmt: skip
                    except Exception:
                        break
                    rows.append(row)
    return rows
