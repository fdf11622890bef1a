"""The figures of a probe's report, each drawn from one table (see
:mod:`initsuite.report.probe_tables`): the std of every module call in execution order, the
residual stream block by block, and for several models the stream and gradient by block,
model by model, and their scaling with a varied key.

Never imports torch; seaborn and matplotlib are imported when a figure is drawn.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.core.spec import format_value
from initsuite.report.style import (
    DASHES,
    at_least_a_decade,
    decade_ticks,
    need,
    new_figure,
    outside_legend,
    palette,
    style,
)
from initsuite.results import columns as schema
from initsuite.results.probe import models_in_order, schemes_in_order, series

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["blocks_by_model", "probe_blocks", "probe_scaling", "probe_std"]


def probe_std(frame: pd.DataFrame) -> Figure:
    """Std of each probed call's output (log y) against the call's position in execution
    order, one line per scheme; with gradients, a second panel of ``grad_std``. A dotted
    vertical line in a scheme's colour marks its first divergence (forward: the first call
    that overflowed or underflowed; backward: the first, walking back, whose gradient did).
    Grey bands mark the calls of modules a scheme re-drew. Values a log axis cannot show (NaN
    at an overflow, 0) are left out; a zero branch's (exactly 0 by design: ``zero_by``,
    ``grad_zero_by``) is marked by a caret at the panel's foot instead, in the scheme's colour.

    Args:
        frame: the ``probe`` table (:data:`initsuite.results.columns.PROBE`).
    """
    need(frame, ("scheme", "call", "std", "grad_std", "divergence_kind",
                  "grad_divergence_kind"), "probe")  # fmt: skip
    if frame.empty:
        raise InitsuiteError("the probe table is empty: there is nothing to plot")
    schemes = schemes_in_order(frame)
    panels = [("std", "divergence_kind", schema.label("std", schema.PROBE))]
    if bool(frame["grad_std"].notna().any()):
        panels.append(("grad_std", "grad_divergence_kind", schema.label("grad_std", schema.PROBE)))
    zeros = [c for c in ("zero_by", "grad_zero_by") if c in frame.columns]
    last = int(frame["call"].max())
    # the calls of modules some scheme re-drew (Conv, Linear…): where the scale is set
    drawn = sorted(set(frame.loc[frame["reinitialised"].astype(bool), "call"].astype(int)))
    with style() as sns:
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
        from matplotlib.ticker import MaxNLocator

        fig = new_figure(9.5, 2.9 * len(panels) + 0.7)
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False).ravel()
        colors = palette(sns, schemes)
        dashes = dict(zip(schemes, DASHES * len(schemes), strict=False))
        for ax, (col, kind_col, label) in zip(axes, panels, strict=True):
            for call in drawn:
                ax.axvspan(call - 0.5, call + 0.5, color="0.92", lw=0, zorder=0)
            plotted = _draw_calls(ax, frame, col, kind_col, colors, dashes)
            ax.set_ylabel(label)
            ax.set_xlim(0.5, last + 0.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if plotted:
                ax.set_yscale("log")
                decade_ticks([ax])
        axes[-1].set_xlabel("module call, in execution order")
        handles: list[Any] = [Line2D([], [], color=colors[s], dashes=dashes[s], lw=1.8,
                                     label=s) for s in schemes]  # fmt: skip
        if frame[["divergence_kind", "grad_divergence_kind"]].notna().any().any():
            handles.append(Line2D([], [], color="0.35", ls=":", label="first divergence"))
        if frame[zeros].notna().any().any():
            handles.append(Line2D([], [], color="0.35", ls="none", marker=2, ms=6,
                                  label="zero branch (0 by design)"))  # fmt: skip
        if drawn:
            handles.append(Patch(color="0.92", label="re-drawn by the schemes"))
        outside_legend(fig, handles, "scheme")
        fig.suptitle("Std of each module's output, in execution order")
    return fig


def _draw_calls(ax: Any, frame: pd.DataFrame, col: str, kind_col: str, colors: dict[str, Any],
                dashes: dict[str, Any]) -> bool:  # fmt: skip
    """One panel's line per scheme of ``col`` by call (positive finite values only), and a
    dotted line at each call ``kind_col`` marks; whether any line was drawn."""
    plotted = False
    for scheme in schemes_in_order(frame):
        d = frame[frame["scheme"] == scheme].sort_values("call")
        values = d[col].astype(float)
        ok = d[np.isfinite(values) & (values > 0)]
        c = colors[scheme]
        if len(ok):
            ax.plot(ok["call"], ok[col], color=c, dashes=dashes[scheme], lw=1.4, marker="o",
                    ms=2.5)  # fmt: skip
            plotted = True
        for call in d.loc[d[kind_col].notna(), "call"]:
            ax.axvline(int(call), color=c, ls=":", lw=1.2)
        zero_col = {"std": "zero_by", "grad_std": "grad_zero_by"}[col]
        if zero_col in d.columns and bool(d[zero_col].notna().any()):
            at = d.loc[d[zero_col].notna(), "call"].astype(int).tolist()
            ax.plot(at, [0.02] * len(at), transform=ax.get_xaxis_transform(), ls="none",
                    marker=2, ms=6, color=c, clip_on=False)  # fmt: skip
    return plotted


def probe_blocks(blocks: pd.DataFrame) -> Figure:
    """The residual stream block by block, one line per scheme: the std of each block's
    output (log y) and the ratio of what the block added to the stream's std before it
    (symmetric log: linear below 10⁻³, so a block that adds nothing shows at 0); with
    gradients, a third panel of the gradient's std at each block's output.

    Args:
        blocks: the ``blocks`` table (:data:`initsuite.results.columns.PROBE_BLOCKS`).
    """
    need(blocks, ("scheme", "block", "stream_std", "update_ratio", "stream_grad_std"),
         "blocks")  # fmt: skip
    if blocks.empty:
        raise InitsuiteError("the blocks table is empty: there is nothing to plot")
    schemes = schemes_in_order(blocks)
    blocks_label = functools.partial(schema.label, table=schema.PROBE_BLOCKS)
    panels = [("stream_std", blocks_label("stream_std"), "log"),
              ("update_ratio", blocks_label("update_ratio"), "symlog")]  # fmt: skip
    if bool(blocks["stream_grad_std"].notna().any()):
        panels.append(("stream_grad_std", blocks_label("stream_grad_std"), "log"))
    with style() as sns:
        from matplotlib.lines import Line2D
        from matplotlib.ticker import MaxNLocator

        fig = new_figure(8.5, 2.5 * len(panels) + 0.7)
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False).ravel()
        colors = palette(sns, schemes)
        dashes = dict(zip(schemes, DASHES * len(schemes), strict=False))
        for ax, (col, label, scale) in zip(axes, panels, strict=True):
            plotted = False
            for scheme in schemes:
                d = blocks[blocks["scheme"] == scheme].sort_values("block")
                v = d[col].astype(float)
                ok = d[np.isfinite(v) & ((v > 0) if scale == "log" else (v >= 0))]
                if len(ok):
                    ax.plot(ok["block"], ok[col], color=colors[scheme], dashes=dashes[scheme],
                            lw=1.4, marker="o", ms=3)  # fmt: skip
                    plotted = True
            ax.set_ylabel(label)
            if plotted and scale == "log":
                ax.set_yscale("log")
                decade_ticks([ax])
            elif plotted:
                ax.set_yscale("symlog", linthresh=1e-3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[-1].set_xlabel("residual block, in execution order")
        handles: list[Any] = [Line2D([], [], color=colors[s], dashes=dashes[s], lw=1.8,
                                     label=s) for s in schemes]  # fmt: skip
        outside_legend(fig, handles, "scheme")
        fig.suptitle("The residual stream, block by block")
    return fig


def probe_scaling(table: pd.DataFrame) -> Figure:
    """For each swept base (a column of panels), against the varied value (log x): the std of
    the residual stream after the last block (the last call's output for a model without
    known blocks) and, with gradients, the std of the gradient at the first block's output,
    one line per scheme (and precision). Both axes log.

    Args:
        table: :func:`scaling_table`'s frame.
    """
    need(table, ("base", "key", "value", "scheme", "autocast", "final_stream_std", "last_std",
                 "first_block_grad_std", "first_grad_std"), "scaling table")  # fmt: skip
    if table.empty:
        raise InitsuiteError("the scaling table is empty: no model was swept (--vary)")
    table = table.assign(series=series(table))
    bases = list(dict.fromkeys(table["base"]))
    labels = list(dict.fromkeys(table["series"]))
    stream = table["final_stream_std"].where(table["final_stream_std"].notna(), table["last_std"])
    grad = table["first_block_grad_std"].where(table["first_block_grad_std"].notna(),
                                               table["first_grad_std"])  # fmt: skip
    table = table.assign(stream=stream, grad=grad)
    # in the schema's words: the stream after the last block, the gradient at the first's
    panels = [("stream", f"{schema.label('stream_std', schema.PROBE_BLOCKS)}\n(the last)")]
    if bool(np.isfinite(table["grad"].astype(float)).any()):
        grad = schema.label("stream_grad_std", schema.PROBE_BLOCKS)
        panels.append(("grad", f"{grad}\n(the first)"))
    with style() as sns:
        from matplotlib.lines import Line2D

        fig = new_figure(3.6 * len(bases) + 1.8, 2.7 * len(panels) + 0.6)
        axes = fig.subplots(len(panels), len(bases), squeeze=False)
        colors = palette(sns, labels)
        dashes = dict(zip(labels, DASHES * len(labels), strict=False))
        for j, base in enumerate(bases):
            d = table[table["base"] == base]
            x, ticks, names, numeric = _value_axis(list(d["value"]))
            d = d.assign(x=x)
            for i, (col, label) in enumerate(panels):
                ax = axes[i][j]
                for name in labels:
                    s = d[d["series"] == name].sort_values("x")
                    v = s[col].astype(float)
                    ok = s[np.isfinite(v) & (v > 0)]
                    if len(ok):
                        ax.plot(ok["x"], ok[col], color=colors[name],
                                dashes=dashes[name], marker="o", ms=4, lw=1.5)  # fmt: skip
                _value_ticks(ax, ticks, names, numeric)
                ax.set_ylabel(label if j == 0 else "")
                ax.set_title(base if i == 0 else "", fontsize=9)
                ax.set_xlabel(str(d["key"].iloc[0]) if i == len(panels) - 1 else "")
        handles: list[Any] = [Line2D([], [], color=colors[s], dashes=dashes[s], lw=1.8,
                                     label=s) for s in labels]  # fmt: skip
        outside_legend(fig, handles, "scheme")
        fig.suptitle("How the stream and the gradient scale with the varied key")
    return fig


def _value_ticks(ax: Any, ticks: list[float], names: list[str], numeric: bool) -> None:
    """A scaling panel's axes: the varied values on x (log where numeric, :func:`_value_axis`),
    a log y of at least a decade where it has lines."""
    if numeric:
        ax.set_xscale("log", base=2)
    ax.set_xticks(ticks)
    ax.set_xticklabels(names)
    ax.minorticks_off()
    if ax.lines:
        ax.set_yscale("log")
        at_least_a_decade(ax)
        decade_ticks([ax])


def _value_axis(values: list[Any]) -> tuple[list[float], list[float], list[str], bool]:
    """(x of each value, tick positions, tick labels, log axis?) for a varied key: positive
    numbers on a log axis at their values; anything else (a string, a list such as
    ``depths=[2,2,2,2]``, zero) at evenly spaced positions in the order first met."""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                  for v in values)  # fmt: skip
    if numeric:
        ticks = sorted({float(v) for v in values})
        return [float(v) for v in values], ticks, [f"{t:g}" for t in ticks], True
    order: dict[str, float] = {}
    for v in values:
        order.setdefault(format_value(v), float(len(order)))
    return [order[format_value(v)] for v in values], list(order.values()), list(order), False


def blocks_by_model(blocks: pd.DataFrame, column: str, label: str) -> Figure:
    """One panel per model (its blocks in execution order on x), one line per scheme (and
    precision): ``column`` of the ``blocks`` table on a log y axis (``stream_std`` or
    ``stream_grad_std``).

    Args:
        blocks: the ``blocks`` table (:data:`initsuite.results.columns.PROBE_BLOCKS`).
        column: the column to draw.
        label: the y axis's label.
    """
    need(blocks, ("model", "scheme", "autocast", "block", column), "blocks")
    if blocks.empty:
        raise InitsuiteError("the blocks table is empty: there is nothing to plot")
    blocks = blocks.assign(series=series(blocks))
    models = models_in_order(blocks)
    labels = list(dict.fromkeys(blocks["series"]))
    ncols = min(3, len(models))
    with style() as sns:
        from matplotlib.lines import Line2D
        from matplotlib.ticker import MaxNLocator

        fig = new_figure(3.3 * ncols + 1.8, 2.6 * math.ceil(len(models) / ncols) + 0.6)
        # models differ in depth and scale: no shared axes
        grid = fig.subplots(math.ceil(len(models) / ncols), ncols, squeeze=False).ravel()
        for ax in grid[len(models) :]:
            fig.delaxes(ax)
        axes = list(grid[: len(models)])
        colors = palette(sns, labels)
        dashes = dict(zip(labels, DASHES * len(labels), strict=False))
        for ax, model in zip(axes, models, strict=True):
            d = blocks[blocks["model"] == model]
            for name in labels:
                s = d[d["series"] == name].sort_values("block")
                v = s[column].astype(float)
                ok = s[np.isfinite(v) & (v > 0)]
                if len(ok):
                    ax.plot(ok["block"], ok[column], color=colors[name], dashes=dashes[name],
                            lw=1.3, marker="o", ms=2.5)  # fmt: skip
            ax.set_title(_short(model), fontsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if ax.lines:
                ax.set_yscale("log")
                at_least_a_decade(ax)
        for ax in axes[-ncols:]:
            ax.set_xlabel("residual block")
        for ax in axes[::ncols]:
            ax.set_ylabel(label)
        handles: list[Any] = [Line2D([], [], color=colors[s], dashes=dashes[s], lw=1.8,
                                     label=s) for s in labels]  # fmt: skip
        outside_legend(fig, handles, "scheme")
    return fig


def _short(model: str, width: int = 48) -> str:
    """A model's spec for a panel title, its overrides wrapped."""
    head, *items = model.split(",")
    lines, line = [head], ""
    for item in items:
        if line and len(line) + len(item) + 1 > width:
            lines.append(line)
            line = ""
        line = f"{line},{item}" if line else item
    return "\n".join([*lines, line] if line else lines)
