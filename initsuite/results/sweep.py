"""``SweepResult``: the tidy tables of a sweep and their metadata. Never imports torch."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from initsuite.core.errors import Arg, InitsuiteError
from initsuite.results import columns as C
from initsuite.results import store
from initsuite.results.base import Result, Table
from initsuite.results.grid import check_unique, grid_of, n_cells
from initsuite.results.loading import with_bias_law
from initsuite.results.summary import summarize
from initsuite.results.sweep_tables import SWEEP

__all__ = ["LEGACY_ARCH", "LEGACY_BIAS", "PHASE_ARCH", "SweepResult", "require_complete",
           "sort_tables"]  # fmt: skip

LEGACY_BIAS = "torch_default"
"""What a sweep's stored ``"bias": true`` meant before bias laws had names."""
LEGACY_ARCH = "mlp"
"""The ``arch`` of every row of a table stored before sweeps had architectures."""
PHASE_ARCH = "mlp"
"""The architecture whose mean-field phase the ``phase_points`` and ``phase_grid`` tables
describe (the phase diagram is the MLP's: :meth:`initsuite.engine.archs.Arch.supports`
``"phase"``)."""


def sort_tables(cells: pd.DataFrame, layers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables in the one order every run uses (by the cell's key, then layer)."""
    order = [c for c in C.CELL_KEYS if c != "depth"]
    cells = cells.sort_values([*order, "depth"], kind="stable").reset_index(drop=True)
    layers = layers.sort_values([*order, "depth", "layer"], kind="stable")
    return cells, layers.reset_index(drop=True)


@dataclass
class SweepResult(Result):
    """What a sweep returns.

    Attributes:
        cells: one row per cell (columns :data:`initsuite.results.columns.CELLS`).
        layers: one row per computed layer of each cell
            (:data:`~initsuite.results.columns.LAYERS`).
        timing: one row per (scheme, width, device, dtype)
            (:data:`~initsuite.results.columns.TIMING`).
        meta: configuration and environment (versions, machine, git commit, UTC time).
        theory: per (arch, scheme, activation, depth, width), whether mean-field theory
            applies and its σ_w², σ_b² (:data:`~initsuite.results.columns.THEORY`).
        phase_points: each scheme's place in each activation's phase diagram at the largest
            width (:data:`~initsuite.results.columns.PHASE_POINTS`).
        phase_grid: each activation's phase diagram
            (:data:`~initsuite.results.columns.PHASE_GRID`).
    """

    kind: ClassVar[str] = "sweep"
    tables: ClassVar[tuple[Table, ...]] = SWEEP

    cells: pd.DataFrame
    layers: pd.DataFrame
    timing: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    theory: pd.DataFrame = field(default_factory=lambda: C.frame(C.THEORY, []))
    phase_points: pd.DataFrame = field(default_factory=lambda: C.frame(C.PHASE_POINTS, []))
    phase_grid: pd.DataFrame = field(default_factory=lambda: C.frame(C.PHASE_GRID, []))

    @classmethod
    def load(cls, in_dir: str | os.PathLike[str]) -> SweepResult:
        """Read a results directory, written whole (:meth:`save`) or in chunks (a sweep with
        ``out``, :mod:`initsuite.results.chunks`), with the declared column dtypes; the stored
        ``config.bias`` is read as a law's name (:mod:`initsuite.core.bias`), also where an
        older sweep stored a bool.

        Every table is checked against the column schema (a missing, renamed or mistyped
        column, a negative std, is an error naming the file) and the grid meta.json describes
        (:mod:`initsuite.results.grid`: every row's key in it, each key once, a complete
        sweep's every cell), a chunked one also against each chunk's manifest and
        fingerprint: a damaged or mixed directory raises, never loads smaller or other.

        Raises:
            InitsuiteTypeError: ``in_dir`` is not a path.
            InitsuiteError: it is not a readable results directory of a sweep.
        """
        from initsuite.results import chunks

        path = store.as_path(in_dir)
        chunked = chunks.layout(path) == "chunked"  # written as it went, by `sweep --out`
        if chunked:  # its meta.json's kind is checked with its cell count (chunks.check_meta)
            meta = with_bias_law(store.read(path, ())[1], LEGACY_BIAS, path)
            tables = chunks.read(path, meta)
        else:
            tables, raw = cls.read_whole(path)
            meta = with_bias_law(raw, LEGACY_BIAS, path)
        out = cls.conform(tables, path)
        if chunked:  # chunks finish in any order
            out["cells"], out["layers"] = sort_tables(out["cells"], out["layers"])
            out["timing"] = out["timing"].sort_values(list(C.TIMING_KEYS), kind="stable")
            out["timing"] = out["timing"].reset_index(drop=True)
        else:  # what chunks.read checks of each chunk, on the tables written whole
            grid = grid_of(meta, repr(str(path / store.META)))
            for t in cls.tables:
                where = repr(str(path / f"{t.name}.parquet"))
                grid.check_rows(t.name, out[t.name], where)
                check_unique(out[t.name], t.keys, where)
            grid.check_covered(out["cells"], repr(str(path / "cells.parquet")))
        return cls.from_tables(out, meta, path)

    def incomplete(self) -> str | None:
        """None when every cell of the grid is stored (a sweep run in memory, written whole,
        or finished); for a sweep that did not finish, how much of it is: ``"12 of 72
        cells"``."""
        if self.meta.get("complete", True) is not False:
            return None
        total, config = self.meta.get("cells"), self.meta.get("config")
        if not isinstance(total, int):
            total = n_cells(config) if isinstance(config, dict) else None
        return f"{len(self.cells)} of {total if total is not None else '?'} cells"

    def summary(self) -> pd.DataFrame:
        """One row per (scheme, activation, depth), after arch when there are several:
        :func:`~initsuite.results.summary.summarize` of the cells."""
        return summarize(self.cells)


def require_complete(result: SweepResult, where: str, partial: bool, action: str) -> str | None:
    """None for a sweep whose every cell is stored; for an unfinished one (``where``), how
    much of it is stored (:meth:`SweepResult.incomplete`) when ``partial`` allows it, else an
    error saying how to finish it or to ``action`` (``"report"``) what is stored."""
    stored = result.incomplete()
    if stored is not None and not partial:
        raise InitsuiteError(
            f"{where!r} holds an incomplete sweep ({stored}): finish it with `initsuite sweep "
            "... --resume`, or pass ",
            Arg("partial", True),
            f" to {action} what is stored",
        )
    return stored
