"""The tables of a sweep and their schemas, declared once: what
:class:`~initsuite.results.sweep.SweepResult` saves and loads whole, and what each chunk of a
sweep written as it runs holds (:mod:`initsuite.results.chunks`). Never imports torch.
"""

from __future__ import annotations

from initsuite.results import columns as C
from initsuite.results.base import Table

__all__ = ["SWEEP"]

SWEEP: tuple[Table, ...] = (
    Table("cells", C.CELLS, C.CELL_KEYS),
    Table("layers", C.LAYERS, (*C.CELL_KEYS, "layer")),
    Table("timing", C.TIMING, C.TIMING_KEYS),
    # computed from the configuration: absent from sweeps saved before them
    Table("theory", C.THEORY, C.THEORY_KEYS, optional=True),
    Table("phase_points", C.PHASE_POINTS, C.PHASE_POINTS_KEYS, optional=True),
    Table("phase_grid", C.PHASE_GRID, C.PHASE_GRID_KEYS, optional=True),
)
"""Each table's name, columns and the columns that identify a row (never null)."""
