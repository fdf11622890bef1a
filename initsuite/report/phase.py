"""Order and chaos in a sweep's report: the c-map (the cosine of an input pair by layer) and
the phase diagram, drawn from stored tables.

The grid and the schemes' points were computed by the sweep (its ``phase_grid`` and
``phase_points``, :mod:`initsuite.studies.sweep.theory`); this module only draws them, with
what the sweep measured. Never imports torch or theory.
"""

from __future__ import annotations

import itertools
import math
import textwrap
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.report.families import (
    MAX_LINES,
    arch_dashes,
    family_figure,
    key_handles,
    key_legend,
    panel_rows,
    row_legend,
    scheme_colors,
)
from initsuite.report.selection import deepest, levels, pick_width, with_arch
from initsuite.report.style import (
    COL_WRAP,
    PANEL_H,
    PANEL_W,
    facets,
    need,
    new_figure,
    style,
)
from initsuite.results.agreement import correlation_depth
from initsuite.results.columns import label
from initsuite.results.sweep import SweepResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["cosine_vs_layer", "phase_figure", "plot_phase_diagram"]

_MEASURED_COLOR = {"none": "white", "overflow": "tomato", "underflow": "deepskyblue",
                   "mixed": "gold"}  # fmt: skip
Spot = tuple[float, float]  # (σ_w², σ_b²), rounded: where points share a key number


def phase_figure(result: SweepResult) -> Figure:
    """The stored phase diagram of an MLP sweep's activations with its schemes placed on it,
    each coloured by what the sweep measured at its deepest depth and largest width, and the
    depth scale measured from its cosines written above it.

    Args:
        result: a sweep's MLP cells and layers, with its ``phase_grid`` and ``phase_points``.
    """
    c = result.cells
    acts, specs = set(c["activation"].astype(str)), set(c["scheme"].astype(str))
    grid = result.phase_grid[result.phase_grid["activation"].isin(acts)]
    pts = result.phase_points
    points = pts[pts["activation"].isin(acts) & pts["scheme"].isin(specs)].reset_index(drop=True)
    width = int(c["width"].max())
    # what the sweep saw at its deepest depth and largest width, per scheme and activation
    cells = c[(c["depth"] == c["depth"].max()) & (c["width"] == width) & c["error"].isna()]
    seen = cells.groupby(["scheme", "activation"], observed=True)["divergence_kind"].agg(
        lambda k: "none" if k.isna().all() else (
            str(k.dropna().iloc[0]) if k.notna().all() and k.nunique() == 1 else "mixed")
    )  # fmt: skip
    pairs = list(zip(points["scheme"], points["activation"], strict=True))
    points["measured"] = [seen.get(pair, "none") for pair in pairs]
    layers = result.layers
    deep = layers[(layers["depth"] == layers["depth"].max()) & (layers["width"] == width)]
    corr = correlation_depth(deep).groupby(["scheme", "activation"])["measured_depth"].median()
    points["measured_depth"] = [corr.get(pair, float("nan")) for pair in pairs]
    return plot_phase_diagram(grid, points)


def plot_phase_diagram(grid: pd.DataFrame, points: pd.DataFrame | None = None) -> Figure:
    """The order–chaos phase diagram (Poole et al. 2016, Schoenholz et al. 2017).

    The correlation depth scale ξ_c = −1/ln χ_c (log colour; :mod:`initsuite.theory.phase`)
    over (σ_w², σ_b²), one panel per activation, the critical line χ₁ = 1 in black, and
    schemes as numbered points (keyed beside the panels) where they fall inside the plotted
    range. A grid stored before ξ_c was (all null) is coloured by ξ₁ = 1/|ln χ₁| instead, and
    says so. With a ``measured`` column in ``points`` (what a sweep saw there: ``none``,
    ``overflow``, ``underflow`` or ``mixed``) the points are coloured by it; with
    ``measured_depth`` (:func:`initsuite.results.agreement.correlation_depth`) that number of
    layers is written above each point as "measured | predicted ξ_c".

    Args:
        grid: :func:`initsuite.phase_diagram` tables (a sweep's ``phase_grid``; one or
            several activations).
        points: :func:`initsuite.theory.phase.scheme_points` tables for the same activations
            (a sweep's ``phase_points``).
    """
    need(grid, ("activation", "sigma_w2", "sigma_b2", "chi1", "depth_scale"), "phase grid")
    xi = _xi_column(grid)
    acts = levels(grid["activation"])
    points = points if points is not None and not points.empty else None
    spots = _spots(grid, points)
    keyed = {spot: i for i, spot in enumerate(sorted(spots), start=1)}
    with style():
        ncols = min(COL_WRAP, len(acts))
        nrows = math.ceil(len(acts) / ncols)
        fig = new_figure(PANEL_W * ncols + 3.6, PANEL_H * nrows + 0.8)
        axes = facets(fig, len(acts), ncols)
        mesh = None
        for ax, act in zip(axes, acts, strict=True):
            w, b, mesh = _draw_grid(ax, grid[grid["activation"] == act], xi)
            if points is not None:
                inside = (points["activation"] == act) & points["sigma_w2"].between(w[0], w[-1])
                _draw_points(ax, points[inside & points["sigma_b2"].between(b[0], b[-1])], keyed,
                             xi)  # fmt: skip
            ax.set_xlim(w[0], w[-1])
            ax.set_ylim(b[0], b[-1])
            ax.set_title(str(act))
        assert mesh is not None  # one panel per activation, at least one activation
        cbar = fig.colorbar(mesh, ax=axes[-1], pad=0.03)
        cbar.set_label(_XI_LABEL[xi])
        key_lines = _key_lines(spots, keyed, points is not None and "measured" in points)
        if key_lines:
            fig.text(1.0, 0.5, "\n".join(key_lines), fontsize=7, va="center", ha="left",
                     family="monospace")  # fmt: skip
        fig.supxlabel("σ_w² (fan_in · Var W)")
        fig.supylabel("σ_b² (bias variance)")
        fig.suptitle("Order (χ₁ < 1, left of the black line) and chaos (χ₁ > 1, right)")
    return fig


