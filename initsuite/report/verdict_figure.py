"""The verdict at a glance: one figure of the statuses that
:func:`~initsuite.report.verdict.verdict_table` gives, schemes as rows and activations as
columns, each cell coloured by its status and labelled with its factor or its divergence's kind
and layer.

Drawn from the stored ``cells`` table only, like the verdict it shows. The grid, its colours,
its legend (:func:`status_figure`) and what a cell reads (:func:`cell_label`) are every
verdict's: the probe's of several models draws its own with them
(:mod:`initsuite.report.probe_verdict`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.report.families import family_rows
from initsuite.report.plan import PlannedFigure
from initsuite.report.style import new_figure, style
from initsuite.report.verdict import VERDICT_FIGURE, verdict_table
from initsuite.report.verdict_text import BAND, times

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from initsuite.results.sweep import SweepResult

__all__ = [
    "STATUS_COLORS",
    "cell_label",
    "status_figure",
    "verdict_cells",
    "verdict_figure",
    "verdict_figures",
]

STATUS_COLORS: dict[str, str] = {
    "keeps": "#8fd18b",  # green
    "drifts": "#f6c85f",  # amber
    "diverges": "#e8735f",  # red
    "failed": "#c8c8c8",  # grey
}
"""Each verdict status's colour in the figure (light enough for black labels)."""


def cell_label(
    status: str,
    *,
    kind: object = None,
    where: object = None,
    factor: float = math.nan,
    backward: bool = False,
) -> str:
    """What a verdict cell reads: ``failed``, a divergence's kind and where (``overflow @32``),
    or the factor its std grew or shrank by (``×0.5``); ``∇`` first where it is the
    gradient's."""
    if status == "failed":
        return "failed"
    if status == "diverges":
        how = f"{kind} @{'?' if where is None or pd.isna(where) else where}"
    else:
        how = times(factor)
    return f"∇ {how}" if backward else how


def _label(r: pd.Series, band: tuple[float, float]) -> str:
    """A sweep's cell: its divergence's kind and layer (∇: the gradient's), the failure, or
    the factor of the std (∇: of the gradient, where only that left the band)."""
    if r["status"] == "diverges":
        return cell_label("diverges", kind=r["kind"], where=r["layer"],
                          backward=r["direction"] == "backward")  # fmt: skip
    lo, hi = band
    if np.isfinite(r["gradient"]) and lo <= r["signal"] <= hi and not lo <= r["gradient"] <= hi:
        return cell_label(r["status"], factor=r["gradient"], backward=True)
    return cell_label(r["status"], factor=r["signal"])


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
    _, _, status, labels = verdict_cells(table, band)
    depths = sorted(set(table["depth"]))
    at = f"depth {depths[0]}" if len(depths) == 1 else "each deepest depth"
    return status_figure(status, labels, f"at {at}, largest width; medians over seeds")


def status_figure(status: pd.DataFrame, labels: pd.DataFrame, xlabel: str) -> Figure:
    """The verdict's grid: ``status``'s rows and columns (its index and columns, as the tick
    labels), each cell coloured by its status (:data:`STATUS_COLORS`; white where it is
    missing) and reading its entry of ``labels`` (``—`` where missing), a legend of the
    statuses shown under it and ``xlabel`` above it. Every verdict figure is this one.

    Args:
        status: rows × columns of ``keeps``, ``drifts``, ``diverges`` or ``failed``.
        labels: the same rows × columns, what each cell reads.
        xlabel: what the cells are (the grid's point, the statistic).
    """
    rows, columns = [str(r) for r in status.index], [str(c) for c in status.columns]
    blank = (1.0, 1.0, 1.0)
    with style():
        from matplotlib.colors import to_rgb
        from matplotlib.patches import Patch

        rgb = np.array([[to_rgb(STATUS_COLORS[s]) if isinstance(s, str) else blank
                         for s in status.iloc[i]] for i in range(len(rows))])  # fmt: skip
        name_w = 0.075 * max(len(r) for r in rows)
        fig = new_figure(
            max(4.5, name_w + 1.15 * len(columns) + 0.8), max(2.2, 0.34 * len(rows) + 1.6)
        )
        ax = fig.subplots()
        ax.imshow(rgb, aspect="auto", interpolation="nearest")
        for i in range(len(rows)):
            for j in range(len(columns)):
                text = labels.iloc[i, j]
                # stored names read as written: no mathtext between two dollars
                ax.text(j, i, text if isinstance(text, str) else "—", ha="center",
                        va="center", fontsize=7.5, parse_math=False)  # fmt: skip
        ax.set_xticks(range(len(columns)), columns)
        ax.set_yticks(range(len(rows)), rows)
        for tick in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
            tick.set_parse_math(False)
        ax.xaxis.tick_top()
        ax.tick_params(length=0, axis="x", which="both", rotation=0 if len(columns) <= 5 else 30)
        ax.tick_params(length=0, axis="y", which="both")
        ax.set_xticks(np.arange(len(columns) + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(len(rows) + 1) - 0.5, minor=True)
        ax.grid(False)
        ax.grid(which="minor", color="white", lw=1.5)
        ax.set_xlabel(xlabel)
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
