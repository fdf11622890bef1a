"""The verdict at a glance: one figure of the statuses that
:func:`~initsuite.report.verdict.verdict_table` gives, schemes as rows and activations as
columns, each cell coloured by its status and labelled with its factor or its divergence's kind
and layer.

Drawn from the stored ``cells`` table only, like the verdict it shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.report.families import family_rows
from initsuite.report.plan import PlannedFigure
from initsuite.report.style import new_figure, style
from initsuite.report.verdict import BAND, VERDICT_FIGURE, times, verdict_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from initsuite.results.sweep import SweepResult

__all__ = ["STATUS_COLORS", "verdict_cells", "verdict_figure", "verdict_figures"]

STATUS_COLORS: dict[str, str] = {
    "keeps": "#8fd18b",  # green
    "drifts": "#f6c85f",  # amber
    "diverges": "#e8735f",  # red
    "failed": "#c8c8c8",  # grey
}
"""Each verdict status's colour in the figure (light enough for black labels)."""


def _label(r: pd.Series, band: tuple[float, float]) -> str:
    """What a cell reads: the divergence's kind and layer (∇: the gradient's), the failure,
    or the factor of the std (∇: of the gradient, where only that left the band)."""
    if r["status"] == "failed":
        return "failed"
    if r["status"] == "diverges":
        layer = "?" if pd.isna(r["layer"]) else str(r["layer"])
        how = f"{r['kind']} @{layer}"
        return f"∇ {how}" if r["direction"] == "backward" else how
    lo, hi = band
    if np.isfinite(r["gradient"]) and lo <= r["signal"] <= hi and not lo <= r["gradient"] <= hi:
        return f"∇ {times(r['gradient'])}"
    return times(r["signal"])


def verdict_cells(
    table: pd.DataFrame, band: tuple[float, float] = BAND
) -> tuple[list[str], list[str], pd.DataFrame, pd.DataFrame]:
    """The figure's grid from a verdict table (:func:`verdict_table`): its rows (schemes, by
    family as the report's other figures order them), its columns (activations; ``act @ arch``
    with several architectures), and the status and label of each cell (frames indexed by
    row and column; missing where a scheme did not run an activation)."""
    several = table["arch"].nunique() > 1
    column = table["activation"].astype(str)
    if several:
        column = column + " @ " + table["arch"].astype(str)
    t = table.assign(column=column, label=[_label(r, band) for _, r in table.iterrows()])
    rows = [s for row in family_rows(list(t["scheme"].unique())) for s in row.schemes]
    columns = list(dict.fromkeys(t["column"]))
    grid = t.set_index(["scheme", "column"])
    status, labels = (grid[c].unstack().reindex(rows, columns=columns) for c in ("status", "label"))
    return rows, columns, status, labels


def verdict_figure(cells: pd.DataFrame, band: tuple[float, float] = BAND) -> Figure:
    """Schemes as rows, activations (by architecture) as columns, each cell coloured keeps,
    drifts, diverges or failed (:data:`STATUS_COLORS`) at the deepest depth and largest width,
    and labelled with its factor (final std / input std) or its divergence's kind and layer.

    Args:
        cells: the ``cells`` table of a sweep.
    """
    table = verdict_table(cells, band)
    if table.empty:
        raise InitsuiteError("no cell to judge: the verdict figure has nothing to draw")
    rows, columns, status, labels = verdict_cells(table, band)
    blank = (1.0, 1.0, 1.0)
    with style():
        from matplotlib.colors import to_rgb
        from matplotlib.patches import Patch

        rgb = np.array([[to_rgb(STATUS_COLORS[s]) if isinstance(s, str) else blank
                         for s in status.loc[r]] for r in rows])  # fmt: skip
        name_w = 0.075 * max(len(r) for r in rows)
        fig = new_figure(
            max(4.5, name_w + 1.15 * len(columns) + 0.8), max(2.2, 0.34 * len(rows) + 1.6)
        )
        ax = fig.subplots()
        ax.imshow(rgb, aspect="auto", interpolation="nearest")
        for i, r in enumerate(rows):
            for j, c in enumerate(columns):
                text = labels.loc[r, c]
                ax.text(j, i, text if isinstance(text, str) else "—", ha="center",
                        va="center", fontsize=7.5)  # fmt: skip
        ax.set_xticks(range(len(columns)), columns)
        ax.set_yticks(range(len(rows)), rows)
        ax.xaxis.tick_top()
        ax.tick_params(length=0, axis="x", rotation=0 if len(columns) <= 5 else 30)
        ax.tick_params(length=0, axis="y")
        ax.set_xticks(np.arange(len(columns) + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(len(rows) + 1) - 0.5, minor=True)
        ax.grid(False)
        ax.grid(which="minor", color="white", lw=1.5)
        depths = sorted(set(table["depth"]))
        at = f"depth {depths[0]}" if len(depths) == 1 else "each deepest depth"
        ax.set_xlabel(f"at {at}, largest width; medians over seeds")
        handles = [Patch(color=STATUS_COLORS[s], label=s) for s in STATUS_COLORS
                   if (status == s).any().any()]  # fmt: skip
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles),
                   frameon=False)  # fmt: skip
    return fig


def verdict_figures(raw: SweepResult) -> list[PlannedFigure]:
    """The verdict's figure for a sweep's report plan (none where no cell was stored), from
    its stored cells (by architecture: not labelled ``scheme @ arch``)."""
    cells = raw.cells
    if cells.empty:
        return []
    return [PlannedFigure(VERDICT_FIGURE, lambda: verdict_figure(cells))]