def _spots(grid: pd.DataFrame, points: pd.DataFrame | None) -> dict[Spot, set[str]]:
    """One key per (σ_w², σ_b²) spot inside the grid's range, naming every scheme there in
    any panel."""
    spots: dict[Spot, set[str]] = {}
    if points is None:
        return spots
    w_range = (grid["sigma_w2"].min(), grid["sigma_w2"].max())
    b_range = (grid["sigma_b2"].min(), grid["sigma_b2"].max())
    for sw, sb, name in zip(points["sigma_w2"], points["sigma_b2"], points["scheme"],
                            strict=True):  # fmt: skip
        if w_range[0] <= sw <= w_range[1] and b_range[0] <= sb <= b_range[1]:
            spots.setdefault((round(float(sw), 6), round(float(sb), 6)), set()).add(str(name))
    return spots


def _key_lines(spots: dict[Spot, set[str]], keyed: dict[Spot, int], measured: bool) -> list[str]:
    """The key beside the panels: each numbered spot and its schemes, and the colours."""
    lines = [
        textwrap.fill(f"{keyed[(sw, sb)]}: σ_w²={sw:.3g}, σ_b²={sb:.2g}: "
                      + ", ".join(sorted(names)), width=64, subsequent_indent="    ")
        for (sw, sb), names in sorted(spots.items())
    ]  # fmt: skip
    if lines and measured:
        lines += ["", "point colour: what the sweep measured at its deepest depth",
                  *(f"  {c}: {k}" for k, c in _MEASURED_COLOR.items())]  # fmt: skip
    return lines


_XI_LABEL = {"xi_c": "ξ_c = −1/ln χ_c (layers, log10)",
             "depth_scale": "ξ₁ = 1/|ln χ₁| (layers, log10; stored before ξ_c)"}  # fmt: skip


def _xi_column(table: pd.DataFrame) -> str:
    """``xi_c`` where the table stores it, else ``depth_scale`` (a table from before ξ_c)."""
    return "xi_c" if "xi_c" in table and table["xi_c"].notna().any() else "depth_scale"


def _draw_grid(ax: Any, g: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray, Any]:
    """One activation's depth scale ``column`` as colour and its critical line; the panel's
    σ_w² and σ_b² values and the colour mesh."""
    w = np.unique(g["sigma_w2"].to_numpy())
    b = np.unique(g["sigma_b2"].to_numpy())
    xi = g.pivot_table(index="sigma_b2", columns="sigma_w2", values=column, dropna=False)
    xi_log = np.log10(np.clip(xi.to_numpy(dtype=float), 0.1, 1e4))
    chi = g.pivot_table(index="sigma_b2", columns="sigma_w2", values="chi1").to_numpy()
    mesh = ax.pcolormesh(w, b, xi_log, shading="nearest", cmap="magma", vmin=-1, vmax=3)
    if np.nanmin(chi) < 1 < np.nanmax(chi):
        ax.contour(w, b, chi, levels=[1.0], colors="black", linewidths=1.6)
    return w, b, mesh


def _draw_points(ax: Any, p: pd.DataFrame, keyed: dict[Spot, int], column: str) -> None:
    """The schemes' numbered points of one panel, coloured by what was measured there, with
    the measured depth scale and the prediction (``column``) above."""
    for (sw, sb), names in p.groupby(["sigma_w2", "sigma_b2"])["scheme"]:
        spot = (round(float(sw), 6), round(float(sb), 6))
        seen = set(p.loc[names.index, "measured"]) if "measured" in p else set()
        face = _MEASURED_COLOR.get(seen.pop() if len(seen) == 1 else "mixed", "white")
        ax.plot(sw, sb, marker="o", ms=9, color=face, mec="black", mew=0.8)
        ax.annotate(str(keyed[spot]), (sw, sb), ha="center", va="center", fontsize=6.5,
                    color="black")  # fmt: skip
        if "measured_depth" in p:
            depth = p.loc[names.index, "measured_depth"].median()
            if np.isfinite(depth):  # measured depth scale beside the prediction it measures
                predicted = p.loc[names.index, column].median() if column in p else np.nan
                text = f"{depth:.0f}" + (f" | {predicted:.3g}" if np.isfinite(predicted) else "")
                ax.annotate(text, (sw, sb), xytext=(0, 8), textcoords="offset points",
                            ha="center", fontsize=6.5, color="white", weight="bold")  # fmt: skip


def cosine_vs_layer(layers: pd.DataFrame, width: int | None = None,
                    colors: dict[str, str] | None = None) -> Figure:  # fmt: skip
    """The c-map: cosine of the input pair's pre-activations vs layer; one row of panels per
    scheme family (at most eight schemes a panel, :mod:`initsuite.report.families`), one
    column per activation, one line per scheme and architecture (the architecture as line
    style): mean over seeds, band min–max, the mean-field ``theory_cosine`` dotted in the same
    colour. Deepest depth, one width (default largest).

    Args:
        layers: the ``layers`` table of a sweep with its ``cosine`` column.
        width: the width to show; default the largest present.
        colors: scheme → colour shared by a report's figures; default
            :func:`~initsuite.report.families.scheme_colors` of ``layers``' schemes.
    """
    need(layers, ("scheme", "activation", "depth", "width", "seed", "layer", "cosine"), "layers")
    layers = with_arch(layers)
    colors = colors if colors is not None else scheme_colors(levels(layers["scheme"]))
    w = pick_width(layers, width)
    df = deepest(layers)
    df = df[(df["width"] == w) & df["cosine"].notna()]
    depth = int(df["depth"].max()) if not df.empty else 1
    acts, dashes = levels(df["activation"]), arch_dashes(levels(df["arch"]))
    rows = panel_rows(colors, levels(df["scheme"]), MAX_LINES // max(len(dashes), 1))
    theory = df.get("theory_cosine", np.nan)  # a table from before theory_cosine
    agg = df.assign(theory=theory).groupby(["activation", "arch", "scheme", "layer"],
                                           observed=True).agg(
        mean=("cosine", "mean"), lo=("cosine", "min"), hi=("cosine", "max"),
        theory=("theory", "first"),
    ).reset_index()  # fmt: skip
    with style():
        fig, axes = family_figure(max(len(rows), 1), max(len(acts), 1), "layer")
        for (i, row), (j, act) in itertools.product(enumerate(rows), enumerate(acts)):
            ax = axes[i, j]
            here = agg[(agg["activation"] == act) & agg["scheme"].isin(list(row.schemes))]
            _cosine_lines(ax, here, colors, dashes)
            ax.set_ylim(-1.05, 1.05)
            ax.set_xlim(0, depth)
            ax.set_title(f"{row.title} · {act}")
        for i, row in enumerate(rows):
            row_legend(axes[i, -1], row.schemes, colors)
        key_legend(fig, key_handles(dashes, True, "mean-field c-map", stopped=False))
        fig.supylabel(label("cosine"))
        fig.suptitle(f"Correlation map at width {w}, depth {depth}; band: min–max over seeds")
    return fig


def _cosine_lines(ax: Any, agg: pd.DataFrame, colors: dict[str, str],
                  dashes: dict[str, Any]) -> None:  # fmt: skip
    """One panel's c-map lines: band, mean (dashes by arch) and theory (dots) per scheme."""
    for (scheme, arch), g in agg.groupby(["scheme", "arch"], observed=True):
        c = colors[scheme]
        ax.fill_between(g["layer"], g["lo"], g["hi"], color=c, alpha=0.12, lw=0)
        ax.plot(g["layer"], g["mean"], color=c, dashes=dashes[arch], lw=1.5)
        ax.plot(g["layer"], g["theory"], color=c, ls=":", lw=1.0)
